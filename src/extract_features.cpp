// ExtractFeatures: see include/crema/image_tools.hpp.
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/db.hpp"
#include "crema/image_tools.hpp"
#include "crema/net.hpp"

namespace crema {

namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Where the items of one blob go.
class FeatureSink {
 public:
  virtual ~FeatureSink() = default;
  virtual void Add(const float* values, const std::vector<int>& item_shape) = 0;
  virtual void Close() = 0;
};

int ItemSize(const std::vector<int>& item_shape) {
  int size = 1;
  for (int d : item_shape) size *= d;
  return size;
}

class LmdbSink : public FeatureSink {
 public:
  explicit LmdbSink(const std::string& path) : writer_(path, /*commit_every=*/1000) {}
  void Add(const float* values, const std::vector<int>& item_shape) override {
    const int size = ItemSize(item_shape);
    datum_.Clear();
    datum_.set_channels(size);
    datum_.set_height(1);
    datum_.set_width(1);
    datum_.mutable_float_data()->Reserve(size);
    for (int i = 0; i < size; ++i) datum_.add_float_data(values[i]);
    datum_.SerializeToString(&value_);
    char key[32];
    std::snprintf(key, sizeof(key), "%010lld", static_cast<long long>(index_++));
    writer_.Put(key, value_);
  }
  void Close() override { writer_.Close(); }

