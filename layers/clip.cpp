#include "layers/clip.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ClipLayer::ClipLayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  min_ = param.clip_param().min();
  max_ = param.clip_param().max();
}

void ClipLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(layer_param_->has_clip_param(), "needs clip_param { min: .. max: .. }");
  LAYER_REQUIRE(min_ <= max_,
                "clip_param min (" << min_ << ") must not exceed max (" << max_ << ")");
}

void ClipLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  if (top[0] == bottom[0]) bottom_copy_.ReshapeLike(*bottom[0]);
}

void ClipLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  float* saved = top[0] == bottom[0] ? bottom_copy_.mutable_cpu_data() : nullptr;
  const float lo = min_, hi = max_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
    if (saved) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) saved[i] = x[i];
    }
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) y[i] = std::max(lo, std::min(x[i], hi));
  });
}

void ClipLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = top[0] == bottom[0] ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float lo = min_, hi = max_;
  parallel_for(bottom[0]->count(), kNeuronGrain, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i)
      dx[i] = dy[i] * static_cast<float>((x[i] >= lo) & (x[i] <= hi));
  });
}

REGISTER_LAYER_CLASS(Clip);

}  // namespace crema
