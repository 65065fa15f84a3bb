// LossLayer: base of the loss layers (SoftmaxWithLoss, EuclideanLoss).
//   bottom[0]: predictions, bottom[1]: targets (labels); both with the same first axis
//   top[0]:    the scalar loss (0 axes); created by Net when the prototxt names no top
// A loss layer has loss_weight 1 on top 0 unless the prototxt says otherwise (added to the
// layer parameter at construction, as Caffe's LossLayer does in LayerSetUp); extra tops
// (SoftmaxWithLoss's probabilities) then get weight 0 in LayerSetUp, where Caffe would
// reject the single default weight for two tops. Backward
// scales its gradients by top[0]->cpu_diff()[0], where Layer::SetLossWeights keeps the
// loss weight. The label bottom (1) is never force-backward'ed.
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class LossLayer : public Layer {
 public:
  explicit LossLayer(const pb::LayerParameter& param);

  // Subclasses overriding LayerSetUp must call this one.
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  // Checks that the two bottoms agree on their first axis and shapes top[0] as a scalar.
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  int ExactNumBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }
  bool AutoTopBlobs() const override { return true; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index != 1; }

 private:
  bool default_loss_weight_ = false;  // the prototxt gave no loss_weight
};

}  // namespace crema
