// SigmoidCrossEntropyLossLayer (type "SigmoidCrossEntropyLoss"): cross entropy between
// sigmoid(x) and targets t in [0, 1], computed stably from the logits.
//   bottom[0]: logits x [N, ...];  bottom[1]: targets t, same count
//   top[0]:    loss = 1/Z sum_{i not ignored} [ log(1 + exp(-|x_i|)) + max(x_i, 0) - x_i t_i ]
//              (= -t log s(x) - (1 - t) log(1 - s(x)), never overflowing)
//   backward:  dx_i = w/Z (sigmoid(x_i) - t_i), 0 where ignored; targets get no gradient.
//   Ignored: loss_param.ignore_label given and int(t_i) == ignore_label.
//   Z by loss_param.normalization when given (FULL: count, VALID: non-ignored count,
//   BATCH_SIZE: N, NONE: 1), else by the deprecated `normalize` (true VALID, false
//   BATCH_SIZE), else BATCH_SIZE (Caffe's default for this layer); then max(Z, 1).
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class SigmoidCrossEntropyLossLayer : public LossLayer {
 public:
  explicit SigmoidCrossEntropyLossLayer(const pb::LayerParameter& param);
  const char* type() const override { return "SigmoidCrossEntropyLoss"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float Normalizer(int valid_count) const;

  bool has_ignore_label_ = false;
  int ignore_label_ = 0;
  int normalization_ = 2;  // LossParameter::NormalizationMode
  int outer_ = 0, inner_ = 0;
  float normalizer_ = 1.f;  // from the last forward

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Device scratch: the first reduction stage's per-block sums of the loss and of the
  // valid count, then the normaliser the backward scales by.
  Blob gpu_loss_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
