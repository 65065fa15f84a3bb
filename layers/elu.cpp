#include "layers/elu.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = kNeuronGrain / 8;  // one exp per element
}

ELULayer::ELULayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  alpha_ = param.elu_param().alpha();
}

void ELULayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  if (NeedsCopy(bottom, top)) bottom_copy_.ReshapeLike(*bottom[0]);
}

void ELULayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  float* saved = NeedsCopy(bottom, top) ? bottom_copy_.mutable_cpu_data() : nullptr;
  const float alpha = alpha_;
  parallel_for(bottom[0]->count(), kGrain, [=](int64_t begin, int64_t end) {
    if (saved) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) saved[i] = x[i];
    }
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      y[i] = v > 0.f ? v : alpha * (std::exp(v) - 1.f);
    }
  });
}

void ELULayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // Not in place: the real input. In place: the saved copy, or (alpha >= 0) the top, whose
  // sign then agrees with the input's.
  const float* x = NeedsCopy(bottom, top) ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
  const float* y = top[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float alpha = alpha_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      // Two selects against 0 so that GCC vectorises it.
      const float g = dy[i];
      dx[i] = (x[i] > 0.f ? g : 0.f) + (x[i] > 0.f ? 0.f : g) * (y[i] + alpha);
    }
  });
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(ELU, CreateELULayer);

}  // namespace crema
