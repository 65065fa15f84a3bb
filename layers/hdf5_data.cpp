#include "layers/hdf5_data.hpp"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/prefetch.hpp"

namespace crema {

namespace {

// Silences HDF5's own error-stack printing while alive: crema reports failures itself.
class QuietHDF5 {
 public:
  QuietHDF5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHDF5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Closes an HDF5 file id at scope exit.
struct FileCloser {
  hid_t id;
  ~FileCloser() {
    if (id >= 0) H5Fclose(id);
  }
};

constexpr uint64_t kFileOrderStream = 0x46494c4553ull;  // "FILES"
constexpr uint64_t kRowOrderStream = 0x524f5753ull;     // "ROWS"

}  // namespace

HDF5DataLayer::HDF5DataLayer(const pb::LayerParameter& param) : Layer(param) {}

void HDF5DataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(!layer_param_->has_transform_param(),
                "HDF5Data does not transform data: remove transform_param (preprocess the "
                "data before writing the HDF5 files)");
  const pb::HDF5DataParameter& param = layer_param_->hdf5_data_param();
  const std::string& source = param.source();
  LAYER_REQUIRE(!source.empty(),
                "hdf5_data_param.source is not set (a text file listing HDF5 files)");
  LAYER_REQUIRE(param.batch_size() > 0,
                "hdf5_data_param.batch_size must be positive, got " << param.batch_size());
  LAYER_REQUIRE(param.batch_size() <= (1u << 30),
                "hdf5_data_param.batch_size is too large: " << param.batch_size());
  batch_size_ = static_cast<int>(param.batch_size());
  shuffle_ = param.shuffle();
  if (phase_ == Phase::TRAIN && Context::solver_count() > 1) {
    stride_ = Context::solver_count();
    rank_ = Context::solver_rank();
  } else {
    stride_ = 1;
    rank_ = 0;
  }

  std::ifstream list(source);
  LAYER_REQUIRE(list.is_open(), "cannot open hdf5_data_param.source '" << source << "'");
  files_.clear();
  std::string entry;
  while (list >> entry) files_.push_back(entry);
  LAYER_REQUIRE(!files_.empty(), "'" << source << "' lists no HDF5 file");

  datasets_.clear();
  for (size_t j = 0; j < top.size(); ++j)
    datasets_.push_back(layer_param_->top(static_cast<int>(j)));

  // Check every file now, so a bad file fails at setup rather than hours later.
  QuietHDF5 quiet;
  rows_.assign(files_.size(), 0);
  item_shape_.assign(datasets_.size(), {});
  row_dims_.assign(datasets_.size(), 0);
  for (size_t f = 0; f < files_.size(); ++f) {
    const std::string& file = files_[f];
    {
      std::ifstream probe(file);
      LAYER_REQUIRE(probe.good(), "HDF5 file '" << file << "' (listed in '" << source
                                                << "') does not exist or cannot be read");
    }
    FileCloser closer{H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)};
    LAYER_REQUIRE(closer.id >= 0,
                  "cannot open '" << file << "' (listed in '" << source << "') as an HDF5 file");
    for (size_t j = 0; j < datasets_.size(); ++j) {
      const std::string& dataset = datasets_[j];
      LAYER_REQUIRE(H5LTfind_dataset(closer.id, dataset.c_str()) > 0,
                    "HDF5 file '" << file << "' has no dataset '" << dataset
                                  << "' (HDF5Data reads one dataset per top, named after it)");
      int ndims = 0;
      LAYER_REQUIRE(H5LTget_dataset_ndims(closer.id, dataset.c_str(), &ndims) >= 0,
                    "cannot read the rank of dataset '" << dataset << "' in '" << file << "'");
      LAYER_REQUIRE(ndims >= 1, "dataset '" << dataset << "' in '" << file
                                            << "' is a scalar; it needs a first axis of rows");
      std::vector<hsize_t> dims(ndims);
      H5T_class_t type_class;
      size_t type_size = 0;
      LAYER_REQUIRE(H5LTget_dataset_info(closer.id, dataset.c_str(), dims.data(), &type_class,
                                         &type_size) >= 0,
                    "cannot read the shape of dataset '" << dataset << "' in '" << file << "'");
      LAYER_REQUIRE(type_class == H5T_FLOAT || type_class == H5T_INTEGER,
                    "dataset '" << dataset << "' in '" << file
                                << "' is not numeric (float32/float64 expected)");
      std::vector<int> shape;
      int64_t per_row = 1;
      for (int d = 1; d < ndims; ++d) {
        LAYER_REQUIRE(dims[d] <= static_cast<hsize_t>(INT32_MAX),
                      "dataset '" << dataset << "' in '" << file << "' is too large");
        shape.push_back(static_cast<int>(dims[d]));
        per_row *= static_cast<int64_t>(dims[d]);
      }
      if (f == 0) {
        item_shape_[j] = shape;
        row_dims_[j] = per_row;
      } else {
        LAYER_REQUIRE(shape == item_shape_[j],
                      "dataset '" << dataset << "' in '" << file << "' has rows of shape "
                                  << shape_string(shape) << " but in '" << files_[0]
                                  << "' they are " << shape_string(item_shape_[j]));
      }
      if (j == 0) {
        rows_[f] = static_cast<int64_t>(dims[0]);
      } else {
        LAYER_REQUIRE(static_cast<int64_t>(dims[0]) == rows_[f],
                      "dataset '" << dataset << "' in '" << file << "' has " << dims[0]
                                  << " rows but dataset '" << datasets_[0] << "' has " << rows_[f]
                                  << " (every top needs one row per item)");
      }
    }
  }
  total_rows_ = 0;
  for (int64_t r : rows_) total_rows_ += r;
  LAYER_REQUIRE(total_rows_ > 0, "the HDF5 files listed in '" << source << "' hold no rows");

