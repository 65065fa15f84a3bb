// IMDB movie reviews (Maas et al. 2011, "aclImdb") as the LMDBs of word ids that the GRU
// sentiment model reads (models/gru_imdb), and a synthetic stand-in of the same shape.
//
// Input layout (the aclImdb_v1 archive, unpacked; crema never downloads it):
//   ROOT/train/pos/*.txt  ROOT/train/neg/*.txt  ROOT/test/pos/*.txt  ROOT/test/neg/*.txt
// one review per file (12,500 in each folder). Other files and folders (unsup/, *.feat,
// urls_*.txt) are ignored.
//
// Tokens: HTML tags ("<br />") become spaces; ASCII letters are lower-cased; a word is a run
// of letters, digits, apostrophes and non-ASCII bytes (UTF-8 letters stay inside words);
// apostrophes at either end of a word are dropped ("'tis'" -> "tis"). Everything else
// separates words.
//
// Vocabulary (from the training reviews only): id 0 is padding, id 1 an out-of-vocabulary
// word, ids 2 .. words-1 the words-2 most frequent training words, most frequent first (ties:
// byte order of the word). Written as ROOT-independent text, one "id word" per line.
//
// Each review becomes one Datum: channels = length, height = width = 1, float_data = its
// last `length` word ids, oldest first, padded with 0 at the front when it is shorter;
// label 1 for pos/, 0 for neg/. Each split is shuffled (seeded Fisher-Yates, the same order
// for the same seed) because crema's Data layer reads in key order; keys are "%08d".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crema/common.hpp"

namespace crema {

struct ImdbOptions {
  int words = 30000;  // vocabulary size, padding and out-of-vocabulary ids included (>= 3)
  int length = 150;   // word ids per review (>= 1)
  uint64_t seed = 0;  // shuffle order (and, for the synthetic set, everything drawn)
};

struct ImdbConversion {
  int64_t train_reviews = 0;
  int64_t test_reviews = 0;
  int64_t distinct_words = 0;        // in the training reviews
  double train_unknown_share = 0;    // of the training tokens kept, the share that are id 1
  double train_truncated_share = 0;  // of the training reviews, the share longer than length
  std::string train_db, test_db, vocab_path;
};

// The words of a review's text, as described above.
std::vector<std::string> ImdbTokens(const std::string& text);

// Converts ROOT (aclImdb) into OUT/imdb_train_lmdb, OUT/imdb_test_lmdb and OUT/imdb_vocab.txt.
// OUT is created if missing; the two LMDBs must not exist yet. Throws crema::Error naming
// the missing folder, an unreadable file, or an existing output.
ImdbConversion ConvertImdb(const std::string& root, const std::string& out_dir,
                           const ImdbOptions& options);

// Writes OUT/imdb_train_lmdb and OUT/imdb_test_lmdb with `train_reviews` and `test_reviews`
// synthetic reviews of the same layout (no vocabulary file): review lengths uniform in
// 30..400 words, word ids from a Zipf law (exponent 1) over ids 2 .. words-1, and 1 word in
// 10 a sentiment word: one of the last 100 ids (rare under the Zipf law) whose parity is the
// label (even: 0, odd: 1), so the task can be learnt. For timing and smoke tests; its accuracy says nothing about IMDB.
ImdbConversion WriteSyntheticImdb(const std::string& out_dir, int64_t train_reviews,
                                  int64_t test_reviews, const ImdbOptions& options);

}  // namespace crema
