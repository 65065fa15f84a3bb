// SliceLayer (type "Slice"): cuts a blob into pieces along one axis.
//   bottom: x, axis a = slice_param.axis (1; negative counts from the end) or the deprecated
//           slice_dim (non-negative; not both)
//   top[k]: x's shape with dim a = the k-th piece: with slice_point p_1 < ... < p_{K-1}
//           (exactly one fewer than the tops, each in (0, d_a)), pieces are [p_k, p_{k+1})
//           with p_0 = 0, p_K = d_a; without slice points d_a is split evenly (K must
//           divide it).
//   Viewing blobs as (outer, d_a, inner): top[k][o, j, i] = x[o, p_k + j, i].
//   backward: dx is the concatenation of dtop[k].
//   A single top is passed through (the top shares its data and diff).
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class SliceLayer : public Layer {
 public:
  explicit SliceLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Slice"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 1; }
  int MinTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool has_axis_ = false, has_slice_dim_ = false;
  int axis_param_ = 1;
  int slice_dim_ = 1;
  std::vector<int> slice_points_;
  int axis_ = 1;
  int outer_ = 0;
  int inner_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
