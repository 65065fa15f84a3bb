#include "layers/bnll.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
// Work per element is a few transcendental calls: split smaller ranges across threads.
constexpr int64_t kGrain = kNeuronGrain / 8;
constexpr float kExpClamp = 50.f;
}  // namespace

void BNLLLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  parallel_for(bottom[0]->count(), kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      y[i] = std::max(v, 0.f) + std::log1p(std::exp(-std::fabs(v)));
    }
  });
}

void BNLLLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const int64_t n = bottom[0]->count();
  if (top[0] == bottom[0]) {
    const float* y = top[0]->cpu_data();
    parallel_for(n, kGrain, [=](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * -std::expm1(-y[i]);
    });
    return;
  }
  const float* x = bottom[0]->cpu_data();
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float e = std::exp(std::min(x[i], kExpClamp));
      dx[i] = dy[i] * e / (e + 1.f);
    }
  });
}

REGISTER_LAYER_CLASS(BNLL);

}  // namespace crema
