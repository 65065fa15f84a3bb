// PoolingLayer (type "Pooling"): MAX, AVE or STOCHASTIC pooling over 2-D windows.
//   bottom: x [N, C, H, W]
//   top:    y [N, C, Ho, Wo]; optional second top (MAX only): the argmax mask as float
//           (index h*W + w within the plane)
//   Output size (round_mode CEIL, the default, or FLOOR):
//     Ho = round((H + 2 pad_h - kernel_h) / stride_h) + 1, likewise Wo;
//     with padding, a last window that would start in the bottom/right padding
//     ((Ho - 1) stride_h >= H + pad_h) is dropped: Ho -= 1.
//   Window (ph, pw): rows [ph*stride_h - pad_h, + kernel_h) ∩ [0, H), likewise columns.
//   MAX:  y = max over the window (first maximum wins ties); dx[argmax] += dy.
//   AVE:  y = sum over the window / pool_size, where pool_size counts the window clipped to
//         the PADDED image [-pad, H + pad) (padding counts as zeros);
//         dx[i] += dy / pool_size for every i in the window.
//   STOCHASTIC (no padding; windows clipped to the image):
//         TRAIN: pick element i of the window with probability x_i / sum(window) (x >= 0
//                assumed), y = x_i; dx[i] += dy.  TEST: y = sum(x^2) / sum(x) (0 if the
//                sum is not positive); no backward.
//   global_pooling: the kernel is the whole plane (pad 0, stride 1 required).
// Work is split over the N*C planes.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class PoolingLayer : public Layer {
 public:
  explicit PoolingLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Pooling"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int MinTopBlobs() const override { return 1; }
  // MAX pooling may output the mask as a second top.
  int MaxTopBlobs() const override { return method_ == Method::MAX ? 2 : 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  enum class Method { MAX = 0, AVE = 1, STOCHASTIC = 2 };

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  Method method_ = Method::MAX;
  bool global_pooling_ = false;
  bool ceil_mode_ = true;
  int kernel_h_ = 0, kernel_w_ = 0;
  int stride_h_ = 1, stride_w_ = 1;
  int pad_h_ = 0, pad_w_ = 0;
  int num_ = 0, channels_ = 0, height_ = 0, width_ = 0;
  int pooled_height_ = 0, pooled_width_ = 0;
  std::vector<int> max_idx_;    // MAX with one top: argmax per output (index in the plane)
  std::vector<int> rand_idx_;   // STOCHASTIC TRAIN: chosen element per output
  std::vector<float> uniform_;  // STOCHASTIC TRAIN: the uniform draws

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
  Blob gpu_mask_;  // MAX with one top: the argmax per output, as int (GPU mode)
#endif             // CREMA_WITH_CUDA
};

}  // namespace crema
