#include "layers/absval.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void AbsValLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(top[0] != bottom[0],
                "cannot run in place (the backward pass needs the sign of the input); give "
                "the top a different name from the bottom");
}

void AbsValLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] = std::fabs(x[i]);
  });
}

void AbsValLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float s = static_cast<float>((x[i] > 0.f) - (x[i] < 0.f));
      dx[i] = s * dy[i];
    }
  });
}

REGISTER_LAYER_CLASS(AbsVal);

}  // namespace crema
