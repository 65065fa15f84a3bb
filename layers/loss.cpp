#include "layers/loss.hpp"

#include "crema.pb.h"

namespace crema {

LossLayer::LossLayer(const pb::LayerParameter& param) : Layer(param) {
  if (layer_param_->loss_weight_size() == 0) {
    layer_param_->add_loss_weight(1.f);
    default_loss_weight_ = true;
  }
}

void LossLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  if (!default_loss_weight_) return;
  while (layer_param_->loss_weight_size() < static_cast<int>(top.size()))
    layer_param_->add_loss_weight(0.f);
}

void LossLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& a = *bottom[0];
  const Blob& b = *bottom[1];
  const bool same_first_axis = a.num_axes() > 0 && b.num_axes() > 0 ? a.shape(0) == b.shape(0)
                                                                    : a.num_axes() == b.num_axes();
  LAYER_REQUIRE(same_first_axis, "the predictions (bottom 0, shape "
                                     << a.shape_string() << ") and the targets (bottom 1, shape "
                                     << b.shape_string() << ") must have the same first dimension");
  top[0]->Reshape(std::vector<int>{});
}

}  // namespace crema
