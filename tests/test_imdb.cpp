// IMDB reviews to LMDBs of word ids (`crema convert_imdb`), and the GRU model training on them.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/imdb.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

namespace fs = std::filesystem;
using testing::ErrorOf;
using testing::RunCrema;
using testing::TempDir;

using Strings = std::vector<std::string>;

struct Item {
  std::vector<float> ids;
  int label = -1;
};

std::vector<Item> ReadDatabase(const std::string& path, int length) {
  LMDBReader reader(path);
  std::vector<Item> items;
  int index = 0;
  for (reader.SeekToFirst(); reader.valid(); reader.Next(), ++index) {
    char key[16];
    std::snprintf(key, sizeof(key), "%08d", index);
    EXPECT_EQ(reader.key(), key);
    pb::Datum datum;
    EXPECT_TRUE(datum.ParseFromArray(reader.value().data(), int(reader.value().size())));
    EXPECT_EQ(datum.channels(), length);
    EXPECT_EQ(datum.height(), 1);
    EXPECT_EQ(datum.width(), 1);
    EXPECT_FALSE(datum.has_data());
    Item item;
    item.ids.assign(datum.float_data().begin(), datum.float_data().end());
    item.label = datum.label();
    items.push_back(item);
  }
  return items;
}

void WriteReview(const fs::path& folder, const std::string& name, const std::string& text) {
  fs::create_directories(folder);
  std::ofstream(folder / name) << text;
}

// A small aclImdb: "good" is most frequent (5), then "film" (4), "bad" (3), ...
void WriteSmallImdb(const fs::path& root) {
  WriteReview(root / "train/pos", "0_9.txt", "Good film.<br /><br />GOOD, good!");
  WriteReview(root / "train/pos", "1_8.txt", "A good film; really good plot");
  WriteReview(root / "train/neg", "0_2.txt", "Bad film, bad acting... 'bad'");
  WriteReview(root / "train/neg", "1_1.txt", "film");
  WriteReview(root / "train/neg", "notes.feat", "ignored: not a .txt file");
  WriteReview(root / "test/pos", "0_10.txt", "good zebra");
  WriteReview(root / "test/neg", "0_3.txt", "bad bad film acting acting acting");
  fs::create_directories(root / "train/unsup");  // ignored
}

TEST(Imdb, TokensLowerCaseDropTagsAndKeepApostrophes) {
  EXPECT_EQ(ImdbTokens("I loved it!<br /><br />Don't miss IT."),
            (Strings{"i", "loved", "it", "don't", "miss", "it"}));
  EXPECT_EQ(ImdbTokens("'Tis a 10/10 'classic'... <i>Amélie</i>-like"),
            (Strings{"tis", "a", "10", "10", "classic", "amélie", "like"}));
  EXPECT_EQ(ImdbTokens("  '' -- <unclosed tag"), (Strings{"unclosed", "tag"}));
  EXPECT_TRUE(ImdbTokens("").empty());
}

