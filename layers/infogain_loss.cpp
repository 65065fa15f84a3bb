#include "layers/infogain_loss.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/softmax.hpp"

namespace crema {

namespace {
constexpr float kLogThreshold = 1e-20f;
}

InfogainLossLayer::InfogainLossLayer(const pb::LayerParameter& param) : LossLayer(param) {
  axis_param_ = param.infogain_loss_param().axis();
  const pb::LossParameter& loss = param.loss_param();
  has_ignore_label_ = loss.has_ignore_label();
  ignore_label_ = loss.ignore_label();
  normalization_ = static_cast<int>(loss.normalization());
}

void InfogainLossLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::LayerSetUp(bottom, top);
  LAYER_REQUIRE(!layer_param_->loss_param().has_normalize(),
                "loss_param.normalize is deprecated for this layer; use normalization");
  LAYER_REQUIRE(normalization_ >= 0 && normalization_ <= 3,
                "unknown normalization mode " << normalization_);
  if (bottom.size() < 3) {
    const pb::InfogainLossParameter& p = layer_param_->infogain_loss_param();
    LAYER_REQUIRE(p.has_source() && !p.source().empty(),
                  "needs the infogain matrix H: give infogain_loss_param.source or a third bottom");
    pb::BlobProto proto;
    try {
      ReadProtoFromBinaryFile(p.source(), &proto);
      infogain_.FromProto(proto);
    } catch (const Error& e) {
      LAYER_THROW("cannot read the infogain matrix: " << e.what());
    }
  }
}

void InfogainLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  const Blob& x = *bottom[0];
  const int axes = x.num_axes();
  LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < axes,
                "axis " << axis_param_ << " is out of range for bottom shape " << x.shape_string());
  const int axis = x.CanonicalAxisIndex(axis_param_);
  outer_ = x.count(0, axis);
  channels_ = x.shape(axis);
  inner_ = x.count(axis + 1);
  LAYER_REQUIRE(static_cast<long>(outer_) * inner_ == bottom[1]->count(),
                "the number of labels (bottom 1, shape "
                    << bottom[1]->shape_string() << ") must equal the number of predictions "
                    << static_cast<long>(outer_) * inner_ << " (bottom 0, shape "
                    << x.shape_string() << ", axis " << axis << ")");
  const Blob& H = bottom.size() >= 3 ? *bottom[2] : infogain_;
  LAYER_REQUIRE(H.count() == channels_ * channels_,
                "the infogain matrix (shape " << H.shape_string() << ") must have " << channels_
                                              << " x " << channels_ << " values");
  row_sums_.Reshape({std::max(channels_, 1)});
  prob_.ReshapeLike(x);
  scratch_.Reshape({std::max(1, outer_ * (inner_ > 1 ? inner_ : 0))});
  if (top.size() >= 2) {
    top[1]->ReshapeLike(x);
    top[1]->ShareData(prob_);
  }
}

const float* InfogainLossLayer::Infogain(const BlobVec& bottom) const {
  return bottom.size() >= 3 ? bottom[2]->cpu_data() : infogain_.cpu_data();
}

float InfogainLossLayer::Normalizer(int valid_count) const {
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

void InfogainLossLayer::CheckLabel(int label, float raw, long position) const {
  LAYER_REQUIRE(label >= 0 && label < channels_, "label " << raw << " at position " << position
                                                          << " is out of range [0, " << channels_
                                                          << ")");
}

void InfogainLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardCpu(outer_, channels_, inner_, bottom[0]->cpu_data(), prob_.mutable_cpu_data(),
                    scratch_.mutable_cpu_data());
  const float* prob = prob_.cpu_data();
  const float* label = bottom[1]->cpu_data();
  const float* H = Infogain(bottom);
  const long dim = static_cast<long>(channels_) * inner_;
  int valid = 0;
  double loss = 0;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const long pos = static_cast<long>(o) * inner_ + i;
      const int l = static_cast<int>(label[pos]);
      if (has_ignore_label_ && l == ignore_label_) continue;
      CheckLabel(l, label[pos], pos);
      const float* hrow = H + static_cast<long>(l) * channels_;
      for (int k = 0; k < channels_; ++k)
        loss -= hrow[k] * std::log(std::max(prob[o * dim + k * inner_ + i], kLogThreshold));
      ++valid;
    }
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss / Normalizer(valid));
}

void InfogainLossLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (propagate_down.size() > 2 && propagate_down[2])
    LAYER_THROW("cannot backpropagate to the infogain matrix (bottom 2)");
  if (!propagate_down[0]) return;
  const float* H = Infogain(bottom);
  float* sums = row_sums_.mutable_cpu_data();
  for (int r = 0; r < channels_; ++r) {
    float s = 0.f;
    for (int c = 0; c < channels_; ++c) s += H[static_cast<long>(r) * channels_ + c];
    sums[r] = s;
  }
  const float* prob = prob_.cpu_data();
  const float* label = bottom[1]->cpu_data();
  float* dx = bottom[0]->mutable_cpu_diff();
  const long dim = static_cast<long>(channels_) * inner_;
  int valid = 0;
  for (int o = 0; o < outer_; ++o) {
    for (int i = 0; i < inner_; ++i) {
      const long pos = static_cast<long>(o) * inner_ + i;
      const int l = static_cast<int>(label[pos]);
      float* d = dx + o * dim + i;
      if (has_ignore_label_ && l == ignore_label_) {
        for (int k = 0; k < channels_; ++k) d[k * inner_] = 0.f;
        continue;
      }
      CheckLabel(l, label[pos], pos);
      const float* p = prob + o * dim + i;
      const float* hrow = H + static_cast<long>(l) * channels_;
      for (int k = 0; k < channels_; ++k) d[k * inner_] = p[k * inner_] * sums[l] - hrow[k];
      ++valid;
    }
  }
  cpu_scal(bottom[0]->count(), top[0]->cpu_diff()[0] / Normalizer(valid), dx);
}

REGISTER_LAYER_CLASS(InfogainLoss);

}  // namespace crema
