// ConcatLayer (type "Concat"): joins blobs along one axis.
//   bottom[k]: shapes equal except on axis a = concat_param.axis (1; negative counts from
//              the end) or the deprecated concat_dim (non-negative; not both)
//   top:       that shape with dim a = sum_k bottom[k].shape(a)
//   Viewing each blob as (outer, d_a, inner): top[o, off_k + j, i] = bottom[k][o, j, i],
//   off_k = sum_{k' < k} bottom[k'].shape(a).
//   backward: dbottom[k] is the matching slice of dtop.
//   A single bottom is passed through (the top shares its data and diff).
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class ConcatLayer : public Layer {
 public:
  explicit ConcatLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Concat"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int MinBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool has_axis_ = false, has_concat_dim_ = false;
  int axis_param_ = 1;
  int concat_dim_ = 1;
  int axis_ = 1;
  int outer_ = 0;  // product of dims before the axis
  int inner_ = 0;  // product of dims after the axis

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
