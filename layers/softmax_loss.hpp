// SoftmaxWithLossLayer (type "SoftmaxWithLoss"): softmax followed by the multinomial
// logistic loss, fused for a stable gradient.
//   bottom[0]: scores x, shape (outer..., C, inner...) around axis a = softmax_param.axis (1)
//   bottom[1]: labels, outer * inner values in [0, C) (or ignore_label)
//   top[0]:    scalar loss; top[1] (optional): the probabilities p, shape of bottom[0]
//   forward:  p = softmax(x) along a;
//             loss = -sum_{(o,i) not ignored} log(max(p[o, label(o,i), i], FLT_MIN)) / N
//   backward: dx[o, c, i] = w / N * (p[o, c, i] - [c == label(o,i)]) , 0 where ignored;
//             w = top[0] diff (the loss weight). Labels receive no gradient.
//   N, by loss_param.normalization (default VALID; the deprecated `normalize` maps
//   true -> VALID, false -> BATCH_SIZE when `normalization` is absent), then max(N, 1):
//     FULL: outer * inner   VALID: number of non-ignored labels
//     BATCH_SIZE: outer     NONE: 1
#pragma once

#include <memory>

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class DeferredDeviceReport;  // src/cuda_util.hpp (CUDA builds)

class SoftmaxWithLossLayer : public LossLayer {
 public:
  enum class Normalization { FULL = 0, VALID = 1, BATCH_SIZE = 2, NONE = 3 };

  explicit SoftmaxWithLossLayer(const pb::LayerParameter& param);
  const char* type() const override { return "SoftmaxWithLoss"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  int ExactNumTopBlobs() const override { return -1; }
  int MinTopBlobs() const override { return 1; }
  int MaxTopBlobs() const override { return 2; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float Normalizer(int valid_count) const;

  int axis_param_ = 1;
  bool has_ignore_label_ = false;
  int ignore_label_ = 0;
  Normalization normalization_ = Normalization::VALID;
  int outer_ = 0, channels_ = 0, inner_ = 0;
  Blob prob_;
  Blob scratch_;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // The forward reads its loss and label check back; the backward is plain device work.
  bool GraphSafeBackward() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob gpu_loss_;  // per position: loss, then the valid flag, then the bad-label flag
  // [normaliser, bad-label count, first bad position, its label], written on the device.
  Blob gpu_summary_;
  // The label check of an iteration whose loss nobody reads: copied to the host
  // asynchronously and examined at the next Forward (softmax_loss.cu).
  std::shared_ptr<DeferredDeviceReport> pending_check_;
  void ThrowIfBadLabel(const float* summary, bool earlier_batch) const;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
