#include "layers/swish.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = kNeuronGrain / 8;  // one tanh per element
}

SwishLayer::SwishLayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  beta_ = param.swish_param().beta();
}

void SwishLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  sigmoid_.ReshapeLike(*bottom[0]);
}

void SwishLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  float* s = sigmoid_.mutable_cpu_data();
  const float beta = beta_;
  parallel_for(bottom[0]->count(), kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // The same sigmoid formula as the Sigmoid layer.
      const float v = x[i];
      const float si = 0.5f * std::tanh(0.5f * (beta * v)) + 0.5f;
      s[i] = si;
      y[i] = v * si;
    }
  });
}

void SwishLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* y = top[0]->cpu_data();
  const float* s = sigmoid_.cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float beta = beta_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float by = beta * y[i];
      dx[i] = dy[i] * (by + s[i] * (1.f - by));
    }
  });
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(Swish, CreateSwishLayer);

}  // namespace crema
