// DeconvolutionLayer (type "Deconvolution"): the transpose of Convolution (its forward is
// Convolution's input-gradient map), as used for learned upsampling.
//   bottom: x [N..., C, i_0, ..., i_{d-1}]
//   top:    y [N..., O, o_0, ..., o_{d-1}],  O = num_output,
//           o_a = stride_a (i_a - 1) + dilation_a (k_a - 1) + 1 - 2 pad_a   (must be > 0)
//   In the "conv view" of base_convolution.hpp, y is the conv input and x the conv output:
//   forward:  y = conv^T(x; W) + b        (col2im(W_g^T x_g) per group, bias per channel)
//   backward: dx = conv(dy; W)            (overwrites)
//             dW[c, o', q] += sum_n x_n[c] * im2col(dy_n)[o', q]^T  (accumulates)
//             db[o] += sum of dy over images and positions           (accumulates)
//   params:   weight [C, O/group, k_0, ..., k_{d-1}], bias [O] (bias_term)
// Parameters (kernel/stride/pad/dilation/group/axis) as for Convolution.
#pragma once

#include <memory>
#include <vector>

#include "layers/base_convolution.hpp"

namespace crema {

#ifdef CREMA_WITH_CUDA
namespace cudnn {
class ConvolutionOp;  // src/cudnn_adapter.hpp
struct ConvShape;
}  // namespace cudnn
#endif

class DeconvolutionLayer : public BaseConvolutionLayer {
 public:
  explicit DeconvolutionLayer(const pb::LayerParameter& param) : BaseConvolutionLayer(param) {}
  const char* type() const override { return "Deconvolution"; }

 protected:
  bool reverse_dimensions() const override { return true; }
  std::vector<int> compute_output_shape() const override;
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
    return true;
  }
  // The geometry this layer gives cuDNN under precision `math`, in the conv view (its
  // current shapes; FP16/BF16 nets run it in fp32).
  cudnn::ConvShape CudnnShape(Precision math) const;

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // The convolution in the conv view (input = this layer's top, output = its bottom);
  // created on the first GPU forward.
  std::shared_ptr<cudnn::ConvolutionOp> cudnn_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
