// MultinomialLogisticLossLayer (type "MultinomialLogisticLoss"): the negative log
// likelihood of probabilities that are already normalised (e.g. a Softmax layer's output).
//   bottom[0]: p [N, K...] (K = count / N values per example);  bottom[1]: labels [N] in [0, K)
//   top[0]:    loss = -1/N sum_n log(max(p[n, l_n], 1e-20))
//   backward:  dp[n, l_n] = -w / (N max(p[n, l_n], 1e-20)), every other entry 0
//              (w = loss weight). Labels get no gradient; a label outside [0, K) is an error.
#pragma once

#include <vector>

#include "layers/loss.hpp"

namespace crema {

class MultinomialLogisticLossLayer : public LossLayer {
 public:
  explicit MultinomialLogisticLossLayer(const pb::LayerParameter& param) : LossLayer(param) {}
  const char* type() const override { return "MultinomialLogisticLoss"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int num_ = 0, dim_ = 0;

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
