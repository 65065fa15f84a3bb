// PReLULayer (type "PReLU"): leaky ReLU with a learned negative slope per channel.
//   bottom: x [N, C, ...] (at least 2 axes)     top: y, same shape (in place allowed)
//   forward:  y = max(x, 0) + a[c] * min(x, 0)       (c: index along axis 1)
//   backward: dx = dy * (x > 0 ? 1 : a[c])
//             da[c] += sum over n, spatial of dy * x * (x <= 0)      (accumulates, as Caffe)
//   params:   a [C], or a scalar (0 axes) with prelu_param.channel_shared;
//             filler prelu_param.filler, default constant 0.25
// In place, the input is copied before it is overwritten (the backward needs it).
#pragma once

#include <vector>

#include "layers/neuron.hpp"

namespace crema {

class PReLULayer : public NeuronLayer {
 public:
  explicit PReLULayer(const pb::LayerParameter& param);
  const char* type() const override { return "PReLU"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool channel_shared_ = false;
  int channels_ = 0;                  // C
  int outer_ = 0;                     // N (count before axis 1)
  int inner_ = 0;                     // count after axis 1
  Blob bottom_copy_;                  // the input, kept only when running in place
  std::vector<double> channel_sums_;  // slope-gradient partial sums, one per channel

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
  // GPU mode, channel_shared: the per-channel slope-gradient sums before their total.
  Blob gpu_channel_sums_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