  for (size_t j = 0; j < datasets_.size(); ++j) {
    std::vector<int> shape{batch_size_};
    shape.insert(shape.end(), item_shape_[j].begin(), item_shape_[j].end());
    LAYER_REQUIRE(row_dims_[j] * batch_size_ <= INT32_MAX, "a batch of '" << datasets_[j] << "' ("
                                                                          << shape_string(shape)
                                                                          << ") is too large");
    top[j]->Reshape(shape);
  }
  seed_stream_ = StableHash("HDF5Data|" + name() + "|" + std::to_string(static_cast<int>(phase_)) +
                            "|" + source);
  LOG(INFO) << error_prefix() << files_.size() << " HDF5 file(s), " << total_rows_ << " rows"
            << (shuffle_ ? ", shuffled" : "");
  next_batch_ = 0;
  loaded_file_ = loaded_epoch_ = order_epoch_ = -1;
  loaded_.clear();
}

void HDF5DataLayer::Order(uint64_t stream, int64_t epoch, size_t n,
                          std::vector<uint32_t>* order) const {
  order->resize(n);
  for (size_t i = 0; i < n; ++i) (*order)[i] = static_cast<uint32_t>(i);
  if (!shuffle_) return;
  std::mt19937 rng(static_cast<uint32_t>(Context::derive_seed(stream, epoch)));
  StableShuffle(order, rng);
}

void HDF5DataLayer::LoadFile(size_t file, int64_t epoch) {
  if (static_cast<int64_t>(file) != loaded_file_) {
    const std::string& path = files_[file];
    QuietHDF5 quiet;
    FileCloser closer{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)};
    LAYER_REQUIRE(closer.id >= 0, "cannot open HDF5 file '" << path << "'");
    loaded_.resize(datasets_.size());
    for (size_t j = 0; j < datasets_.size(); ++j) {
      const std::string& dataset = datasets_[j];
      // The file may have changed since setup: check the size again.
      int ndims = 0;
      LAYER_REQUIRE(H5LTfind_dataset(closer.id, dataset.c_str()) > 0 &&
                        H5LTget_dataset_ndims(closer.id, dataset.c_str(), &ndims) >= 0 &&
                        ndims == static_cast<int>(item_shape_[j].size()) + 1,
                    "dataset '" << dataset << "' in '" << path << "' changed since setup");
      std::vector<hsize_t> dims(ndims);
      H5T_class_t type_class;
      size_t type_size;
      LAYER_REQUIRE(H5LTget_dataset_info(closer.id, dataset.c_str(), dims.data(), &type_class,
                                         &type_size) >= 0 &&
                        static_cast<int64_t>(dims[0]) == rows_[file],
                    "dataset '" << dataset << "' in '" << path << "' changed since setup");
      loaded_[j].resize(static_cast<size_t>(rows_[file] * row_dims_[j]));
      LAYER_REQUIRE(H5LTread_dataset_float(closer.id, dataset.c_str(), loaded_[j].data()) >= 0,
                    "cannot read dataset '" << dataset << "' of '" << path << "' as float");
    }
    loaded_file_ = static_cast<int64_t>(file);
    loaded_epoch_ = -1;
    VLOG(1) << error_prefix() << "loaded " << rows_[file] << " rows from " << path;
  }
  if (epoch != loaded_epoch_) {
    Order(Context::derive_seed(seed_stream_ ^ kRowOrderStream, file), epoch,
          static_cast<size_t>(rows_[file]), &row_order_);
    loaded_epoch_ = epoch;
  }
}

void HDF5DataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int64_t batch = next_batch_;
  for (int i = 0; i < batch_size_; ++i) {
    const uint64_t g = (static_cast<uint64_t>(batch) * batch_size_ + i) * stride_ + rank_;
    const int64_t epoch = static_cast<int64_t>(g / total_rows_);
    const int64_t r = static_cast<int64_t>(g % total_rows_);
    if (epoch != order_epoch_) {
      Order(seed_stream_ ^ kFileOrderStream, epoch, files_.size(), &file_order_);
      file_start_.assign(files_.size() + 1, 0);
      for (size_t k = 0; k < files_.size(); ++k)
        file_start_[k + 1] = file_start_[k] + rows_[file_order_[k]];
      order_epoch_ = epoch;
    }
    // The file holding row r of this epoch: the last start <= r (skipping empty files).
    const size_t slot = static_cast<size_t>(
        std::upper_bound(file_start_.begin(), file_start_.end(), r) - file_start_.begin() - 1);
    const size_t file = file_order_[slot];
    LoadFile(file, epoch);
    const size_t row = row_order_[static_cast<size_t>(r - file_start_[slot])];
    for (size_t j = 0; j < datasets_.size(); ++j) {
      const int64_t dim = row_dims_[j];
      std::copy_n(loaded_[j].data() + row * dim, dim, top[j]->mutable_cpu_data() + i * dim);
    }
  }
  next_batch_ = batch + 1;
}

REGISTER_LAYER_CLASS(HDF5Data);

}  // namespace crema
