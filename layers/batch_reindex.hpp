// BatchReindexLayer (type "BatchReindex"): gathers examples of a batch by index.
//   bottom[0]: x [N, d_1, ..., d_n];  bottom[1]: indices i [M] (1 axis, values in [0, N))
//   top:       y [M, d_1, ..., d_n],  y[m] = x[i[m]]
//   backward:  dx[n] = sum over m with i[m] == n of dy[m] (0 where n is never picked);
//              the indices receive no gradient.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class BatchReindexLayer : public Layer {
 public:
  explicit BatchReindexLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "BatchReindex"; }
  int ExactNumBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index == 0; }

  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Throws unless every index is an integer in [0, N).
  void CheckIndices(const BlobVec& bottom) const;
  int inner_ = 0;

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
