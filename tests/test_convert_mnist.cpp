// The MNIST (IDX) to LMDB conversion behind `crema convert_mnist`.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/db.hpp"
#include "crema/mnist.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::ErrorOf;
using testing::TempDir;

void PutBigEndian(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// n images of rows x cols with pixel (i, j) = i * 16 + j, labels 9 - i.
std::string Images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 2051) {
  std::string bytes;
  PutBigEndian(&bytes, magic);
  PutBigEndian(&bytes, n);
  PutBigEndian(&bytes, rows);
  PutBigEndian(&bytes, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t j = 0; j < rows * cols; ++j) bytes.push_back(static_cast<char>(i * 16 + j));
  return bytes;
}

std::string Labels(uint32_t n, uint32_t magic = 2049) {
  std::string bytes;
  PutBigEndian(&bytes, magic);
  PutBigEndian(&bytes, n);
  for (uint32_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(9 - i));
  return bytes;
}

void ExpectDatabase(const std::string& db, uint32_t n, int rows, int cols) {
  LMDBReader reader(db);
  ASSERT_EQ(reader.Entries(), n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_TRUE(reader.valid());
    char key[16];
    std::snprintf(key, sizeof(key), "%08u", i);
    EXPECT_EQ(reader.key(), key);
    pb::Datum datum;
    ASSERT_TRUE(datum.ParseFromArray(reader.value().data(), reader.value().size()));
    EXPECT_EQ(datum.channels(), 1);
    EXPECT_EQ(datum.height(), rows);
    EXPECT_EQ(datum.width(), cols);
    EXPECT_EQ(datum.label(), static_cast<int>(9 - i));
    EXPECT_FALSE(datum.encoded());
    ASSERT_EQ(datum.data().size(), static_cast<size_t>(rows * cols));
    for (int j = 0; j < rows * cols; ++j)
      EXPECT_EQ(static_cast<uint8_t>(datum.data()[j]), static_cast<uint8_t>(i * 16 + j));
    reader.Next();
  }
}

TEST(ConvertMnist, WritesDatumsWithCaffeKeys) {
  TempDir dir;
  WriteFile(dir.path() + "/img", Images(3, 2, 3));
  WriteFile(dir.path() + "/lbl", Labels(3));
  const MnistConversion result =
      ConvertMnistToLmdb(dir.path() + "/img", dir.path() + "/lbl", dir.path() + "/db");
  EXPECT_EQ(result.items, 3);
  EXPECT_EQ(result.rows, 2);
  EXPECT_EQ(result.cols, 3);
  ExpectDatabase(dir.path() + "/db", 3, 2, 3);
  // The database exists now: converting again is refused.
  EXPECT_THROW(ConvertMnistToLmdb(dir.path() + "/img", dir.path() + "/lbl", dir.path() + "/db"),
               Error);
}

TEST(ConvertMnist, AcceptsGzip) {
  TempDir dir;
  WriteFile(dir.path() + "/img", Images(4, 3, 2));
  WriteFile(dir.path() + "/lbl", Labels(4));
  ASSERT_EQ(std::system(("gzip -n '" + dir.path() + "/img'").c_str()), 0);
  ConvertMnistToLmdb(dir.path() + "/img.gz", dir.path() + "/lbl", dir.path() + "/db");
  ExpectDatabase(dir.path() + "/db", 4, 3, 2);
  // A truncated archive is an error, not a short dataset.
  std::string gz;
  {
    std::ifstream in(dir.path() + "/img.gz", std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  WriteFile(dir.path() + "/cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_THROW(ConvertMnistToLmdb(dir.path() + "/cut.gz", dir.path() + "/lbl", dir.path() + "/db2"),
               Error);
}

std::string ErrorOf(const std::string& images, const std::string& labels, const std::string& dir) {
  WriteFile(dir + "/img", images);
  WriteFile(dir + "/lbl", labels);
  std::filesystem::remove_all(dir + "/db");
  try {
    ConvertMnistToLmdb(dir + "/img", dir + "/lbl", dir + "/db");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConvertMnist, ClearErrors) {
  TempDir dir;
  const std::string& d = dir.path();
  // Swapped files: the magic numbers say which is which.
  std::string message = ErrorOf(Labels(3), Images(3, 2, 2), d);
  EXPECT_NE(message.find("magic number 2049"), std::string::npos) << message;
  EXPECT_NE(message.find("label file"), std::string::npos) << message;
  message = ErrorOf(Images(3, 2, 2, 1234), Labels(3), d);
  EXPECT_NE(message.find("1234"), std::string::npos) << message;
  // Count mismatch between images and labels.
  message = ErrorOf(Images(3, 2, 2), Labels(4), d);
  EXPECT_NE(message.find("3 images"), std::string::npos) << message;
  EXPECT_NE(message.find("4 labels"), std::string::npos) << message;
  // Truncated image file.
  const std::string images = Images(3, 2, 2);
  message = ErrorOf(images.substr(0, images.size() - 1), Labels(3), d);
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  // Missing file.
  std::filesystem::remove_all(d + "/db");
  EXPECT_THROW(ConvertMnistToLmdb(d + "/nope", d + "/lbl", d + "/db"), Error);
}

}  // namespace
}  // namespace crema
