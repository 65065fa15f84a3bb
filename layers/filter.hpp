// FilterLayer (type "Filter"): keeps the examples whose selector is nonzero.
//   bottoms: x_0, ..., x_{k-1} (each [N, ...]) and last the selector s [N, 1, ...] (every
//            axis after the first of size 1)
//   tops:    y_0, ..., y_{k-1}: y_t = the rows n of x_t with s[n] != 0, in order
//            ([M, ...], M = number of selected rows). At SetUp the tops are shaped with all
//            N rows (as Caffe does), every Forward reshapes them to the M selected rows.
//   backward: dx_t[n] = dy_t[j] when n is the j-th selected row, else 0. The selector
//             receives no gradient.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class FilterLayer : public Layer {
 public:
  explicit FilterLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "Filter"; }
  int MinBottomBlobs() const override { return 2; }
  int MinTopBlobs() const override { return 1; }
  bool AllowForceBackward(int bottom_index) const override;

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool first_reshape_ = true;
  int num_bottoms_ = 0;
  std::vector<int> selected_;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // GPU mode: selected_ as floats on the device (exact below 2^24 rows).
  Blob gpu_selected_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
