#include "layers/hdf5_output.hpp"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <algorithm>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

namespace {

const char* const kDatasetNames[2] = {"data", "label"};

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

// The stored shape of one row: Caffe's legacy (C, H, W) for up to 4 axes.
std::vector<int64_t> RowShape(const Blob& blob) {
  std::vector<int64_t> shape;
  const int axes = blob.num_axes();
  if (axes <= 4) {
    for (int a = 1; a < 4; ++a) shape.push_back(a < axes ? blob.shape(a) : 1);
  } else {
    for (int a = 1; a < axes; ++a) shape.push_back(blob.shape(a));
  }
  return shape;
}

}  // namespace

HDF5OutputLayer::HDF5OutputLayer(const pb::LayerParameter& param) : Layer(param) {}

HDF5OutputLayer::~HDF5OutputLayer() {
  Close();
}

void HDF5OutputLayer::Close() {
  for (int64_t& id : dataset_id_) {
    if (id >= 0) H5Dclose(static_cast<hid_t>(id));
    id = -1;
  }
  if (file_id_ >= 0) {
    if (H5Fclose(static_cast<hid_t>(file_id_)) < 0)
      LOG(ERROR) << error_prefix() << "failed to close HDF5 file " << file_name_;
    else
      LOG(INFO) << error_prefix() << "wrote " << rows_ << " rows to " << file_name_;
    file_id_ = -1;
  }
}

void HDF5OutputLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  Close();
  file_name_ = layer_param_->hdf5_output_param().file_name();
  LAYER_REQUIRE(!file_name_.empty(), "hdf5_output_param.file_name is not set");
  QuietHDF5 quiet;
  const hid_t id = H5Fcreate(file_name_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  LAYER_REQUIRE(id >= 0, "cannot create HDF5 file '"
                             << file_name_ << "' (does its directory exist and is it writable?)");
  file_id_ = id;
  rows_ = 0;
  row_shape_[0].clear();
  row_shape_[1].clear();
}

void HDF5OutputLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(bottom[0]->num_axes() >= 1 && bottom[1]->num_axes() >= 1 &&
                    bottom[0]->shape(0) == bottom[1]->shape(0),
                "data and label must have the same number of rows (first axis): data is "
                    << bottom[0]->shape_string() << ", label is " << bottom[1]->shape_string());
}

void HDF5OutputLayer::Append(int which, const Blob& blob) {
  const std::vector<int64_t> row = RowShape(blob);
  const hsize_t n = static_cast<hsize_t>(blob.shape(0));
  const int rank = static_cast<int>(row.size()) + 1;
  std::vector<hsize_t> dims(rank), max_dims(rank), chunk(rank);
  dims[0] = n;
  max_dims[0] = H5S_UNLIMITED;
  hsize_t row_count = 1;
  for (int a = 1; a < rank; ++a) {
    dims[a] = max_dims[a] = static_cast<hsize_t>(row[a - 1]);
    chunk[a] = std::max<hsize_t>(dims[a], 1);
    row_count *= dims[a];
  }
  // Chunks of about 1 MiB worth of rows (at least one row).
  chunk[0] = std::max<hsize_t>(
      1, std::min<hsize_t>(std::max<hsize_t>(n, 1), (1u << 18) / std::max<hsize_t>(row_count, 1)));
  const hid_t file = static_cast<hid_t>(file_id_);
  const char* name = kDatasetNames[which];
  if (dataset_id_[which] < 0) {
    const hid_t space = H5Screate_simple(rank, dims.data(), max_dims.data());
    const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(plist, rank, chunk.data());
    const hid_t dataset =
        H5Dcreate2(file, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    H5Pclose(plist);
    H5Sclose(space);
    LAYER_REQUIRE(dataset >= 0, "cannot create dataset '" << name << "' in '" << file_name_ << "'");
    dataset_id_[which] = dataset;
    row_shape_[which] = row;
    if (n > 0)
      LAYER_REQUIRE(
          H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, blob.cpu_data()) >= 0,
          "cannot write dataset '" << name << "' of '" << file_name_ << "'");
    return;
  }
  if (row != row_shape_[which]) {
    std::vector<int> before(row_shape_[which].begin(), row_shape_[which].end());
    std::vector<int> now(row.begin(), row.end());
    LAYER_THROW("the rows of '" << name << "' changed shape from " << shape_string(before) << " to "
                                << shape_string(now)
                                << "; an HDF5 dataset needs rows of one shape");
  }
  if (n == 0) return;
  const hid_t dataset = static_cast<hid_t>(dataset_id_[which]);
  std::vector<hsize_t> new_dims = dims;
  new_dims[0] = static_cast<hsize_t>(rows_) + n;
  LAYER_REQUIRE(H5Dset_extent(dataset, new_dims.data()) >= 0,
                "cannot extend dataset '" << name << "' of '" << file_name_ << "'");
  const hid_t file_space = H5Dget_space(dataset);
  std::vector<hsize_t> start(rank, 0);
  start[0] = static_cast<hsize_t>(rows_);
  H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, dims.data(), nullptr);
  const hid_t memory_space = H5Screate_simple(rank, dims.data(), nullptr);
  const herr_t status =
      H5Dwrite(dataset, H5T_NATIVE_FLOAT, memory_space, file_space, H5P_DEFAULT, blob.cpu_data());
  H5Sclose(memory_space);
  H5Sclose(file_space);
  LAYER_REQUIRE(status >= 0, "cannot append to dataset '" << name << "' of '" << file_name_ << "'");
}

void HDF5OutputLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(file_id_ >= 0, "the HDF5 file '" << file_name_ << "' is closed");
  QuietHDF5 quiet;
  Append(0, *bottom[0]);
  Append(1, *bottom[1]);
  rows_ += bottom[0]->shape(0);
  H5Fflush(static_cast<hid_t>(file_id_), H5F_SCOPE_LOCAL);
}

REGISTER_LAYER_CLASS(HDF5Output);

}  // namespace crema
