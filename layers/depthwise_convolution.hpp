// DepthwiseConvolutionLayer (type "Convolution"): a direct kernel for the depthwise case of
// Convolution, group == input channels C (any channel multiplier m = O / C), 2 spatial
// axes. Same parameters, blobs and results as ConvolutionLayer (see convolution.hpp); only
// the computation differs: no im2col, no GEMM. Any other configuration falls back to
// ConvolutionLayer's im2col + GEMM path. Chosen by CreateConvolutionLayer (engines.hpp).
//   bottom: x [N, C, H, W];  top: y [N, C*m, Ho, Wo] (Ho, Wo as Convolution)
//   params: weight [C*m, 1, kh, kw], bias [C*m] (bias_term)
//   output channel o reads input channel c = o / m:
//   forward:  y[n, o, p, q] = sum_{i, j} W[o, 0, i, j] x[n, c, p*sh - ph + i*dh, q*sw - pw +
//             j*dw] (+ b[o]); positions in the padding read 0
//   backward: dx[n, c] = sum_{o: o/m == c} the adjoint of that map applied to dy[n, o]
//             (overwrites); dW[o, 0, i, j] += sum_{n, p, q} dy[n, o, p, q] x[n, c, ...];
//             db[o] += sum_{n, p, q} dy[n, o, p, q] (both accumulate)
// Threading: forward over (n, o) planes, input gradient over (n, c) planes, weight
// gradient over o (images summed in order, so results do not depend on the thread count).
#pragma once

#include <vector>

#include "layers/convolution.hpp"

namespace crema {

class DepthwiseConvolutionLayer : public ConvolutionLayer {
 public:
  explicit DepthwiseConvolutionLayer(const pb::LayerParameter& param) : ConvolutionLayer(param) {}

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  // Whether the direct kernel is used (decided in LayerSetUp).
  bool is_depthwise() const { return depthwise_; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  struct Geometry {
    int H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, m;
  };
  Geometry geometry() const;
  void forward_images(const float* x, const float* weight, const float* bias, float* y) const;
  void backward_data(const float* dy, const float* weight, float* dx) const;
  void backward_weight(const float* x, const float* dy, float* dweight) const;

  bool depthwise_ = false;
};

}  // namespace crema
