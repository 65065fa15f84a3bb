// ConvolutionLayer (type "Convolution"): N-d convolution by im2col + GEMM, with groups,
// padding, stride and dilation (parameters and threading: see base_convolution.hpp).
//   bottom: x [N..., C, i_0, ..., i_{d-1}] (N... = the axes before convolution_param.axis)
//   top:    y [N..., O, o_0, ..., o_{d-1}],
//           o_a = (i_a + 2 pad_a - (dilation_a (k_a - 1) + 1)) / stride_a + 1  (floor)
//   forward:  y[n, o, p] = b[o] + sum_{c in group(o), q} W[o, c', q] x[n, c, p*stride - pad +
//   q*dilation]
//             (c' = c's index within its group; positions in the padding read 0)
//   backward: dW[o, c', q] += sum_{n, p} dy[n, o, p] x[n, c, ...]     (accumulates)
//             db[o] += sum_{n, p} dy[n, o, p]                          (accumulates)
//             dx = the adjoint of the forward map applied to dy       (overwrites)
//   params:   weight [O, C/group, k_0, ..., k_{d-1}], bias [O] (bias_term)
// Several bottom/top pairs share the parameters; every bottom must have the same shape.
// A kernel whose extent exceeds the padded input is an error.
// GPU precision (the net's `precision`, see src/cudnn_adapter.hpp): TF32 lets cuDNN use
// TF32 tensor cores; FP16/BF16 round x, W and (times the loss scale) dy to 16 bits for
// cuDNN, widen y, dx and dW (scaled back) to fp32; the bias stays fp32. With 1 or 2 spatial
// axes the 16-bit copies are channels last (NHWC; layouts in convolution.cu). A 1x1
// convolution (stride 1, no padding, one group) may run as cuBLAS GEMMs instead of cuDNN,
// whichever is faster for its shape (convolution.cu).
#pragma once

#include <memory>
#include <vector>

#include "crema/activation_copies.hpp"
#include "layers/base_convolution.hpp"

namespace crema {

#ifdef CREMA_WITH_CUDA
namespace cudnn {
class ConvolutionOp;  // src/cudnn_adapter.hpp
struct ConvShape;
}  // namespace cudnn
struct ChannelEpilogue;  // src/channel_epilogue.hpp
#endif

class ConvolutionLayer : public BaseConvolutionLayer {
 public:
  explicit ConvolutionLayer(const pb::LayerParameter& param) : BaseConvolutionLayer(param) {}
  const char* type() const override { return "Convolution"; }

