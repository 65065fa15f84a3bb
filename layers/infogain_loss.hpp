// InfogainLossLayer (type "InfogainLoss"): multinomial logistic loss weighted by an
// "information gain" matrix H, applied to softmax probabilities (Caffe's current form: the
// bottom holds scores and the layer applies the softmax itself).
//   bottom[0]: scores x, shape (outer..., K, inner...) around a = infogain_loss_param.axis (1)
//   bottom[1]: labels, outer * inner values in [0, K) (or loss_param.ignore_label)
//   bottom[2] (optional): H [K x K] (any shape with K*K values); without it H is read from
//              the BlobProto file infogain_loss_param.source
//   top[0]: scalar loss;  top[1] (optional): the probabilities p = softmax(x) along a
//   forward:  loss = -1/Z sum_{(o,i) not ignored} sum_k H[l, k] log(max(p[o, k, i], 1e-20)),
//             l = label(o, i)
//   backward: dx[o, k, i] = w/Z (p[o, k, i] * sum_j H[l, j] - H[l, k]), 0 where ignored;
//             labels and H get no gradient.
//   Z by loss_param.normalization (default VALID): FULL outer*inner, VALID the non-ignored
//   count, BATCH_SIZE outer, NONE 1; then max(Z, 1). The deprecated `normalize` is refused.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class InfogainLossLayer : public LossLayer {
 public:
  explicit InfogainLossLayer(const pb::LayerParameter& param);
  const char* type() const override { return "InfogainLoss"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  int ExactNumBottomBlobs() const override { return -1; }
  int MinBottomBlobs() const override { return 2; }
  int MaxBottomBlobs() const override { return 3; }
  int ExactNumTopBlobs() const override { return -1; }
  int MinTopBlobs() const override { return 1; }
  int MaxTopBlobs() const override { return 2; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index == 0; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float Normalizer(int valid_count) const;
  const float* Infogain(const BlobVec& bottom) const;
  void CheckLabel(int label, float raw, long position) const;

  int axis_param_ = 1;
  bool has_ignore_label_ = false;
  int ignore_label_ = 0;
  int normalization_ = 1;  // LossParameter::NormalizationMode
  int outer_ = 0, channels_ = 0, inner_ = 0;
  Blob infogain_;  // H from `source`
  Blob row_sums_;  // sum_j H[l, j]
  Blob prob_;
  Blob scratch_;

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
