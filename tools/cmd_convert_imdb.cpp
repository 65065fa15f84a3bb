// `crema convert_imdb --out DIR (ROOT | --synthetic N)`: IMDB reviews to the LMDBs of word
// ids that models/gru_imdb reads (see crema/imdb.hpp).
#include <gflags/gflags.h>

#include <iomanip>
#include <iostream>

#include "crema/imdb.hpp"
#include "tools/command.hpp"

DEFINE_string(out, "", "convert_imdb: output folder (imdb_train_lmdb, imdb_test_lmdb, vocab)");
DEFINE_int32(words, 30000,
             "convert_imdb: vocabulary size, ids 0 (padding) and 1 (unknown) "
             "included");
DEFINE_int32(length, 150, "convert_imdb: word ids per review (the last ones; front-padded)");
DEFINE_int64(synthetic, 0,
             "convert_imdb: write this many synthetic reviews per split instead "
             "of converting ROOT");
// --seed (convert_imageset's flag) seeds the shuffle and the synthetic set.
DECLARE_int64(seed);

namespace crema {
namespace tools {
namespace {

int RunConvertImdb(const std::vector<std::string>& args) {
  CREMA_REQUIRE(!FLAGS_out.empty(), "convert_imdb needs --out DIR; see `crema help convert_imdb`");
  CREMA_REQUIRE(FLAGS_synthetic >= 0, "--synthetic must not be negative, got " << FLAGS_synthetic);
  CREMA_REQUIRE(FLAGS_seed >= 0, "--seed must not be negative, got " << FLAGS_seed);
  ImdbOptions options;
  options.words = FLAGS_words;
  options.length = FLAGS_length;
  options.seed = static_cast<uint64_t>(FLAGS_seed);
  ImdbConversion result;
  if (FLAGS_synthetic > 0) {
    CREMA_REQUIRE(args.empty(),
                  "convert_imdb --synthetic takes no ROOT argument (got " << args.size() << ")");
    result = WriteSyntheticImdb(FLAGS_out, FLAGS_synthetic, FLAGS_synthetic, options);
    std::cout << "Wrote " << result.train_reviews << " synthetic training and "
              << result.test_reviews << " synthetic test reviews of " << options.length
              << " word ids to " << result.train_db << " and " << result.test_db << std::endl;
    return 0;
  }
  CREMA_REQUIRE(args.size() == 1, "convert_imdb needs 1 argument, the aclImdb folder (got "
                                      << args.size()
                                      << "), or --synthetic N; see "
                                         "`crema help convert_imdb`");
  result = ConvertImdb(args[0], FLAGS_out, options);
  std::cout << std::fixed << std::setprecision(1) << "Wrote " << result.train_reviews
            << " training and " << result.test_reviews << " test reviews of " << options.length
            << " word ids to " << result.train_db << " and " << result.test_db
            << "; vocabulary: " << result.distinct_words << " distinct training words, the "
            << std::min<int64_t>(result.distinct_words, options.words - 2)
            << " most frequent kept (" << result.vocab_path
            << "); training reviews: " << 100 * result.train_truncated_share << "% longer than "
            << options.length << " words, " << 100 * result.train_unknown_share
            << "% of the kept words out of the vocabulary" << std::endl;
  return 0;
}

}  // namespace

REGISTER_COMMAND(
    "convert_imdb", "convert IMDB movie reviews (aclImdb) to LMDBs of word ids",
    "crema convert_imdb --out DIR [--words 30000] [--length 150] [--seed 0] ROOT\n"
    "crema convert_imdb --out DIR --synthetic N [--words W] [--length L] [--seed S]\n"
    "  ROOT  the unpacked aclImdb_v1 archive: train/pos, train/neg, test/pos, test/neg, one\n"
    "        review per *.txt file\n"
    "  DIR   gets imdb_train_lmdb, imdb_test_lmdb (must not exist yet) and imdb_vocab.txt\n"
    "Each review becomes a Datum with channels = --length word ids in float_data (the last\n"
    "words of the review, oldest first, 0-padded at the front), height = width = 1, label 1\n"
    "(pos) or 0 (neg), in a seeded shuffled order. Ids: 0 padding, 1 a word out of the\n"
    "vocabulary, 2.. the most frequent training words (lower-cased; HTML tags dropped).\n"
    "--synthetic N writes N reviews per split drawn at random instead (Zipf-distributed\n"
    "ids with a learnable sentiment signal; no vocabulary), for timing and smoke tests.\n"
    "models/gru_imdb reads data/imdb/imdb_{train,test}_lmdb: use --out data/imdb.",
    RunConvertImdb);

}  // namespace tools
}  // namespace crema