 private:
  LMDBWriter writer_;
  pb::Datum datum_;
  std::string value_;
  int64_t index_ = 0;
};

// A stdio file that reports errors with its path.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "wb");
    CREMA_REQUIRE(file_, "cannot create '" << path << "': " << std::strerror(errno));
  }
  ~OutputFile() {
    if (file_) std::fclose(file_);
  }
  void Write(const void* data, size_t bytes) {
    CREMA_REQUIRE(std::fwrite(data, 1, bytes, file_) == bytes,
                  "cannot write to '" << path_ << "': " << std::strerror(errno));
  }
  void Seek(long offset) {
    CREMA_REQUIRE(std::fseek(file_, offset, SEEK_SET) == 0,
                  "cannot seek in '" << path_ << "': " << std::strerror(errno));
  }
  void Close() {
    const int rc = std::fclose(file_);
    file_ = nullptr;
    CREMA_REQUIRE(rc == 0, "cannot finish writing '" << path_ << "': " << std::strerror(errno));
  }
  std::FILE* get() { return file_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// NPY format 1.0: "\x93NUMPY", version 1 0, uint16 little-endian header length, then the
// header (a Python dict literal) padded with spaces and ending in '\n' so that the data
// starts on a multiple of 64 bytes. The row count is only known at the end, so the header
// is written twice: first with room for any count, finally with the real one.
class NpySink : public FeatureSink {
 public:
  explicit NpySink(const std::string& path) : file_(path) {}
  void Add(const float* values, const std::vector<int>& item_shape) override {
    if (rows_ == 0) {
      item_shape_ = item_shape;
      // Room for the largest row count an int64 can hold.
      header_total_ = HeaderText(INT64_MAX, 0).size();
      header_total_ = (header_total_ + 63) / 64 * 64;
      const std::string header = HeaderText(0, header_total_);
      file_.Write(header.data(), header.size());
    }
    file_.Write(values, sizeof(float) * ItemSize(item_shape));
    ++rows_;
  }
  void Close() override {
    if (rows_ == 0) {
      header_total_ = (HeaderText(0, 0).size() + 63) / 64 * 64;
    } else {
      file_.Seek(0);
    }
    const std::string header = HeaderText(rows_, header_total_);
    file_.Write(header.data(), header.size());
    file_.Close();
  }

 private:
  // The whole preamble (magic, version, length, dict, padding, '\n'); with total == 0 it is
  // not padded (used to measure).
  std::string HeaderText(int64_t rows, size_t total) const {
    std::ostringstream dict;
    dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (" << rows;
    if (item_shape_.empty()) dict << ",";
    for (int d : item_shape_) dict << ", " << d;
    dict << "), }";
    std::string text = dict.str();
    const size_t preamble = 10;
    size_t length = text.size() + 1;
    if (total > 0) {
      CHECK_GE(total, preamble + length);
      length = total - preamble;
    }
    text.resize(length - 1, ' ');
    text += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(length & 0xff);
    out += static_cast<char>((length >> 8) & 0xff);
    return out + text;
  }

  OutputFile file_;
  std::vector<int> item_shape_;
  int64_t rows_ = 0;
  size_t header_total_ = 0;
};

class CsvSink : public FeatureSink {
 public:
  explicit CsvSink(const std::string& path) : file_(path) {}
  void Add(const float* values, const std::vector<int>& item_shape) override {
    const int size = ItemSize(item_shape);
    line_.clear();
    char number[32];
    for (int i = 0; i < size; ++i) {
      const int n = std::snprintf(number, sizeof(number), "%.9g", static_cast<double>(values[i]));
      if (i) line_ += ',';
      line_.append(number, n);
    }
    line_ += '\n';
    file_.Write(line_.data(), line_.size());
  }
  void Close() override { file_.Close(); }

 private:
  OutputFile file_;
  std::string line_;
};

}  // namespace

FeatureFormat ParseFeatureFormat(const std::string& format, const std::string& output) {
  const std::string f = Lower(format);
  if (f == "lmdb") return FeatureFormat::LMDB;
  if (f == "npy") return FeatureFormat::NPY;
  if (f == "csv") return FeatureFormat::CSV;
  CREMA_REQUIRE(f.empty(), "unknown feature format '" << format << "' (use lmdb, npy or csv)");
  const std::string out = Lower(output);
  if (EndsWith(out, ".npy")) return FeatureFormat::NPY;
  if (EndsWith(out, ".csv")) return FeatureFormat::CSV;
  return FeatureFormat::LMDB;
}

int64_t ExtractFeatures(Net* net, const std::vector<std::string>& blob_names,
                        const std::vector<std::string>& outputs, int iterations,
                        FeatureFormat format) {
  CREMA_REQUIRE(!blob_names.empty(), "no blob to extract (give --blobs name[,name...])");
  CREMA_REQUIRE(blob_names.size() == outputs.size(),
                "got " << blob_names.size() << " blob name(s) but " << outputs.size()
                       << " output(s); give one output per blob");
  CREMA_REQUIRE(iterations > 0, "the number of iterations must be positive, got " << iterations);
  std::vector<std::shared_ptr<Blob>> blobs;
  for (const auto& name : blob_names) {
    std::shared_ptr<Blob> blob = net->blob_by_name(name);
    if (!blob) {
      std::ostringstream known;
      for (size_t i = 0; i < net->blob_names().size(); ++i)
        known << (i ? ", " : "") << net->blob_names()[i];
      CREMA_THROW("net '" << net->name() << "' has no blob '" << name
                          << "'; its blobs are: " << known.str());
    }
    blobs.push_back(blob);
  }

  std::vector<std::unique_ptr<FeatureSink>> sinks;
  for (const auto& path : outputs) {
    switch (format) {
      case FeatureFormat::LMDB:
        sinks.emplace_back(new LmdbSink(path));
        break;
      case FeatureFormat::NPY:
        sinks.emplace_back(new NpySink(path));
        break;
      case FeatureFormat::CSV:
        sinks.emplace_back(new CsvSink(path));
        break;
    }
  }

  std::vector<std::vector<int>> item_shapes(blobs.size());
  int64_t items = 0;
  for (int iteration = 0; iteration < iterations; ++iteration) {
    net->Forward();
    for (size_t b = 0; b < blobs.size(); ++b) {
      const Blob& blob = *blobs[b];
      const std::vector<int>& shape = blob.shape();
      const int num = shape.empty() ? 1 : shape[0];
      const std::vector<int> item_shape =
          shape.empty() ? std::vector<int>{} : std::vector<int>(shape.begin() + 1, shape.end());
      if (iteration == 0) {
        item_shapes[b] = item_shape;
      } else if (item_shape != item_shapes[b]) {
        CREMA_THROW("blob '" << blob_names[b] << "' changed shape between iterations: "
                             << shape_string(item_shapes[b]) << " per item at first, now "
                             << shape_string(item_shape));
      }
      const int size = num > 0 ? blob.count() / num : 0;
      const float* data = blob.cpu_data();
      for (int n = 0; n < num; ++n) sinks[b]->Add(data + static_cast<size_t>(n) * size, item_shape);
      if (b == 0) items += num;
    }
    if ((iteration + 1) % 100 == 0 || iteration + 1 == iterations)
      LOG(INFO) << "Extracted " << items << " items (" << iteration + 1 << " / " << iterations
                << " iterations)";
  }
  for (auto& sink : sinks) sink->Close();
  return items;
}

}  // namespace crema
