#include "layers/contrastive_loss.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ContrastiveLossLayer::ContrastiveLossLayer(const pb::LayerParameter& param) : LossLayer(param) {
  margin_ = param.contrastive_loss_param().margin();
  legacy_ = param.contrastive_loss_param().legacy_version();
}

void ContrastiveLossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LossLayer::Reshape(bottom, top);
  const Blob& a = *bottom[0];
  const Blob& b = *bottom[1];
  const Blob& y = *bottom[2];
  LAYER_REQUIRE(a.num_axes() >= 1 && a.shape() == b.shape(),
                "the two feature blobs must have the same shape: bottom 0 is "
                    << a.shape_string() << ", bottom 1 is " << b.shape_string());
  num_ = a.shape(0);
  dim_ = a.count(1);
  LAYER_REQUIRE(y.count() == num_, "the similarity labels (bottom 2, shape "
                                       << y.shape_string() << ") must hold one value per pair ("
                                       << num_ << ", bottom 0 " << a.shape_string() << ")");
  diff_.ReshapeLike(a);
  dist_sq_.Reshape({std::max(num_, 1)});
}

void ContrastiveLossLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  cpu_sub(count, bottom[0]->cpu_data(), bottom[1]->cpu_data(), diff_.mutable_cpu_data());
  const float* diff = diff_.cpu_data();
  const float* sim = bottom[2]->cpu_data();
  float* dist_sq = dist_sq_.mutable_cpu_data();
  double loss = 0;
  for (int n = 0; n < num_; ++n) {
    const float* d = diff + static_cast<long>(n) * dim_;
    dist_sq[n] = cpu_dot(dim_, d, d);
    if (static_cast<int>(sim[n])) {
      loss += dist_sq[n];
    } else if (legacy_) {
      loss += std::max(margin_ - dist_sq[n], 0.f);
    } else {
      const float gap = std::max(margin_ - std::sqrt(dist_sq[n]), 0.f);
      loss += gap * gap;
    }
  }
  top[0]->mutable_cpu_data()[0] = static_cast<float>(loss / num_ / 2.0);
}

void ContrastiveLossLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  const float* diff = diff_.cpu_data();
  const float* dist_sq = dist_sq_.cpu_data();
  const float* sim = bottom[2]->cpu_data();
  for (int i = 0; i < 2; ++i) {
    if (!propagate_down[i]) continue;
    const float alpha = (i == 0 ? 1.f : -1.f) * top[0]->cpu_diff()[0] / static_cast<float>(num_);
    float* out = bottom[i]->mutable_cpu_diff();
    for (int n = 0; n < num_; ++n) {
      const float* d = diff + static_cast<long>(n) * dim_;
      float* o = out + static_cast<long>(n) * dim_;
      float scale = 0.f;
      if (static_cast<int>(sim[n])) {
        scale = alpha;
      } else if (legacy_) {
        if (margin_ - dist_sq[n] > 0.f) scale = -alpha;
      } else {
        const float dist = std::sqrt(dist_sq[n]);
        const float gap = margin_ - dist;
        if (gap > 0.f) scale = -alpha * gap / (dist + 1e-4f);
      }
      cpu_scale(dim_, scale, d, o);
    }
  }
}

REGISTER_LAYER_CLASS(ContrastiveLoss);

}  // namespace crema
