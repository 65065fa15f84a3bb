// ArgMaxLayer (type "ArgMax"): the indices (and optionally values) of the top_k largest
// entries. No backward (it is not differentiable; Backward refuses to run).
//   argmax_param: out_max_val (false), top_k (1), axis (optional).
//   With axis a: bottom x [d_0, ..., d_a, ..., d_n]; top [d_0, ..., top_k, ..., d_n] holding,
//     along a, the indices of the top_k largest values of x along a (largest first) or,
//     with out_max_val, those values instead of their indices.
//   Without axis: each example (bottom row n, count(1) values) is searched as one vector;
//     top [N, 1 (2 with out_max_val), top_k, 1, ...] (at least 3 axes): the indices, and
//     with out_max_val the values after them ([n, 0, k] index, [n, 1, k] value).
//   Ties: a larger value ranks first; among equal values the larger index ranks first.
#pragma once

#include <utility>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

class ArgMaxLayer : public Layer {
 public:
  explicit ArgMaxLayer(const pb::LayerParameter& param);
  const char* type() const override { return "ArgMax"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool out_max_val_ = false;
  int top_k_ = 1;
  bool has_axis_ = false;
  int axis_param_ = 0;
  int axis_ = 0;
  std::vector<std::pair<float, int>> scratch_;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
