// SoftmaxLayer (type "Softmax").
//   bottom: x, shape (d_0, ..., d_{a-1}, C, d_{a+1}, ...), a = softmax_param.axis (1)
//   top:    y, same shape (in-place allowed)
//   With outer = d_0 * ... * d_{a-1} and inner = d_{a+1} * ..., for every (o, i):
//   forward:  m = max_c x[o, c, i];  y[o, c, i] = exp(x[o, c, i] - m) / sum_c' exp(x[o, c', i] - m)
//   backward: dx[o, c, i] = y[o, c, i] * (dy[o, c, i] - sum_c' dy[o, c', i] * y[o, c', i])
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

// The softmax kernels, shared with SoftmaxWithLoss. Data is laid out outer x channels x
// inner; `scratch` holds outer * inner floats (unused when inner == 1). `out` may be `in`,
// `dx` may be `dy`.
void SoftmaxForwardCpu(int outer, int channels, int inner, const float* in, float* out,
                       float* scratch);
void SoftmaxBackwardCpu(int outer, int channels, int inner, const float* y, const float* dy,
                        float* dx, float* scratch);
#ifdef CREMA_WITH_CUDA
// The same on device arrays (layers/softmax.cu); one thread per (outer, inner) position.
void SoftmaxForwardGpu(int outer, int channels, int inner, const float* in, float* out);
void SoftmaxBackwardGpu(int outer, int channels, int inner, const float* y, const float* dy,
                        float* dx);
#endif

class SoftmaxLayer : public Layer {
 public:
  explicit SoftmaxLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Softmax"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  int axis_param_ = 1;
  int outer_ = 0, channels_ = 0, inner_ = 0;
  Blob scratch_;  // outer x inner: per-position max, then sum / dot product

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
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
