// ConvertImdb, WriteSyntheticImdb and ImdbTokens: see include/crema/imdb.hpp.
#include "crema/imdb.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/io.hpp"

namespace crema {
namespace {

namespace fs = std::filesystem;

// SplitMix64: a small, portable generator, so that a seed gives the same shuffle and the same
// synthetic reviews with every compiler and standard library.
class Draws {
 public:
  explicit Draws(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (n > 0; the modulo bias is below 2^-40 for the n used here).
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform in [0, 1), 53 bits.
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

void CheckOptions(const ImdbOptions& options) {
  CREMA_REQUIRE(options.words >= 3,
                "the vocabulary needs at least 3 ids (padding, unknown and "
                "one word); got --words "
                    << options.words);
  CREMA_REQUIRE(options.length >= 1,
                "reviews need at least 1 word id; got --length " << options.length);
}

struct Review {
  std::vector<std::string> words;
  int label = 0;
};

// The *.txt files of ROOT/split/pos and ROOT/split/neg, in file-name order.
std::vector<Review> ReadSplit(const fs::path& root, const std::string& split) {
  std::vector<Review> reviews;
  for (const char* polarity : {"neg", "pos"}) {
    const fs::path folder = root / split / polarity;
    std::error_code ec;
    CREMA_REQUIRE(fs::is_directory(folder, ec),
                  "'" << folder.string()
                      << "' is not a folder: the IMDB root must hold train/pos, train/neg, "
                         "test/pos and test/neg (the unpacked aclImdb_v1 archive)");
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file() && entry.path().extension() == ".txt")
        files.push_back(entry.path());
    CREMA_REQUIRE(!files.empty(), "'" << folder.string() << "' holds no *.txt review files");
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      Review review;
      review.words = ImdbTokens(ReadWholeFile(file.string(), "review"));
      review.label = polarity[0] == 'p' ? 1 : 0;
      reviews.push_back(std::move(review));
    }
  }
  return reviews;
}

// The words-2 most frequent words of `reviews` -> ids 2.., and the number of distinct words.
std::unordered_map<std::string, int> BuildVocabulary(const std::vector<Review>& reviews, int words,
                                                     int64_t* distinct) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& review : reviews)
    for (const auto& word : review.words) ++counts[word];
  std::vector<std::pair<std::string, int64_t>> ranked(counts.begin(), counts.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  *distinct = static_cast<int64_t>(ranked.size());
  std::unordered_map<std::string, int> ids;
  const size_t kept = std::min(ranked.size(), static_cast<size_t>(words - 2));
  for (size_t i = 0; i < kept; ++i) ids[ranked[i].first] = static_cast<int>(i) + 2;
  return ids;
}

void WriteVocabulary(const std::string& path, const std::unordered_map<std::string, int>& ids) {
  std::vector<const std::string*> by_id(ids.size() + 2, nullptr);
  for (const auto& [word, id] : ids) by_id[id] = &word;
  std::ofstream out(path);
  CREMA_REQUIRE(out, "cannot write the vocabulary file '" << path << "'");
  out << "0 <padding>\n1 <unknown>\n";
  for (size_t id = 2; id < by_id.size(); ++id) out << id << ' ' << *by_id[id] << '\n';
  out.close();
  CREMA_REQUIRE(out, "error while writing the vocabulary file '" << path << "'");
}

template <typename T>
void Shuffle(std::vector<T>* items, Draws* draws) {
  for (size_t i = items->size(); i > 1; --i) std::swap((*items)[i - 1], (*items)[draws->below(i)]);
}

// One LMDB of Datums from reviews given as id sequences (any length; the last `length` kept).
void WriteReviews(const std::string& db_path, const std::vector<std::vector<int>>& ids,
                  const std::vector<int>& labels, int length) {
  LMDBWriter writer(db_path, /*commit_every=*/1000);
  pb::Datum datum;
  datum.set_channels(length);
  datum.set_height(1);
  datum.set_width(1);
  std::string value;
  char key[32];
  for (size_t i = 0; i < ids.size(); ++i) {
    datum.clear_float_data();
    const auto& review = ids[i];
    const size_t kept = std::min(review.size(), static_cast<size_t>(length));
    for (size_t p = kept; p < static_cast<size_t>(length); ++p) datum.add_float_data(0.f);
    for (size_t w = review.size() - kept; w < review.size(); ++w)
      datum.add_float_data(static_cast<float>(review[w]));
    datum.set_label(labels[i]);
    datum.SerializeToString(&value);
    std::snprintf(key, sizeof(key), "%08zu", i);
    writer.Put(key, value);
  }
  writer.Close();
}

void RequireNewDatabase(const std::string& path) {
  std::error_code ec;
  CREMA_REQUIRE(!fs::exists(fs::path(path) / "data.mdb", ec),
                "'" << path << "' already exists (remove it first to rebuild it)");
}

void PrepareOutput(const std::string& out_dir, ImdbConversion* result) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  CREMA_REQUIRE(!ec && fs::is_directory(out_dir),
                "cannot create the output folder '" << out_dir << "': " << ec.message());
  result->train_db = (fs::path(out_dir) / "imdb_train_lmdb").string();
  result->test_db = (fs::path(out_dir) / "imdb_test_lmdb").string();
  RequireNewDatabase(result->train_db);
  RequireNewDatabase(result->test_db);
}

}  // namespace

