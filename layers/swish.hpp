// SwishLayer (type "Swish"): y = x * sigmoid(beta * x)   (swish_param.beta, default 1)
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  s = sigmoid(beta * x) (kept for the backward),  y = x * s
//   backward: dx = dy * (beta * y + s * (1 - beta * y))
// The backward reads only the top and s, so in place needs no copy of the input.
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class SwishLayer : public NeuronLayer {
 public:
  explicit SwishLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Swish"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  float beta_ = 1.f;
  Blob sigmoid_;  // s = sigmoid(beta * x), same shape as x

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
