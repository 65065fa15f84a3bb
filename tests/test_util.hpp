// Helpers shared by the test files: protobuf messages from prototxt text, layers from text
// through the registry, blob contents as vectors, error-message checks, temporary
// directories. Everything lives in crema::testing (next to gradient_checker.hpp's helpers).
#pragma once

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/db.hpp"
#include "crema/layer.hpp"
#include "crema/layer_registry.hpp"

// Runs `statement`, which must throw crema::Error whose message contains every one of the
// strings that follow (none: any crema::Error will do).
#define EXPECT_ERROR_WITH(statement, ...)                                   \
  do {                                                                      \
    try {                                                                   \
      statement;                                                            \
      ADD_FAILURE() << "expected crema::Error from " #statement;            \
    } catch (const ::crema::Error& e) {                                     \
      for (const std::string& part : std::vector<std::string>{__VA_ARGS__}) \
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos)      \
            << "'" << part << "' missing from: " << e.what();               \
    }                                                                       \
  } while (0)

namespace crema {
namespace testing {

// Any protobuf message from its text format; a parse failure is a test failure.
template <typename Message>
Message ParseText(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

inline pb::LayerParameter LayerParam(const std::string& text) {
  return ParseText<pb::LayerParameter>(text);
}

inline pb::NetParameter NetParam(const std::string& text) {
  return ParseText<pb::NetParameter>(text);
}

// A layer built by LayerRegistry from its LayerParameter text.
inline std::shared_ptr<Layer> MakeLayer(const std::string& text) {
  return LayerRegistry::Create(LayerParam(text));
}

// The message of the crema::Error that f() throws; "" when it throws none.
template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::vector<float> Values(const Blob& blob) {
  return {blob.cpu_data(), blob.cpu_data() + blob.count()};
}

inline std::vector<float> Diffs(const Blob& blob) {
  return {blob.cpu_diff(), blob.cpu_diff() + blob.count()};
}

// Copies `values` into the blob's data; their count must match.
inline void SetValues(Blob* blob, const std::vector<float>& values) {
  ASSERT_EQ(blob->count(), static_cast<int>(values.size()));
  std::copy(values.begin(), values.end(), blob->mutable_cpu_data());
}

// Writes an LMDB at `path` of n Datums channels x height x width, keyed by the item index
// ("%08d"): byte j of item i is pixel(i, j), its label label(i). `commit_every` as LMDBWriter's.
template <typename Pixel, typename Label>
void WriteDatumLmdb(const std::string& path, int n, int channels, int height, int width,
                    Pixel pixel, Label label, int commit_every = 1000) {
  LMDBWriter writer(path, commit_every);
  const int size = channels * height * width;
  for (int i = 0; i < n; ++i) {
    pb::Datum datum;
    datum.set_channels(channels);
    datum.set_height(height);
    datum.set_width(width);
    std::string data(size, '\0');
    for (int j = 0; j < size; ++j) data[j] = static_cast<char>(pixel(i, j));
    datum.set_data(data);
    datum.set_label(label(i));
    char key[16];
    std::snprintf(key, sizeof(key), "%08d", i);
    writer.Put(key, datum.SerializeAsString());
  }
  writer.Close();
}

// A fresh directory under the test temp dir (mkdtemp), removed with everything in it when
// the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "crema_test_") {
    std::string pattern = ::testing::TempDir() + prefix + "XXXXXX";
    const char* made = ::mkdtemp(&pattern[0]);
    EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
    if (made) path_ = pattern;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) ADD_FAILURE() << "cannot remove " << path_ << ": " << ec.message();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What a run of the crema executable (CREMA_BINARY) printed and how it ended.
struct CremaRun {
  int status = -1;     // the exit status; 128 + the signal when a signal ended it
  std::string output;  // stdout and stderr together
};

// Runs `crema ARGS` through the shell (ARGS is a shell fragment).
inline CremaRun RunCrema(const std::string& args) {
  const std::string command = std::string(CREMA_BINARY) + " " + args + " 2>&1";
  CremaRun result;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int raw = pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return result;
}

}  // namespace testing
}  // namespace crema