std::vector<std::string> ImdbTokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::string word;
  auto finish_word = [&]() {
    const size_t first = word.find_first_not_of('\'');
    if (first != std::string::npos)
      tokens.push_back(word.substr(first, word.find_last_not_of('\'') - first + 1));
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '<') {  // an HTML tag, e.g. <br />: a separator
      const size_t close = text.find('>', i);
      if (close != std::string::npos) {
        finish_word();
        i = close;
        continue;
      }
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (IsWordByte(c))
      word.push_back(static_cast<char>(c));
    else
      finish_word();
  }
  finish_word();
  return tokens;
}

ImdbConversion ConvertImdb(const std::string& root, const std::string& out_dir,
                           const ImdbOptions& options) {
  CheckOptions(options);
  std::error_code ec;
  CREMA_REQUIRE(fs::is_directory(root, ec), "IMDB root '" << root << "' is not a folder");
  ImdbConversion result;
  PrepareOutput(out_dir, &result);
  const std::vector<Review> train = ReadSplit(root, "train");
  const std::vector<Review> test = ReadSplit(root, "test");
  const auto vocabulary = BuildVocabulary(train, options.words, &result.distinct_words);
  result.vocab_path = (fs::path(out_dir) / "imdb_vocab.txt").string();
  WriteVocabulary(result.vocab_path, vocabulary);

  Draws draws(options.seed);
  int64_t kept_tokens = 0, unknown_tokens = 0, truncated = 0;
  auto encode = [&](const std::vector<Review>& reviews, bool count, const std::string& db) {
    std::vector<size_t> order(reviews.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    Shuffle(&order, &draws);
    std::vector<std::vector<int>> ids(reviews.size());
    std::vector<int> labels(reviews.size());
    for (size_t i = 0; i < order.size(); ++i) {
      const Review& review = reviews[order[i]];
      labels[i] = review.label;
      for (const auto& word : review.words) {
        const auto found = vocabulary.find(word);
        ids[i].push_back(found == vocabulary.end() ? 1 : found->second);
      }
      if (!count) continue;
      const size_t n = review.words.size(), kept = std::min(n, size_t(options.length));
      kept_tokens += static_cast<int64_t>(kept);
      unknown_tokens += std::count(ids[i].end() - kept, ids[i].end(), 1);
      truncated += n > kept;
    }
    WriteReviews(db, ids, labels, options.length);
  };
  encode(train, true, result.train_db);
  encode(test, false, result.test_db);
  result.train_reviews = static_cast<int64_t>(train.size());
  result.test_reviews = static_cast<int64_t>(test.size());
  result.train_unknown_share = kept_tokens ? double(unknown_tokens) / kept_tokens : 0.0;
  result.train_truncated_share = train.empty() ? 0.0 : double(truncated) / train.size();
  return result;
}

ImdbConversion WriteSyntheticImdb(const std::string& out_dir, int64_t train_reviews,
                                  int64_t test_reviews, const ImdbOptions& options) {
  CheckOptions(options);
  CREMA_REQUIRE(train_reviews >= 1 && test_reviews >= 1,
                "the synthetic set needs at least 1 review per split; got "
                    << train_reviews << " training and " << test_reviews << " test reviews");
  CREMA_REQUIRE(options.words >= 200,
                "the synthetic set's sentiment words are its last 100 ids: "
                "--words must be at least 200, got "
                    << options.words);
  ImdbConversion result;
  PrepareOutput(out_dir, &result);
  // Zipf law with exponent 1 over ids 2 .. words-1 (rank r = id - 1), as a cumulative table.
  std::vector<double> cumulative(options.words - 2);
  double sum = 0;
  for (size_t r = 0; r < cumulative.size(); ++r) cumulative[r] = (sum += 1.0 / double(r + 1));
  const int first_sentiment_id = options.words - 100;  // even
  Draws draws(options.seed);
  auto write_split = [&](int64_t count, const std::string& db) {
    std::vector<std::vector<int>> ids(count);
    std::vector<int> labels(count);
    for (int64_t i = 0; i < count; ++i) {
      labels[i] = static_cast<int>(draws.below(2));
      const int words = 30 + static_cast<int>(draws.below(371));
      for (int w = 0; w < words; ++w) {
        if (draws.below(10) == 0) {
          ids[i].push_back(first_sentiment_id + 2 * static_cast<int>(draws.below(50)) + labels[i]);
        } else {
          const double u = draws.unit() * sum;
          const size_t rank =
              std::upper_bound(cumulative.begin(), cumulative.end() - 1, u) - cumulative.begin();
          ids[i].push_back(static_cast<int>(rank) + 2);
        }
      }
    }
    WriteReviews(db, ids, labels, options.length);
  };
  write_split(train_reviews, result.train_db);
  write_split(test_reviews, result.test_db);
  result.train_reviews = train_reviews;
  result.test_reviews = test_reviews;
  return result;
}

}  // namespace crema
