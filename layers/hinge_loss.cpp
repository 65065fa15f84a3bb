#include "layers/hinge_loss.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

HingeLossLayer::HingeLossLayer(const pb::LayerParameter& param) : LossLayer(param) {
  norm_ = static_cast<int>(param.hinge_loss_param().norm());
}

void HingeLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  LAYER_REQUIRE(norm_ == 1 || norm_ == 2, "unknown norm " << norm_ << " (L1 or L2)");
  num_ = bottom[0]->shape(0);
  dim_ = num_ > 0 ? bottom[0]->count() / num_ : 0;
  LAYER_REQUIRE(bottom[1]->count() == num_, "expected one label per example ("
                                                << num_ << ", bottom 0 "
                                                << bottom[0]->shape_string() << "), got shape "
                                                << bottom[1]->shape_string());
  margin_.ReshapeLike(*bottom[0]);
}

void HingeLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  const float* label = bottom[1]->cpu_data();
  float* h = margin_.mutable_cpu_data();
  double loss = 0;
  for (int n = 0; n < num_; ++n) {
    const int l = static_cast<int>(label[n]);
    LAYER_REQUIRE(l >= 0 && l < dim_, "label " << label[n] << " of example " << n
                                               << " is out of range [0, " << dim_ << ")");
    const float* xr = x + static_cast<long>(n) * dim_;
    float* hr = h + static_cast<long>(n) * dim_;
    for (int k = 0; k < dim_; ++k) {
      const float t = k == l ? -xr[k] : xr[k];
      hr[k] = std::max(0.f, 1.f + t);
      loss += norm_ == 1 ? hr[k] : static_cast<double>(hr[k]) * hr[k];
    }
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss / num_);
}

void HingeLossLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  const float* label = bottom[1]->cpu_data();
  const float* h = margin_.cpu_data();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float w = top[0]->cpu_diff()[0];
  const float scale = (norm_ == 1 ? w : 2.f * w) / static_cast<float>(num_);
  for (int n = 0; n < num_; ++n) {
    const int l = static_cast<int>(label[n]);
    const float* hr = h + static_cast<long>(n) * dim_;
    float* dr = dx + static_cast<long>(n) * dim_;
    for (int k = 0; k < dim_; ++k) {
      const float g = norm_ == 1 ? (hr[k] > 0.f ? 1.f : 0.f) : hr[k];
      dr[k] = (k == l ? -g : g) * scale;
    }
  }
}

REGISTER_LAYER_CLASS(HingeLoss);

}  // namespace crema
