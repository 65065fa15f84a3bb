// CropLayer (type "Crop"): crops bottom[0] to the size of bottom[1] on the axes from
// crop_param.axis (default 2) on.
//   bottom[0]: x [d_0, ..., d_{n-1}];  bottom[1]: reference r (only its shape is used)
//   top:       y, shape d_a for a < axis, r.shape(a) for a >= axis
//   offsets:   crop_param.offset: none (all 0), one (every cropped axis) or one per cropped
//              axis; required: offset_a + r.shape(a) <= d_a.
//   forward:   y[i_0, ..., i_{n-1}] = x[i_0 + off_0, ..., i_{n-1} + off_{n-1}] (off = 0 for
//              uncropped axes)
//   backward:  dx = 0 except at the cropped window, which receives dy. r gets no gradient.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class CropLayer : public Layer {
 public:
  explicit CropLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Crop"; }
  int ExactNumBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index == 0; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Copies every innermost row of the window: forward x -> y, or backward dy -> dx.
  void CopyWindow(const Blob& big, const Blob& small, const float* src, float* dst,
                  bool to_small) const;

  int axis_param_ = 2;
  std::vector<int> offset_param_;
  std::vector<int> offsets_;  // per axis of bottom[0]

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
