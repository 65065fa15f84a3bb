#include "layers/softmax_loss.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/softmax.hpp"

namespace crema {

SoftmaxWithLossLayer::SoftmaxWithLossLayer(const pb::LayerParameter& param) : LossLayer(param) {
  axis_param_ = param.softmax_param().axis();
  const pb::LossParameter& loss = param.loss_param();
  has_ignore_label_ = loss.has_ignore_label();
  ignore_label_ = loss.ignore_label();
  if (!loss.has_normalization() && loss.has_normalize()) {
    normalization_ = loss.normalize() ? Normalization::VALID : Normalization::BATCH_SIZE;
  } else {
    normalization_ = static_cast<Normalization>(static_cast<int>(loss.normalization()));
  }
}

void SoftmaxWithLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < axes,
                "softmax axis " << axis_param_ << " is out of range for bottom shape "
                                << bottom[0]->shape_string());
  const int axis = bottom[0]->CanonicalAxisIndex(axis_param_);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  LAYER_REQUIRE(int64_t{outer_} * inner_ == bottom[1]->count(),
                "the number of labels (bottom 1, shape "
                    << bottom[1]->shape_string() << ") must equal the number of predictions "
                    << outer_ * inner_ << " (bottom 0, shape " << bottom[0]->shape_string()
                    << ", softmax axis " << axis << ")");
  prob_.ReshapeLike(*bottom[0]);
  scratch_.Reshape({std::max(1, outer_ * (inner_ > 1 ? inner_ : 0))});
  if (top.size() >= 2) {
    top[1]->ReshapeLike(*bottom[0]);
    top[1]->ShareData(prob_);
  }
}

float SoftmaxWithLossLayer::Normalizer(int valid_count) const {
  float n = 1.f;
  switch (normalization_) {
    case Normalization::FULL:
      n = static_cast<float>(outer_ * inner_);
      break;
    case Normalization::VALID:
      n = static_cast<float>(valid_count);
      break;
    case Normalization::BATCH_SIZE:
      n = static_cast<float>(outer_);
      break;
    case Normalization::NONE:
      n = 1.f;
      break;
    default:
      LAYER_THROW("unknown normalization mode " << static_cast<int>(normalization_));
  }
  // A batch whose labels are all ignored would otherwise divide by zero.
  return std::max(1.f, n);
}

void SoftmaxWithLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardCpu(outer_, channels_, inner_, bottom[0]->cpu_data(), prob_.mutable_cpu_data(),
                    scratch_.mutable_cpu_data());
  const float* prob = prob_.cpu_data();
  const float* label = bottom[1]->cpu_data();
  const int64_t dim = int64_t{channels_} * inner_;
  int valid = 0;
  float loss = 0.f;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const int l = static_cast<int>(label[int64_t{o} * inner_ + i]);
      if (has_ignore_label_ && l == ignore_label_) continue;
      if (l < 0 || l >= channels_)
        LAYER_THROW("label " << l << " (at index " << int64_t{o} * inner_ + i
                             << " of the label blob) is out of range [0, " << channels_ << ")");
      loss -= std::log(std::max(prob[o * dim + int64_t{l} * inner_ + i], FLT_MIN));
      ++valid;
    }
  }
  top[0]->mutable_cpu_data()[0] = loss / Normalizer(valid);
}

void SoftmaxWithLossLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  if (propagate_down.size() > 1 && propagate_down[1])
    LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_cpu_diff();
  cpu_copy(prob_.count(), prob_.cpu_data(), dx);
  const float* label = bottom[1]->cpu_data();
  const int64_t dim = int64_t{channels_} * inner_;
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const int l = static_cast<int>(label[int64_t{o} * inner_ + i]);
      float* d = dx + o * dim + i;
      if (has_ignore_label_ && l == ignore_label_) {
        for (int c = 0; c < channels_; ++c) d[int64_t{c} * inner_] = 0.f;
        continue;
      }
      if (l < 0 || l >= channels_)
        LAYER_THROW("label " << l << " (at index " << int64_t{o} * inner_ + i
                             << " of the label blob) is out of range [0, " << channels_ << ")");
      d[int64_t{l} * inner_] -= 1.f;
      ++valid;
    }
  }
  cpu_scal(prob_.count(), top[0]->cpu_diff()[0] / Normalizer(valid), dx);
}

REGISTER_LAYER_CLASS(SoftmaxWithLoss);

}  // namespace crema
