#include "layers/relu.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

ReLULayer::ReLULayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  negative_slope_ = param.relu_param().negative_slope();
}

void ReLULayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const float slope = negative_slope_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
    if (slope == 0.f) {  // NaN <= 0 is false: a NaN passes through, as in Caffe
      for (int64_t i = begin; i < end; ++i) y[i] = x[i] <= 0.f ? 0.f : x[i];
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = x[i] > 0.f ? x[i] : slope * x[i];
    }
  });
}

void ReLULayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // In place, bottom data is the top data (same sign as the input for slope >= 0).
  const float* x = bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float slope = negative_slope_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = x[i] > 0.f ? dy[i] : slope * dy[i];
  });
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(ReLU, CreateReLULayer);

}  // namespace crema
