// PowerLayer (type "Power"): y = (shift + scale * x) ^ power   (power_param: 1, 1, 0)
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = (shift + scale * x) ^ power;  when power * scale == 0, y is the constant
//             1 (power 0) or shift ^ power (scale 0)
//   backward: dx = dy * power * scale * (shift + scale * x) ^ (power - 1)
//             (0 when power * scale == 0; dy * scale when power == 1)
// In place, the input is copied before it is overwritten whenever the derivative depends
// on it (power * scale != 0 and power != 1).
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class PowerLayer : public NeuronLayer {
 public:
  explicit PowerLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Power"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Whether the derivative depends on the input (so in place needs a copy of it).
  bool DerivativeNeedsInput() const { return diff_scale_ != 0.f && power_ != 1.f; }
  float power_ = 1.f, scale_ = 1.f, shift_ = 0.f;
  float diff_scale_ = 1.f;  // power * scale
  Blob bottom_copy_;        // the input, kept only in place when the backward needs it

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
