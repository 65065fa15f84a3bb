// HingeLossLayer (type "HingeLoss"): one-vs-all hinge loss for classification.
//   bottom[0]: scores x [N, D...] (K = count / N classes);  bottom[1]: labels l [N], in [0, K)
//   top[0]:    scalar loss
//   With t[n, k] = -x[n, k] if k == l_n else x[n, k] and h = max(0, 1 + t):
//     L1 (default): loss = sum h / N          L2: loss = sum h^2 / N
//   backward (w = loss weight), s[n, k] = -1 if k == l_n else 1:
//     L1: dx = w/N * s * sign(h)               L2: dx = 2 w/N * s * h
//   Labels get no gradient; a label outside [0, K) is an error.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class HingeLossLayer : public LossLayer {
 public:
  explicit HingeLossLayer(const pb::LayerParameter& param);
  const char* type() const override { return "HingeLoss"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int norm_ = 1;  // HingeLossParameter::Norm: 1 = L1, 2 = L2
  int num_ = 0, dim_ = 0;
  Blob margin_;  // h

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
  // Device scratch: the first reduction stage's per-block sums of the loss.
  Blob gpu_loss_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
