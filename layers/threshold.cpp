#include "layers/threshold.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ThresholdLayer::ThresholdLayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  threshold_ = param.threshold_param().threshold();
}

void ThresholdLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const float t = threshold_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] > t ? 1.f : 0.f;
  });
}

void ThresholdLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[0])
    LAYER_THROW(
        "has no backward pass (a step function has no gradient); stop the gradient "
        "before it (propagate_down: false) or remove the layer from the training net");
}

REGISTER_LAYER_CLASS(Threshold);

}  // namespace crema
