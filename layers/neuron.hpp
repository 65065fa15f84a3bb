// NeuronLayer: base of the elementwise one-in/one-out layers (ReLU, Sigmoid, TanH, Dropout).
//   bottom: x, any shape          top: y, same shape as x
// The top may be the bottom blob itself (in-place computation): subclasses must compute
// Backward from what is still available then (the top data, or their own saved state),
// never from the original bottom data.
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class NeuronLayer : public Layer {
 public:
  explicit NeuronLayer(const pb::LayerParameter& param) : Layer(param) {}

  void Reshape(const BlobVec& bottom, const BlobVec& top) override {
    if (top[0] != bottom[0]) top[0]->ReshapeLike(*bottom[0]);
  }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }
};

// Elementwise loops below this many elements stay on the calling thread.
constexpr int64_t kNeuronGrain = 32768;

}  // namespace crema
