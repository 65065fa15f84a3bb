// MNIST-format (IDX) datasets: MNIST, Fashion-MNIST, KMNIST...
//
// IDX files (big-endian header):
//   images: magic 2051 (0x00000803), count, rows, cols, then count*rows*cols uint8 pixels
//   labels: magic 2049 (0x00000801), count, then count uint8 labels
// Either file may be gzip-compressed (detected by its first bytes, not its name; decompressed
// with `gzip -dc`).
#pragma once

#include <cstdint>
#include <string>

#include "crema/common.hpp"

namespace crema {

struct MnistConversion {
  int64_t items = 0;
  int rows = 0;
  int cols = 0;
};

// The whole file, gunzipped when it starts with the gzip magic bytes. Throws crema::Error
// naming the path when it cannot be read or decompressed.
std::string ReadFileMaybeGzip(const std::string& path);

// An IDX image file and its IDX label file, read whole (gunzipped) and checked: magic
// numbers, header sizes, file sizes against the headers, and equal image and label counts.
// Throws crema::Error naming the file otherwise.
struct MnistDataset {
  std::string images;  // the image file, header included
  std::string labels;  // the label file, header included
  uint32_t count = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;

  // The rows * cols pixels of image i, row-major.
  const char* image(uint64_t i) const { return images.data() + 16 + i * rows * cols; }
  int label(uint64_t i) const { return static_cast<unsigned char>(labels[8 + i]); }
};
MnistDataset ReadMnist(const std::string& images_path, const std::string& labels_path);

// Writes an LMDB at `db_path` (a new directory) with one Datum per image (channels 1,
// height rows, width cols, uint8 data, label), keys "%08d" from 0, as Caffe's convert_mnist.
// Throws crema::Error for a wrong magic number, a truncated file, or image and label files
// that disagree on the count.
MnistConversion ConvertMnistToLmdb(const std::string& images_path, const std::string& labels_path,
                                   const std::string& db_path);

}  // namespace crema
