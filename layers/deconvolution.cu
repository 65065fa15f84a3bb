// DeconvolutionLayer on the GPU (formulas in deconvolution.hpp): cuDNN through
// src/cudnn_adapter in the conv view, where the conv input is this layer's top and the conv
// output its bottom, with the deconvolution weight [C, O/g, k...] as the conv weight
// [C_out, C_in/g, k...]:
//   forward:  y = BackwardData(W, x)           (the conv's input gradient map)
//   backward: dx = Forward(dy, W),  dW += BackwardFilter(conv input dy, conv output grad x)
// The bias is per deconvolution output channel, i.e. per conv *input* channel, which the
// adapter's AddBias/BackwardBias (per conv output channel) do not cover: two small kernels
// here add it and reduce its gradient (one block per channel, sums in double). Every
// bottom/top pair shares one configured operation.
#include "layers/deconvolution.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cudnn_adapter.hpp"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the per-channel blocks (a multiple of 32)

// y[n, o, s] += bias[o] over a [num, channels, spatial] top.
__global__ void deconv_add_bias(int64_t n, const float* __restrict__ bias, int channels,
                                int spatial, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] += bias[i / spatial % channels];
  }
}

// One block per output channel o: db[o] += sum over images and positions of dy[n, o, s].
__global__ void deconv_bias_grad(int num, int channels, int spatial, const float* __restrict__ dy,
                                 float* db) {
  const int o = blockIdx.x;
  const int64_t m = static_cast<int64_t>(num) * spatial;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x)
    sum += dy[(e / spatial * channels + o) * spatial + e % spatial];
  sum = block_sum(sum);
  if (threadIdx.x == 0) db[o] += static_cast<float>(sum);
}

}  // namespace

cudnn::ConvShape DeconvolutionLayer::CudnnShape(Precision math) const {
  cudnn::ConvShape s;
  s.num = num_;
  s.channels = conv_in_channels_;     // = num_output_: the top's channels
  s.num_output = conv_out_channels_;  // = channels_: the bottom's channels
  s.groups = group_;
  s.input = output_shape_;  // the top's spatial sizes
  s.output = bottom_spatial_;
  s.kernel = kernel_shape_;
  s.pad = pad_;
  s.stride = stride_;
  s.dilation = dilation_;
  // TF32 is a cuDNN math mode on fp32 arrays; the 16-bit formats are not applied here
  // (Deconvolution computes in fp32 for FP16/BF16 nets).
  s.precision = math == Precision::TF32 ? Precision::TF32 : Precision::FP32;
  return s;
}

void DeconvolutionLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(num_spatial_axes_ >= 1 && num_spatial_axes_ <= 3,
                "GPU deconvolution supports 1 to 3 spatial axes, got " << num_spatial_axes_);
  if (num_ == 0) return;  // an empty batch
  if (!cudnn_) cudnn_ = std::make_shared<cudnn::ConvolutionOp>();
  cudnn_->Setup(CudnnShape(precision()));
  const float* weight = blobs_[0]->gpu_data();
  for (size_t i = 0; i < bottom.size(); ++i) {
    float* y = top[i]->mutable_gpu_data();
    cudnn_->BackwardData(weight, bottom[i]->gpu_data(), y);
    if (bias_term_) {
      CUDA_LAUNCH(deconv_add_bias, top[i]->count(), blobs_[1]->gpu_data(), num_output_,
                  out_spatial_dim_, y);
    }
  }
}

void DeconvolutionLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  if (num_ == 0) return;
  CHECK(cudnn_) << "Backward_gpu before Forward_gpu";
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->gpu_diff();
    if (bias_grad) {
      deconv_bias_grad<<<num_output_, kReduceThreads, 0, ::crema::cuda_stream()>>>(
          num_, num_output_, out_spatial_dim_, top_diff, blobs_[1]->mutable_gpu_diff());
      cuda_check_launch("deconv_bias_grad");
    }
    // Conv view: the top is the conv input, the bottom the conv output.
    if (weight_grad)
      cudnn_->BackwardFilter(top_diff, bottom[i]->gpu_data(), blobs_[0]->mutable_gpu_diff());
    if (propagate_down[i])
      cudnn_->Forward(top_diff, blobs_[0]->gpu_data(), bottom[i]->mutable_gpu_diff());
  }
}

}  // namespace crema
