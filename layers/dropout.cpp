#include "layers/dropout.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

DropoutLayer::DropoutLayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  ratio_ = param.dropout_param().dropout_ratio();
}

void DropoutLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(ratio_ >= 0.f && ratio_ < 1.f, "dropout_ratio must be in [0, 1), got " << ratio_);
  scale_ = 1.f / (1.f - ratio_);
}

void DropoutLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  NeuronLayer::Reshape(bottom, top);
  // resize() keeps the capacity when shrinking, so steady-state forwards never allocate.
  mask_.resize(bottom[0]->count());
}

void DropoutLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  if (phase_ != Phase::TRAIN) {
    if (x != y) cpu_copy(count, x, y);
    return;
  }
  unsigned int* mask = mask_.data();
  if (count > 0) cpu_rng_bernoulli(count, 1.f - ratio_, mask);
  const float scale = scale_;
  parallel_for(count, kNeuronGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = mask[i] ? x[i] * scale : 0.f;
  });
}

void DropoutLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int count = bottom[0]->count();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  if (phase_ != Phase::TRAIN) {
    if (dx != dy) cpu_copy(count, dy, dx);
    return;
  }
  const unsigned int* mask = mask_.data();
  const float scale = scale_;
  parallel_for(count, kNeuronGrain, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.f;
  });
}

REGISTER_LAYER_CLASS(Dropout);

}  // namespace crema
