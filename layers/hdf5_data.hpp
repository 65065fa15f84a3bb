// HDF5DataLayer (type "HDF5Data"): rows of HDF5 datasets, one dataset per top.
//   bottom: none        top j: [batch_size, d1, d2, ...] from the dataset named top(j)
//   hdf5_data_param:
//     source      text file listing HDF5 files, separated by whitespace; relative paths are
//                 resolved against the current directory (as Caffe).
//     batch_size  rows per batch (> 0).
//     shuffle     visit the files in a random order, and each file's rows in a random
//                 order, drawn anew for every epoch.
//   Every listed file must hold, for every top, a dataset of that name with >= 1 axes whose
//   first axis counts the rows (the same number of rows for all tops of a file) and whose
//   other axes [d1, d2, ...] are the same in all files; float32, float64 (and, as in Caffe,
//   integer) datasets are read as float. These are checked at setup, for every file, and a
//   failure names the file and the dataset. transform_param is refused (Caffe does too).
//   forward: item i of batch k is global row g = (k * batch_size + i) * S + r (S, r = solver
//     count and rank in TRAIN with several solvers, else 1, 0: Caffe's row skipping), which
//     is row g mod R of epoch g / R (R = total rows): the epoch visits the files in list
//     order (or a permutation seeded by (seed, layer, epoch)) and the rows of each file in
//     order (or a permutation seeded by (seed, layer, epoch, file)). A file's datasets are
//     loaded whole when a row of it is first needed (Caffe's memory model).
//     Batch k thus depends only on (files, seed, k): SeekBatch(k) resumes exactly.
//   backward: nothing
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

class HDF5DataLayer : public Layer {
 public:
  explicit HDF5DataLayer(const pb::LayerParameter& param);
  const char* type() const override { return "HDF5Data"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int MinTopBlobs() const override { return 1; }

  void SeekBatch(int64_t index) override { next_batch_ = index; }
  int64_t next_batch() const { return next_batch_; }
  const std::vector<std::string>& files() const { return files_; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  // Makes file `file` (index into files_) the loaded one, with its row order for `epoch`.
  void LoadFile(size_t file, int64_t epoch);
  void Order(uint64_t stream, int64_t epoch, size_t n, std::vector<uint32_t>* order) const;

  std::vector<std::string> files_;
  std::vector<std::string> datasets_;         // = the top names
  std::vector<int64_t> rows_;                 // rows per file
  std::vector<int64_t> row_dims_;             // elements per row, per dataset
  std::vector<std::vector<int>> item_shape_;  // [d1, ...] per dataset
  int64_t total_rows_ = 0;
  int batch_size_ = 0;
  bool shuffle_ = false;
  int stride_ = 1, rank_ = 0;
  uint64_t seed_stream_ = 0;
  int64_t next_batch_ = 0;

  // The loaded file.
  int64_t loaded_file_ = -1, loaded_epoch_ = -1;
  std::vector<std::vector<float>> loaded_;  // per dataset, rows x row_dims
  std::vector<uint32_t> row_order_;
  // The file order of the current epoch.
  int64_t order_epoch_ = -1;
  std::vector<uint32_t> file_order_;
  std::vector<int64_t> file_start_;  // cumulative rows in file_order_ order

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode: the rows are read on the host; the tops move to the device when the next layer
  // reads them (a data source has nothing to compute on the device).
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {
    Backward_cpu(top, propagate_down, bottom);
  }
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
