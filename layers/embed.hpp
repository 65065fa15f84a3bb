// EmbedLayer (type "Embed"): a lookup table (one-hot input times a weight matrix).
//   bottom: ids x, any shape, M values, each an integer in [0, input_dim)
//   top:    y [x.shape..., num_output]
//   forward:  y[m, :] = W[x[m], :] (+ b)
//   backward: dW[x[m], :] += dy[m, :]; db += sum_m dy[m, :] (both accumulate). The ids get
//             no gradient (asking for one is an error).
//   params:   weight W [input_dim, num_output]; bias b [num_output] (bias_term, default true)
// An id that is negative, >= input_dim or not an integer is an error naming it.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class EmbedLayer : public Layer {
 public:
  explicit EmbedLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Embed"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }
  bool AllowForceBackward(int bottom_index) const override { return false; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  void CheckIds(const Blob& ids) const;

  int num_output_ = 0;  // N
  int input_dim_ = 0;   // K
  bool bias_term_ = true;
  int M_ = 0;

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
  // GPU mode: M ones; the bias gradient is dy^T * ones (cuBLAS gemv).
  Blob bias_multiplier_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
