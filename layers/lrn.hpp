// LRNLayer (type "LRN"): local response normalisation, Caffe's two variants.
//   bottom: x [N, C, H, W]      top: y, same shape
//   n = local_size (odd), r = (n - 1) / 2
//   ACROSS_CHANNELS:
//     scale[c] = k + alpha / n * sum_{c' = c-r}^{c+r} x[c']^2   (channels outside [0, C) are 0)
//     y[c]     = x[c] * scale[c]^-beta
//     dx[c]    = dy[c] scale[c]^-beta
//                - 2 alpha beta / n * x[c] * sum_{c' = c-r}^{c+r} dy[c'] y[c'] / scale[c']
//   WITHIN_CHANNEL (Caffe composes it of Power, AVE Pooling, Power and Eltwise PROD; k is
//   not used):
//     avg[h,w] = 1 / n^2 * sum over the n x n window centred on (h, w), clipped to the
//                image, of x^2   (AVE pooling with pad r, stride 1: the divisor is n^2)
//     base     = 1 + alpha * avg,  y = x * base^-beta
//     dx[p]    = dy[p] base[p]^-beta
//                - 2 alpha beta / n^2 * x[p] * sum_{q: p in window(q)} dy[q] x[q] base[q]^(-beta-1)
// Work is split over channel planes; buffers are member blobs shaped in Reshape.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class LRNLayer : public Layer {
 public:
  explicit LRNLayer(const pb::LayerParameter& param);
  const char* type() const override { return "LRN"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 protected:  // read by the cuDNN engine (layers/cudnn_layers.hpp)
  bool within_channel_ = false;
  int size_ = 5;
  float alpha_ = 1.f, beta_ = 0.75f, k_ = 1.f;
  int num_ = 0, channels_ = 0, height_ = 0, width_ = 0;
  Blob scale_;  // ACROSS: scale; WITHIN: base = 1 + alpha * avg
  Blob work_;   // per-element temporary (squares / ratios)
  Blob line_;   // WITHIN: one plane per thread for the separable box sum

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
