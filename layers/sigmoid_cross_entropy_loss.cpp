#include "layers/sigmoid_cross_entropy_loss.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

SigmoidCrossEntropyLossLayer::SigmoidCrossEntropyLossLayer(const pb::LayerParameter& param)
    : LossLayer(param) {
  const pb::LossParameter& loss = param.loss_param();
  has_ignore_label_ = loss.has_ignore_label();
  ignore_label_ = loss.ignore_label();
  if (loss.has_normalization())
    normalization_ = static_cast<int>(loss.normalization());
  else if (loss.has_normalize())
    normalization_ = loss.normalize() ? 1 : 2;
  else
    normalization_ = 2;
}

void SigmoidCrossEntropyLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  LAYER_REQUIRE(bottom[0]->count() == bottom[1]->count(),
                "the logits (bottom 0, shape "
                    << bottom[0]->shape_string() << ") and the targets (bottom 1, shape "
                    << bottom[1]->shape_string() << ") must have the same count");
  outer_ = bottom[0]->shape(0);
  inner_ = bottom[0]->count(1);
}

float SigmoidCrossEntropyLossLayer::Normalizer(int valid_count) const {
  float n = 1.f;
  switch (normalization_) {
    case 0:  // FULL
      n = static_cast<float>(outer_) * inner_;
      break;
    case 1:  // VALID
      n = static_cast<float>(valid_count);
      break;
    case 2:  // BATCH_SIZE
      n = static_cast<float>(outer_);
      break;
    default:  // NONE
      n = 1.f;
  }
  return std::max(1.f, n);
}

void SigmoidCrossEntropyLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  const float* t = bottom[1]->cpu_data();
  const int count = bottom[0]->count();
  int valid = 0;
  double loss = 0;
  for (int i = 0; i < count; ++i) {
    if (has_ignore_label_ && static_cast<int>(t[i]) == ignore_label_) continue;
    const float v = x[i];
    loss += std::log1p(std::exp(-std::fabs(v))) + std::max(v, 0.f) - v * t[i];
    ++valid;
  }
  normalizer_ = Normalizer(valid);
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss / normalizer_);
}

void SigmoidCrossEntropyLossLayer::Backward_cpu(const BlobVec& top,
                                                const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the targets (bottom 1)");
  if (!propagate_down[0]) return;
  const float* x = bottom[0]->cpu_data();
  const float* t = bottom[1]->cpu_data();
  float* dx = bottom[0]->mutable_cpu_diff();
  const int count = bottom[0]->count();
  const float scale = top[0]->cpu_diff()[0] / normalizer_;
  const bool ignore = has_ignore_label_;
  const int ignore_label = ignore_label_;
  parallel_for(count, 16384, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (ignore && static_cast<int>(t[i]) == ignore_label) {
        dx[i] = 0.f;
        continue;
      }
      const float s = 1.f / (1.f + std::exp(-x[i]));
      dx[i] = scale * (s - t[i]);
    }
  });
}

REGISTER_LAYER_CLASS(SigmoidCrossEntropyLoss);

}  // namespace crema
