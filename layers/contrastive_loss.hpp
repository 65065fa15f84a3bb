// ContrastiveLossLayer (type "ContrastiveLoss"): the loss of Hadsell, Chopra & LeCun (2006)
// for learning embeddings from similar / dissimilar pairs.
//   bottom[0]: a [N, D...];  bottom[1]: b, same shape;  bottom[2]: y [N] (nonzero = similar)
//   top[0]:    scalar loss
//   With d_n = ||a_n - b_n||_2 and margin m (contrastive_loss_param.margin, 1):
//     loss = 1/(2N) sum_n  y_n ? d_n^2
//                              : max(m - d_n, 0)^2     (legacy_version: max(m - d_n^2, 0))
//   backward (w = loss weight, sign + for a, - for b), per pair n:
//     similar:     da_n = w/N (a_n - b_n)
//     dissimilar:  da_n = -w/N (m - d_n) / (d_n + 1e-4) (a_n - b_n)  when m - d_n > 0
//                  (legacy: -w/N (a_n - b_n) when m - d_n^2 > 0), else 0
//     db_n = -da_n.  y receives no gradient.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "layers/loss.hpp"

namespace crema {

class ContrastiveLossLayer : public LossLayer {
 public:
  explicit ContrastiveLossLayer(const pb::LayerParameter& param);
  const char* type() const override { return "ContrastiveLoss"; }
  int ExactNumBottomBlobs() const override { return 3; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index != 2; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float margin_ = 1.f;
  bool legacy_ = false;
  int num_ = 0, dim_ = 0;
  Blob diff_;     // a - b
  Blob dist_sq_;  // ||a_n - b_n||^2

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
