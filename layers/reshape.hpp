// ReshapeLayer (type "Reshape"): gives the bottom a new shape without touching the data.
//   reshape_param: shape (BlobShape), axis (0), num_axes (-1)
//   The bottom axes [axis, axis + num_axes) (num_axes -1: to the end; negative axis counts
//   from the end, -1 meaning "after the last axis") are replaced by shape.dim, where a 0
//   copies the corresponding bottom dimension and one -1 is inferred so that the counts
//   agree. top.count == bottom.count.
//   No computation: the top shares the bottom's data and diff (set in Reshape). Not in
//   place.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class ReshapeLayer : public Layer {
 public:
  explicit ReshapeLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Reshape"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  std::vector<int> new_dims_;  // reshape_param.shape.dim
  int axis_ = 0;
  int num_axes_ = -1;
  std::vector<int> copy_axes_;  // indices into new_dims_ holding 0
  int inferred_axis_ = -1;      // index into new_dims_ holding -1, or -1
  int64_t constant_count_ = 1;  // product of the explicit (> 0) dims

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