 protected:
  bool reverse_dimensions() const override { return false; }
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
  // Whether the last GPU forward ran as GEMMs (1x1; see convolution.cu).
  bool runs_gemm_1x1() const {
    return use_gemm_;
  }
  // Whether the last fused forward ran inside cuDNN's fused convolution (convolution.cu).
  bool runs_fused_cudnn() const {
    return use_fused_cudnn_;
  }
  // The geometry this layer gives cuDNN under precision `math` (its current shapes; FP16/BF16
  // with 1 or 2 spatial axes run channels last).
  cudnn::ConvShape CudnnShape(Precision math) const;
  // The test-time fused forward of one bottom/top pair (src/inference_fusion.hpp): top gets
  // the epilogue of the convolution WITHOUT its bias (the epilogue's shift carries it).
  // `visible` is the blob the next layers read (top, or the epilogue's residual sum): in
  // FP16/BF16 the output pass also writes the 16-bit copy of it a consumer asked for
  // (include/crema/activation_copies.hpp).
  void ForwardWithEpilogue(const Blob& bottom, Blob* top, const ChannelEpilogue& epilogue,
                           Blob* visible);

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Whether the 16-bit copies are channels last under `math` (FP16/BF16, 1 or 2 spatial axes).
  bool nhwc_16(Precision math) const;
  // Sets up cuDNN for this forward, rounds W (returns it in 16 bits for FP16/BF16, else
  // null) and picks the 1x1 route (use_gemm_).
  const void* prepare_forward(const Blob& bottom, Blob* top);
  // One bottom/top pair through cuDNN, or (1x1, stride 1, no padding, one group) as GEMMs;
  // w16: W rounded to 16 bits (FP16/BF16), null otherwise; epilogue: null for the plain
  // forward (bias added), else applied instead of the bias; visible: as in
  // ForwardWithEpilogue (null: no copy). In FP16/BF16 the input's 16-bit copy is taken from
  // ActivationCopies when a producer wrote it.
  void forward_pair(const Blob& bottom, Blob* top, const void* w16, const ChannelEpilogue* epilogue,
                    Blob* visible);
  // The two routes. x16: the input already rounded in the route's layout (null: they round
  // it); visible: the epilogue's copy is written when a consumer asked for one.
  void forward_cudnn(const Blob& bottom, Blob* top, const void* w16,
                     const ChannelEpilogue* epilogue = nullptr, const void* x16 = nullptr,
                     Blob* visible = nullptr);
  void forward_gemm_1x1(const Blob& bottom, Blob* top, const void* w16,
                        const ChannelEpilogue* epilogue = nullptr, const void* x16 = nullptr,
                        Blob* visible = nullptr);
  // The ActivationCopies view of `blob` (a bottom or top of this layer: channels on axis 1)
  // under the net's 16-bit precision, NCHW or NHWC.
  ActivationCopies::View copy_view(const Blob& blob, int channels, bool nhwc) const;
  // The epilogue plus the copy of `visible` a consumer asked for, if any (every route writes
  // either layout). Call right after top's mutable access.
  ChannelEpilogue with_copy(const ChannelEpilogue& epilogue, Blob* visible);
  // The bias (epilogue null) or the epilogue with its copy of `visible` (with_copy), on fp32
  // NCHW top data holding the raw output.
  void finish_output(const ChannelEpilogue* epilogue, Blob* visible, float* y);
  // cuDNN's fused convolution + bias + ReLU/identity (FP32 and TF32, an epilogue without a
  // residual sum or a leaky ReLU): the epilogue's scale folded into W, its shift the bias.
  bool fused_cudnn_possible(const ChannelEpilogue& epilogue) const;
  void forward_fused_cudnn(const Blob& bottom, Blob* top, const ChannelEpilogue& epilogue);
  // Whether it beats the other route + the epilogue pass (CREMA_CONV_FUSED_CUDNN, else timed
  // once per shape and ReLU flag, for the process).
  bool choose_fused_cudnn(const Blob& bottom, Blob* top, const void* w16,
                          const ChannelEpilogue& epilogue);
  bool fused_cudnn_agrees(const Blob& bottom, Blob* top, const void* w16,
                          const ChannelEpilogue& epilogue);
  void backward_gemm_1x1(const Blob& top, bool weight_grad, bool data_grad, Blob* bottom);
  // Whether a 1x1 layer of `shape` runs as GEMMs (CREMA_CONV_1X1_GEMM, else timed once per
  // shape on this bottom/top).
  bool choose_gemm_1x1(const cudnn::ConvShape& shape, const Blob& bottom, Blob* top,
                       const void* w16);

  std::shared_ptr<cudnn::ConvolutionOp> cudnn_;   // created on the first GPU forward
  bool use_gemm_ = false;                         // the last forward ran the GEMM route
  std::vector<int> routed_shape_;                 // the bottom shape use_gemm_ was chosen for
  Precision routed_precision_ = Precision::FP32;  // and the precision
  // The fused-cuDNN decision and what it was made for (bottom shape, precision, ReLU flag and
  // the route underneath, which may change with them).
  bool use_fused_cudnn_ = false;
  std::vector<int> fused_shape_;
  Precision fused_precision_ = Precision::FP32;
  bool fused_relu_ = false, fused_gemm_ = false;
  Blob folded_w_, zero_bias_;  // scratch: scale * W, and zeros for a convolution without bias
  // FP16/BF16 scratch: 16-bit x, W, y (also dy), dx and dW.
  Blob x16_, w16_, y16_, dx16_, dw16_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
