// SigmoidLayer (type "Sigmoid").
//   bottom: x, any shape        top: y, same shape (in-place allowed)
//   forward:  y = 1 / (1 + exp(-x))   (computed as 0.5 * tanh(0.5 x) + 0.5, which is stable
//                                      for any x)
//   backward: dx = dy * y * (1 - y)   (uses only the top data, so in-place works)
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class SigmoidLayer : public NeuronLayer {
 public:
  explicit SigmoidLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "Sigmoid"; }

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
