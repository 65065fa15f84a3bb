// ReLULayer (type "ReLU"), optionally leaky.
//   bottom: x, any shape        top: y, same shape (in-place allowed)
//   forward:  y = x            if x > 0
//             y = slope * x    otherwise          (slope = relu_param.negative_slope, 0)
//   backward: dx = dy * (x > 0 ? 1 : slope)
// A NaN input gives NaN, as Caffe's ReLU does, so a diverging net still shows loss = nan.
// With slope 0, x <= 0 gives exactly +0 (also for -0 and -inf, as cuDNN's ReLU does).
// In place, x is no longer available; y has the same sign as x for slope >= 0, so the
// test is made on y then (identical result).
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class ReLULayer : public NeuronLayer {
 public:
  explicit ReLULayer(const pb::LayerParameter& param);
  const char* type() const override { return "ReLU"; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  float negative_slope_ = 0.f;

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
