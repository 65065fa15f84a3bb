#include "layers/multinomial_logistic_loss.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr float kLogThreshold = 1e-20f;
}

void MultinomialLogisticLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  num_ = bottom[0]->shape(0);
  dim_ = num_ > 0 ? bottom[0]->count() / num_ : 0;
  LAYER_REQUIRE(bottom[1]->count() == num_, "expected one label per example ("
                                                << num_ << ", bottom 0 "
                                                << bottom[0]->shape_string() << "), got shape "
                                                << bottom[1]->shape_string());
}

void MultinomialLogisticLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* p = bottom[0]->cpu_data();
  const float* label = bottom[1]->cpu_data();
  double loss = 0;
  for (int n = 0; n < num_; ++n) {
    const int l = static_cast<int>(label[n]);
    LAYER_REQUIRE(l >= 0 && l < dim_, "label " << label[n] << " of example " << n
                                               << " is out of range [0, " << dim_ << ")");
    loss -= std::log(std::max(p[static_cast<long>(n) * dim_ + l], kLogThreshold));
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss / num_);
}

void MultinomialLogisticLossLayer::Backward_cpu(const BlobVec& top,
                                                const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  const float* p = bottom[0]->cpu_data();
  const float* label = bottom[1]->cpu_data();
  float* dp = bottom[0]->mutable_cpu_diff();
  cpu_set(bottom[0]->count(), 0.f, dp);
  const float scale = -top[0]->cpu_diff()[0] / static_cast<float>(num_);
  for (int n = 0; n < num_; ++n) {
    const long at = static_cast<long>(n) * dim_ + static_cast<int>(label[n]);
    dp[at] = scale / std::max(p[at], kLogThreshold);
  }
}

REGISTER_LAYER_CLASS(MultinomialLogisticLoss);

}  // namespace crema
