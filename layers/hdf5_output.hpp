// HDF5OutputLayer (type "HDF5Output"): appends its two bottoms to an HDF5 file.
//   bottom: data [N, ...], label [N, ...]      top: none
//   hdf5_output_param.file_name: the file, created (truncated) at setup.
//   forward: appends the N rows of bottom 0 to dataset "data" and those of bottom 1 to
//     dataset "label" (float32). As in Caffe the datasets are 4-D [rows, C, H, W] with the
//     legacy axes (a missing axis is 1: a label [N] is stored as [N, 1, 1, 1]); bottoms with
//     more than 4 axes keep their shape. The first forward creates the datasets with an
//     unlimited first axis; each later forward extends them (Caffe writes every batch to the
//     same two names, which works for one batch only; crema appends instead, so a whole
//     test pass ends up in the file). The file is flushed after every forward and closed
//     when the layer is destroyed, so it is complete and readable by HDF5Data then.
//     Errors: bottoms with different N, rows whose shape changes between batches, a file
//     that cannot be created or written.
//   backward: nothing
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

class HDF5OutputLayer : public Layer {
 public:
  explicit HDF5OutputLayer(const pb::LayerParameter& param);
  ~HDF5OutputLayer() override;
  const char* type() const override { return "HDF5Output"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 0; }

  const std::string& file_name() const { return file_name_; }
  int64_t rows_written() const { return rows_; }
  // Closes the file now (later forwards are errors). The destructor does it otherwise.
  void Close();

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  void Append(int which, const Blob& blob);

  std::string file_name_;
  int64_t file_id_ = -1;  // hid_t
  int64_t dataset_id_[2] = {-1, -1};
  std::vector<int64_t> row_shape_[2];  // stored shape without the first axis
  int64_t rows_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode: the bottoms come back to the host to be written to the file (the layer's whole
  // job is host I/O).
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
