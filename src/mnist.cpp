#include "crema/mnist.hpp"

#include <stdio.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crema.pb.h"
#include "crema/db.hpp"

namespace crema {

namespace {

constexpr uint32_t kImageMagic = 2051;
constexpr uint32_t kLabelMagic = 2049;

uint32_t ReadBigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// 'path' with single quotes escaped for /bin/sh.
std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

std::string Gunzip(const std::string& path) {
  const std::string command = "gzip -dc -- " + ShellQuote(path) + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  CREMA_REQUIRE(pipe, "cannot run gzip to decompress '" << path << "': " << std::strerror(errno));
  std::string out;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = ::pclose(pipe);
  CREMA_REQUIRE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "cannot decompress '" << path
                                      << "': `gzip -dc` failed (is the file a complete .gz "
                                         "archive, and is gzip installed?)");
  return out;
}

// Checks magic and header; returns the item count.
uint32_t CheckHeader(const std::string& bytes, const std::string& path, uint32_t magic,
                     size_t header_size, const char* kind) {
  CREMA_REQUIRE(bytes.size() >= 4, "'" << path << "' is too short (" << bytes.size()
                                       << " bytes) to be an IDX " << kind << " file");
  const uint32_t found = ReadBigEndian32(bytes, 0);
  if (found != magic) {
    const char* hint = found == kImageMagic   ? " (it is an image file)"
                       : found == kLabelMagic ? " (it is a label file)"
                                              : "";
    CREMA_THROW("'" << path << "' is not an IDX " << kind << " file: magic number " << found
                    << ", expected " << magic << hint);
  }
  CREMA_REQUIRE(bytes.size() >= header_size, "'" << path << "' is too short (" << bytes.size()
                                                 << " bytes) for the header of an IDX " << kind
                                                 << " file (truncated file?)");
  return ReadBigEndian32(bytes, 4);
}

}  // namespace

std::string ReadFileMaybeGzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CREMA_THROW("cannot open '" << path << "': " << std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  std::string bytes = content.str();
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
      static_cast<unsigned char>(bytes[1]) == 0x8b)
    return Gunzip(path);
  return bytes;
}

MnistDataset ReadMnist(const std::string& images_path, const std::string& labels_path) {
  MnistDataset data;
  data.images = ReadFileMaybeGzip(images_path);
  data.labels = ReadFileMaybeGzip(labels_path);
  const std::string& images = data.images;
  const std::string& labels = data.labels;
  const uint32_t num_images = CheckHeader(images, images_path, kImageMagic, 16, "image");
  const uint32_t num_labels = CheckHeader(labels, labels_path, kLabelMagic, 8, "label");
  const uint32_t rows = ReadBigEndian32(images, 8);
  const uint32_t cols = ReadBigEndian32(images, 12);
  CREMA_REQUIRE(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536,
                "'" << images_path << "' declares " << rows << " x " << cols << " images");
  const uint64_t pixels = uint64_t{rows} * cols;
  const uint64_t expected_images = 16 + uint64_t{num_images} * pixels;
  CREMA_REQUIRE(images.size() == expected_images,
                "'" << images_path << "' has " << images.size() << " bytes but its header ("
                    << num_images << " images of " << rows << " x " << cols << ") needs "
                    << expected_images << " (truncated or corrupt file?)");
  CREMA_REQUIRE(labels.size() == 8 + uint64_t{num_labels},
                "'" << labels_path << "' has " << labels.size() << " bytes but its header ("
                    << num_labels << " labels) needs " << 8 + uint64_t{num_labels}
                    << " (truncated or corrupt file?)");
  CREMA_REQUIRE(num_images == num_labels, "'" << images_path << "' holds " << num_images
                                              << " images but '" << labels_path << "' holds "
                                              << num_labels << " labels");
  data.count = num_images;
  data.rows = rows;
  data.cols = cols;
  return data;
}

MnistConversion ConvertMnistToLmdb(const std::string& images_path, const std::string& labels_path,
                                   const std::string& db_path) {
  const MnistDataset data = ReadMnist(images_path, labels_path);
  const uint64_t pixels = uint64_t{data.rows} * data.cols;
  LMDBWriter writer(db_path, /*commit_every=*/1000);
  pb::Datum datum;
  datum.set_channels(1);
  datum.set_height(static_cast<int>(data.rows));
  datum.set_width(static_cast<int>(data.cols));
  std::string value;
  char key[32];
  for (uint32_t i = 0; i < data.count; ++i) {
    datum.set_data(data.image(i), pixels);
    datum.set_label(data.label(i));
    datum.SerializeToString(&value);
    std::snprintf(key, sizeof(key), "%08u", i);
    writer.Put(key, value);
  }
  writer.Close();
  MnistConversion result;
  result.items = data.count;
  result.rows = static_cast<int>(data.rows);
  result.cols = static_cast<int>(data.cols);
  return result;
}

}  // namespace crema
