#include "layers/power.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = kNeuronGrain / 8;  // one pow per element
}

PowerLayer::PowerLayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  const pb::PowerParameter& p = param.power_param();
  power_ = p.power();
  scale_ = p.scale();
  shift_ = p.shift();
  diff_scale_ = power_ * scale_;
}

void PowerLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  if (top[0] == bottom[0] && DerivativeNeedsInput()) bottom_copy_.ReshapeLike(*bottom[0]);
}

void PowerLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  float* y = top[0]->mutable_cpu_data();
  const int64_t n = bottom[0]->count();
  if (diff_scale_ == 0.f) {
    // Saved copy not needed: the derivative is 0.
    const float value = power_ == 0.f ? 1.f : std::pow(shift_, power_);
    cpu_set(n, value, y);
    return;
  }
  const float* x = bottom[0]->cpu_data();
  float* saved =
      top[0] == bottom[0] && DerivativeNeedsInput() ? bottom_copy_.mutable_cpu_data() : nullptr;
  const float power = power_, scale = scale_, shift = shift_;
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end) {
    if (saved) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) saved[i] = x[i];
    }
    if (power == 1.f) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) y[i] = shift + scale * x[i];
    } else if (power == 2.f) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const float b = shift + scale * x[i];
        y[i] = b * b;
      }
    } else if (power == 0.5f) {
      for (int64_t i = begin; i < end; ++i) y[i] = std::sqrt(shift + scale * x[i]);
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = std::pow(shift + scale * x[i], power);
    }
  });
}

void PowerLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float* dy = top[0]->cpu_diff();
  const float k = diff_scale_;
  if (k == 0.f) {
    cpu_set(n, 0.f, dx);
    return;
  }
  if (power_ == 1.f) {
    parallel_for(n, kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dx[i] = k * dy[i];
    });
    return;
  }
  const float* x = top[0] == bottom[0] ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
  const float power = power_, scale = scale_, shift = shift_;
  if (power == 2.f) {
    parallel_for(n, kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (k * (shift + scale * x[i]));
    });
    return;
  }
  // d/dx b^p = p * scale * b^p / b; the top already holds b^p. Where b == 0 the quotient is
  // undefined, so b^(p - 1) is evaluated directly there.
  const float* y = top[0]->cpu_data();
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float b = shift + scale * x[i];
      const float d = b != 0.f ? y[i] / b : std::pow(b, power - 1.f);
      dx[i] = dy[i] * (k * d);
    }
  });
}

REGISTER_LAYER_CLASS(Power);

}  // namespace crema
