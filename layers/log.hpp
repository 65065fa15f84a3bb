// LogLayer (type "Log"): y = log_base(shift + scale * x)   (log_param; base -1 means e)
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = ln(shift + scale * x) / ln(base)
//   backward: dx = dy * scale / (ln(base) * (shift + scale * x))
// base must be strictly positive and not 1, or -1 (the default) for e. In place, the input
// is copied before it is overwritten (the backward needs it).
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class LogLayer : public NeuronLayer {
 public:
  explicit LogLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "Log"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float base_scale_ = 1.f;  // 1 / ln(base)
  float input_scale_ = 1.f, input_shift_ = 0.f;
  float backward_scale_ = 1.f;  // scale / ln(base)
  Blob bottom_copy_;            // the input, kept only when running in place

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
