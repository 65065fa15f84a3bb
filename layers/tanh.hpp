// TanHLayer (type "TanH").
//   bottom: x, any shape        top: y, same shape (in-place allowed)
//   forward:  y = tanh(x)
//   backward: dx = dy * (1 - y^2)     (uses only the top data, so in-place works)
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class TanHLayer : public NeuronLayer {
 public:
  explicit TanHLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "TanH"; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

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
