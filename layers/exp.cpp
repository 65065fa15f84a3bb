#include "layers/exp.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = kNeuronGrain / 8;  // one exp per element
}

void ExpLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::ExpParameter& p = layer_param_->exp_param();
  const float base = p.base();
  LAYER_REQUIRE(base == -1.f || base > 0.f,
                "exp_param base must be strictly positive (or -1 for e), got " << base);
  const float log_base = base == -1.f ? 1.f : std::log(base);
  LAYER_REQUIRE(std::isfinite(log_base),
                "exp_param base " << base << " gives a non-finite log(base) = " << log_base);
  inner_scale_ = log_base * p.scale();
  if (p.shift() == 0.f)
    outer_scale_ = 1.f;
  else
    outer_scale_ = base == -1.f ? std::exp(p.shift()) : std::pow(base, p.shift());
}

void ExpLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const float inner = inner_scale_, outer = outer_scale_;
  parallel_for(bottom[0]->count(), kGrain, [=](int64_t begin, int64_t end) {
    if (outer == 1.f) {
      for (int64_t i = begin; i < end; ++i) y[i] = std::exp(inner * x[i]);
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = outer * std::exp(inner * x[i]);
    }
  });
}

void ExpLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* y = top[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float inner = inner_scale_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) dx[i] = inner * (y[i] * dy[i]);
  });
}

REGISTER_LAYER_CLASS(Exp);

}  // namespace crema