TEST(Imdb, ConvertsAnAclImdbFolder) {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "aclImdb";
  WriteSmallImdb(root);
  ImdbOptions options;
  options.words = 5;  // padding, unknown, good, film, bad
  options.length = 4;
  options.seed = 3;
  const std::string out = dir.path() + "/out";
  const ImdbConversion result = ConvertImdb(root.string(), out, options);
  EXPECT_EQ(result.train_reviews, 4);
  EXPECT_EQ(result.test_reviews, 2);
  // good film really plot bad acting a: 7 distinct ("'bad'" is "bad").
  EXPECT_EQ(result.distinct_words, 7);
  EXPECT_EQ(result.train_db, out + "/imdb_train_lmdb");

  std::ifstream vocab(result.vocab_path);
  std::string text((std::istreambuf_iterator<char>(vocab)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "0 <padding>\n1 <unknown>\n2 good\n3 film\n4 bad\n");

  // Every training review as ids (its last 4 words, front-padded) with its label.
  using Reviews = std::multiset<std::pair<std::vector<float>, int>>;
  Reviews train, test;
  for (const Item& item : ReadDatabase(result.train_db, 4)) train.insert({item.ids, item.label});
  for (const Item& item : ReadDatabase(result.test_db, 4)) test.insert({item.ids, item.label});
  EXPECT_EQ(train, (Reviews{
                       {{2, 3, 2, 2}, 1},  // good film good good
                       {{3, 1, 2, 1}, 1},  // a good [film really good plot]
                       {{3, 4, 1, 4}, 0},  // bad [film bad acting bad]
                       {{0, 0, 0, 3}, 0},  // film
                   }));
  EXPECT_EQ(test, (Reviews{
                      {{0, 0, 2, 1}, 1},  // good zebra (zebra is not in the vocabulary)
                      {{3, 1, 1, 1}, 0},  // bad bad [film acting acting acting]
                  }));
  EXPECT_DOUBLE_EQ(result.train_truncated_share, 0.5);
  // Kept training words: 4 + 4 + 4 + 1 = 13; out of the vocabulary: really, plot, acting.
  EXPECT_DOUBLE_EQ(result.train_unknown_share, 3.0 / 13.0);

  // The same seed gives the same order; the order is a shuffle of the reading order.
  const ImdbConversion again = ConvertImdb(root.string(), dir.path() + "/again", options);
  std::vector<int> first, second;
  for (const Item& item : ReadDatabase(result.train_db, 4)) first.push_back(item.label);
  for (const Item& item : ReadDatabase(again.train_db, 4)) second.push_back(item.label);
  EXPECT_EQ(first, second);
}

TEST(Imdb, ShufflesSoBothLabelsComeEarly) {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "aclImdb";
  for (int i = 0; i < 50; ++i) {
    WriteReview(root / "train/pos", std::to_string(i) + "_9.txt", "great");
    WriteReview(root / "train/neg", std::to_string(i) + "_1.txt", "awful");
  }
  WriteReview(root / "test/pos", "0_9.txt", "great");
  WriteReview(root / "test/neg", "0_1.txt", "awful");
  const ImdbConversion result = ConvertImdb(root.string(), dir.path() + "/out", ImdbOptions());
  const std::vector<Item> items = ReadDatabase(result.train_db, 150);
  ASSERT_EQ(items.size(), 100u);
  int positives_in_first_20 = 0;
  for (int i = 0; i < 20; ++i) positives_in_first_20 += items[i].label;
  EXPECT_GT(positives_in_first_20, 2);
  EXPECT_LT(positives_in_first_20, 18);
  for (const Item& item : items) {  // "great" and "awful" are ids 2 and 3 (ties: byte order)
    EXPECT_EQ(std::count(item.ids.begin(), item.ids.end(), 0.f), 149);
    EXPECT_EQ(item.ids.back(), item.label == 1 ? 3.f : 2.f);
  }
}

TEST(Imdb, SyntheticSetHasTheModelsLayout) {
  TempDir dir;
  ImdbOptions options;
  const ImdbConversion result = WriteSyntheticImdb(dir.path(), 300, 40, options);
  const std::vector<Item> train = ReadDatabase(result.train_db, 150);
  ASSERT_EQ(train.size(), 300u);
  EXPECT_EQ(ReadDatabase(result.test_db, 150).size(), 40u);
  int positives = 0, padded = 0, sentiment_agrees = 0, sentiment_words = 0;
  std::map<int, int> counts;
  for (const Item& item : train) {
    positives += item.label;
    padded += item.ids.front() == 0.f;
    for (float id : item.ids) {
      ASSERT_EQ(id, static_cast<float>(static_cast<int>(id)));
      ASSERT_GE(id, 0.f);
      ASSERT_LT(id, 30000.f);
      if (id == 0.f) continue;
      ++counts[static_cast<int>(id)];
      if (id >= 29900) {
        ++sentiment_words;
        sentiment_agrees += static_cast<int>(id) % 2 == item.label;
      }
    }
    // Padding only at the front.
    const auto first_word =
        std::find_if(item.ids.begin(), item.ids.end(), [](float v) { return v != 0.f; });
    EXPECT_EQ(std::count(first_word, item.ids.end(), 0.f), 0);
  }
  EXPECT_GT(positives, 120);
  EXPECT_LT(positives, 180);
  EXPECT_GT(padded, 40);  // lengths 30..400: about 1 in 3 shorter than 150
  EXPECT_LT(padded, 140);
  EXPECT_GT(counts[2], counts[3]);  // Zipf: the first ranks dominate
  EXPECT_GT(counts[3], counts[10]);
  EXPECT_GT(counts.size(), 3000u);  // and the tail is used
  // The last 100 ids are sentiment words carrying the label's parity (1 in 10 words; the
  // Zipf law rarely draws them).
  EXPECT_GT(sentiment_agrees, 0.99 * sentiment_words);
  EXPECT_GT(sentiment_words, 0.08 * 300 * 150 * 2 / 3);

  // Deterministic for a seed, different for another.
  TempDir other;
  const ImdbConversion same = WriteSyntheticImdb(other.path() + "/same", 300, 40, options);
  options.seed = 1;
  const ImdbConversion changed = WriteSyntheticImdb(other.path() + "/changed", 300, 40, options);
  EXPECT_EQ(ReadDatabase(same.train_db, 150)[7].ids, train[7].ids);
  EXPECT_NE(ReadDatabase(changed.train_db, 150)[7].ids, train[7].ids);
}

TEST(Imdb, BadInputIsNamed) {
  TempDir dir;
  const std::string root = dir.path() + "/aclImdb";
  EXPECT_NE(ErrorOf([&] {
              ConvertImdb(root, dir.path() + "/out", ImdbOptions());
            }).find("IMDB root '" + root + "' is not a folder"),
            std::string::npos);
  WriteReview(fs::path(root) / "train/pos", "0_9.txt", "fine");
  std::string error = ErrorOf([&] { ConvertImdb(root, dir.path() + "/out", ImdbOptions()); });
  EXPECT_NE(error.find(root + "/train/neg' is not a folder"), std::string::npos) << error;
  EXPECT_NE(error.find("train/pos, train/neg, test/pos and test/neg"), std::string::npos);
  fs::create_directories(fs::path(root) / "train/neg");
  error = ErrorOf([&] { ConvertImdb(root, dir.path() + "/out", ImdbOptions()); });
  EXPECT_NE(error.find(root + "/train/neg' holds no *.txt review files"), std::string::npos)
      << error;

  ImdbOptions options;
  options.words = 2;
  EXPECT_NE(
      ErrorOf([&] { WriteSyntheticImdb(dir.path() + "/s", 1, 1, options); }).find("--words 2"),
      std::string::npos);
  options = ImdbOptions();
  options.length = 0;
  EXPECT_NE(
      ErrorOf([&] { WriteSyntheticImdb(dir.path() + "/s", 1, 1, options); }).find("--length 0"),
      std::string::npos);
  // An existing database is never appended to, and nothing is written then.
  WriteSyntheticImdb(dir.path() + "/s", 2, 2, ImdbOptions());
  error = ErrorOf([&] { WriteSyntheticImdb(dir.path() + "/s", 2, 2, ImdbOptions()); });
  EXPECT_NE(error.find(dir.path() + "/s/imdb_train_lmdb' already exists"), std::string::npos)
      << error;
}

TEST(Imdb, CommandErrorsAreUserErrors) {
  TempDir dir;
  for (const auto& [args, words] : std::vector<std::pair<std::string, std::string>>{
           {"convert_imdb " + dir.path(), "convert_imdb needs --out DIR"},
           {"convert_imdb --out " + dir.path() + "/o", "needs 1 argument, the aclImdb folder"},
           {"convert_imdb --out " + dir.path() + "/o " + dir.path() + "/none",
            "IMDB root '" + dir.path() + "/none' is not a folder"},
           {"convert_imdb --out " + dir.path() + "/o --synthetic 5 extra", "takes no ROOT"},
           {"convert_imdb --out " + dir.path() + "/o --synthetic 5 --words 150",
            "--words must be at least 200, got 150"}}) {
    const testing::CremaRun r = RunCrema(args);
    EXPECT_EQ(r.status, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("Check failed"), std::string::npos) << r.output;
  }
}

// The command, then models/gru_imdb/train_val.prototxt trains on its output (the Data layer's
// float word ids through Slice/Concat/Reshape into Embed and GRU) and its loss falls.
TEST(Imdb, GruModelTrainsOnTheConvertedSet) {
  TempDir dir;
  const std::string out = dir.path() + "/imdb";
  testing::CremaRun r = RunCrema("convert_imdb --out " + out + " --synthetic 3000");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Wrote 3000 synthetic training and 3000 synthetic test reviews"),
            std::string::npos)
      << r.output;

  std::ifstream in(std::string(CREMA_SOURCE_DIR) + "/models/gru_imdb/train_val.prototxt");
  std::string net((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  net = std::regex_replace(net, std::regex("data/imdb/"), out + "/");
  std::ofstream(dir.path() + "/net.prototxt") << net;
  std::ofstream(dir.path() + "/solver.prototxt")
      << "net: \"" << dir.path() << "/net.prototxt\"\n"
      << "type: \"Adam\"\nbase_lr: 0.005\nmomentum: 0.9\nmomentum2: 0.999\nlr_policy: \"fixed\"\n"
         "clip_gradients: 5\ndisplay: 1\nmax_iter: 40\ntest_iter: 6\ntest_interval: 40\n"
         "test_initialization: true\nrandom_seed: 1701\nsnapshot_prefix: \""
      << dir.path() << "/gru\"\n";
  r = RunCrema("train --solver " + dir.path() + "/solver.prototxt");
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<double> accuracy;
  const std::regex test_accuracy(R"(Test net output #0: accuracy = ([0-9.]+))");
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), test_accuracy), end; it != end;
       ++it)
    accuracy.push_back(std::stod((*it)[1]));
  ASSERT_EQ(accuracy.size(), 2u) << r.output;
  // From chance to well above it after 40 iterations (2560 of the 3000 reviews): the
  // sentiment words are easy to find.
  EXPECT_LT(accuracy[0], 0.65) << r.output;
  EXPECT_GT(accuracy[1], 0.9) << r.output;  // 0.988 measured
}

}  // namespace
}  // namespace crema
