// FlattenLayer (type "Flatten"): merges the axes [axis, end_axis] into one.
//   bottom: shape (d_0, ..., d_{n-1});  axis = flatten_param.axis (1),
//           end_axis = flatten_param.end_axis (-1), both may be negative
//   top:    (d_0, ..., d_{axis-1}, d_axis * ... * d_end_axis, d_{end_axis+1}, ...)
//   No computation: the top shares the bottom's data and diff (set in Reshape). Not in
//   place.
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Flatten"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int axis_param_ = 1;
  int end_axis_param_ = -1;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code (it only re-points the top at the bottom's memory); the tops move to
  // the device when a GPU layer first reads them (SyncedMemory copies lazily), so no GPU kernel is
  // needed.
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
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
