#include "layers/accuracy.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

AccuracyLayer::AccuracyLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::AccuracyParameter& p = param.accuracy_param();
  top_k_ = static_cast<int>(p.top_k());
  axis_param_ = p.axis();
  has_ignore_label_ = p.has_ignore_label();
  ignore_label_ = p.ignore_label();
}

void AccuracyLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      axis_param_ >= -axes && axis_param_ < axes,
      "axis " << axis_param_ << " is out of range for bottom shape " << bottom[0]->shape_string());
  const int axis = bottom[0]->CanonicalAxisIndex(axis_param_);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  LAYER_REQUIRE(top_k_ >= 1 && top_k_ <= channels_,
                "top_k (" << top_k_ << ") must be between 1 and the number of classes ("
                          << channels_ << ", bottom 0 shape " << bottom[0]->shape_string() << ")");
  LAYER_REQUIRE(int64_t{outer_} * inner_ == bottom[1]->count(),
                "the number of labels (bottom 1, shape "
                    << bottom[1]->shape_string() << ") must equal the number of predictions "
                    << outer_ * inner_ << " (bottom 0, shape " << bottom[0]->shape_string()
                    << ", label axis " << axis << ")");
  top[0]->Reshape(std::vector<int>{});
  if (top.size() > 1) {
    top[1]->Reshape(std::vector<int>{channels_});
    class_counts_.resize(channels_);
  }
}

void AccuracyLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* score = bottom[0]->cpu_data();
  const float* label = bottom[1]->cpu_data();
  const int64_t dim = int64_t{channels_} * inner_;
  const bool per_class = top.size() > 1;
  float* class_correct = nullptr;
  if (per_class) {
    class_correct = top[1]->mutable_cpu_data();
    cpu_set(channels_, 0.f, class_correct);
    std::fill(class_counts_.begin(), class_counts_.end(), 0);
  }
  int64_t counted = 0, correct = 0;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const int l = static_cast<int>(label[int64_t{o} * inner_ + i]);
      if (has_ignore_label_ && l == ignore_label_) continue;
      if (l < 0 || l >= channels_)
        LAYER_THROW("label " << l << " (at index " << int64_t{o} * inner_ + i
                             << " of the label blob) is out of range [0, " << channels_ << ")");
      const float* s = score + o * dim + i;
      const float target = s[int64_t{l} * inner_];
      // Classes other than l scoring at least as high as l.
      int above = 0;
      for (int c = 0; c < channels_ && above < top_k_; ++c)
        if (c != l && s[int64_t{c} * inner_] >= target) ++above;
      const bool hit = above < top_k_;
      correct += hit;
      ++counted;
      if (per_class) {
        ++class_counts_[l];
        if (hit) class_correct[l] += 1.f;
      }
    }
  }
  top[0]->mutable_cpu_data()[0] =
      counted == 0 ? 0.f : static_cast<float>(correct) / static_cast<float>(counted);
  if (per_class) {
    for (int c = 0; c < channels_; ++c)
      class_correct[c] = class_counts_[c] == 0 ? 0.f : class_correct[c] / class_counts_[c];
  }
}

void AccuracyLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  for (bool p : propagate_down)
    if (p) LAYER_THROW("Accuracy has no gradient; it cannot backpropagate to its bottoms");
}

REGISTER_LAYER_CLASS(Accuracy);

}  // namespace crema
