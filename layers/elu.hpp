// ELULayer (type "ELU"): exponential linear unit, alpha = elu_param.alpha (default 1).
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = x                      if x > 0
//             y = alpha * (exp(x) - 1)   otherwise
//   backward: dx = dy                    if x > 0
//             dx = dy * (y + alpha)      otherwise   (= dy * alpha * exp(x))
// In place with alpha >= 0, y > 0 exactly when x > 0, so the test is made on y; with a
// negative alpha the input is copied before it is overwritten.
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class ELULayer : public NeuronLayer {
 public:
  explicit ELULayer(const pb::LayerParameter& param);
  const char* type() const override { return "ELU"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  bool NeedsCopy(const BlobVec& bottom, const BlobVec& top) const {
    return top[0] == bottom[0] && alpha_ < 0.f;
  }
  float alpha_ = 1.f;
  Blob bottom_copy_;  // the input, kept only in place with alpha < 0

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
