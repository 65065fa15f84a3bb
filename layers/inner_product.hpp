// InnerProductLayer (type "InnerProduct"): a fully connected layer.
//   bottom: x, any shape; with a = inner_product_param.axis (default 1),
//           M = count(0, a) rows of K = count(a) features each
//   top:    y [shape[0..a), N]   (N = num_output)
//   forward:  y = x W^T + 1 b^T            (W [N, K]; with transpose: y = x W, W [K, N])
//   backward: dW += dy^T x  (transpose: dW += x^T dy)      (accumulates, as Caffe)
//             db += 1^T dy                                  (accumulates)
//             dx  = dy W    (transpose: dx = dy W^T)        (overwrites)
//   params:   weight [N, K] or [K, N] (transpose), bias [N] (bias_term, default true)
// K is fixed when the layer is set up: a bottom whose count(axis) differs is an error.
// GPU precision (the net's `precision`): TF32 runs the three products on TF32 tensor
// cores; FP16/BF16 round x, W and (times the loss scale) dy to 16 bits and accumulate in
// fp32 straight into y, dW (scaled back) and dx. The bias always stays fp32.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class InnerProductLayer : public Layer {
 public:
  explicit InnerProductLayer(const pb::LayerParameter& param);
  const char* type() const override { return "InnerProduct"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int axis_param_ = 1;
  int num_output_ = 0;
  bool bias_term_ = true;
  bool transpose_ = false;
  int M_ = 0, K_ = 0, N_ = 0;
  Blob bias_multiplier_;  // M ones

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // 16-bit copies of x, W and the scaled dy (FP16/BF16 only).
  Blob x16_, w16_, dy16_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
