#include "layers/log.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = kNeuronGrain / 8;  // one log per element
}

void LogLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::LogParameter& p = layer_param_->log_param();
  const float base = p.base();
  LAYER_REQUIRE(base == -1.f || base > 0.f,
                "log_param base must be strictly positive (or -1 for e), got " << base);
  const float log_base = base == -1.f ? 1.f : std::log(base);
  LAYER_REQUIRE(std::isfinite(log_base),
                "log_param base " << base << " gives a non-finite log(base) = " << log_base);
  LAYER_REQUIRE(log_base != 0.f && std::isfinite(1.f / log_base),
                "log_param base " << base << " gives 1 / log(base) = " << 1.f / log_base);
  base_scale_ = 1.f / log_base;
  input_scale_ = p.scale();
  input_shift_ = p.shift();
  backward_scale_ = input_scale_ / log_base;
}

void LogLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  if (top[0] == bottom[0]) bottom_copy_.ReshapeLike(*bottom[0]);
}

void LogLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  float* saved = top[0] == bottom[0] ? bottom_copy_.mutable_cpu_data() : nullptr;
  const float scale = input_scale_, shift = input_shift_, out = base_scale_;
  parallel_for(bottom[0]->count(), kGrain, [=](int64_t begin, int64_t end) {
    if (saved) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) saved[i] = x[i];
    }
    if (out == 1.f) {
      for (int64_t i = begin; i < end; ++i) y[i] = std::log(shift + scale * x[i]);
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = out * std::log(shift + scale * x[i]);
    }
  });
}

void LogLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = top[0] == bottom[0] ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float scale = input_scale_, shift = input_shift_, k = backward_scale_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (k / (shift + scale * x[i]));
  });
}

REGISTER_LAYER_CLASS(Log);

}  // namespace crema
