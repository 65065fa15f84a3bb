// ThresholdLayer (type "Threshold"): a step function, t = threshold_param.threshold (0).
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = 1 if x > t, else 0
//   backward: none (the step has no useful gradient; Caffe does not implement it either):
//             asking for the bottom gradient is an error.
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class ThresholdLayer : public NeuronLayer {
 public:
  explicit ThresholdLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Threshold"; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float threshold_ = 0.f;

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
