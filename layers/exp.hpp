// ExpLayer (type "Exp"): y = base ^ (shift + scale * x)   (exp_param; base -1 means e)
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = outer * exp(inner * x),  inner = ln(base) * scale,  outer = base ^ shift
//   backward: dx = dy * inner * y          (needs only the top)
// base must be strictly positive, or -1 (the default) for e.
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class ExpLayer : public NeuronLayer {
 public:
  explicit ExpLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "Exp"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float inner_scale_ = 1.f, outer_scale_ = 1.f;

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
