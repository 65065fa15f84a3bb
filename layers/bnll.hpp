// BNLLLayer (type "BNLL"): binomial normal log-likelihood, i.e. the softplus.
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = log(1 + exp(x)), evaluated as max(x, 0) + log1p(exp(-|x|)) (no overflow)
//   backward: dx = dy * sigmoid(x) = dy * e / (1 + e), e = exp(min(x, 50))  (Caffe's clamp)
// In place, x is gone; sigmoid(x) = 1 - exp(-y) is recovered from the top instead.
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class BNLLLayer : public NeuronLayer {
 public:
  explicit BNLLLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "BNLL"; }

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
