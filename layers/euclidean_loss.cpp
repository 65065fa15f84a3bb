#include "layers/euclidean_loss.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void EuclideanLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  const int axes0 = bottom[0]->num_axes(), axes1 = bottom[1]->num_axes();
  LAYER_REQUIRE(axes0 > 0 && axes1 > 0 && bottom[0]->count(1) == bottom[1]->count(1),
                "the two inputs must have the same dimension per example: bottom 0 has shape "
                    << bottom[0]->shape_string() << ", bottom 1 has shape "
                    << bottom[1]->shape_string());
  diff_.ReshapeLike(*bottom[0]);
}

void EuclideanLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  cpu_sub(count, bottom[0]->cpu_data(), bottom[1]->cpu_data(), diff_.mutable_cpu_data());
  const float dot = cpu_dot(count, diff_.cpu_data(), diff_.cpu_data());
  top[0]->mutable_cpu_data()[0] = dot / bottom[0]->shape(0) / 2.f;
}

void EuclideanLossLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  for (int i = 0; i < 2; ++i) {
    if (!propagate_down[i]) continue;
    const float sign = i == 0 ? 1.f : -1.f;
    const float alpha = sign * top[0]->cpu_diff()[0] / bottom[i]->shape(0);
    cpu_scale(bottom[i]->count(), alpha, diff_.cpu_data(), bottom[i]->mutable_cpu_diff());
  }
}

REGISTER_LAYER_CLASS(EuclideanLoss);

}  // namespace crema
