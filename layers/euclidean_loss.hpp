// EuclideanLossLayer (type "EuclideanLoss").
//   bottom[0]: a, shape (N, ...)   bottom[1]: b, shape (N, ...) with the same count
//   top[0]:    scalar loss
//   forward:  loss = 1 / (2N) * sum_i (a_i - b_i)^2
//   backward: da = w / N * (a - b),  db = -w / N * (a - b)   (w = top[0] diff, the loss
//             weight). Both bottoms may receive gradients (force_backward allowed on both).
#pragma once

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class EuclideanLossLayer : public LossLayer {
 public:
  explicit EuclideanLossLayer(const pb::LayerParameter& param) : LossLayer(param) {}
  const char* type() const override { return "EuclideanLoss"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  bool AllowForceBackward(int bottom_index) const override { return true; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob diff_;  // a - b

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
