// ConvolutionLayer on the GPU (formulas in convolution.hpp): cuDNN through
// src/cudnn_adapter (algorithm search, caching, precision; see that header). Grouped
// convolutions (including the depthwise case, whose layer derives from this one) use
// cuDNN's group count. Every bottom/top pair shares one configured operation.
//
// FP16/BF16 with 1 or 2 spatial axes run cuDNN channels last (cudnn::ConvLayout::NHWC),
// where its 16-bit tensor-core kernels are fastest; the blobs stay NCHW (Caffe's layout).
// The 16-bit copies change layout as they change precision (src/mixed_precision.cuh):
//   x [num][C][S]      -> x16 [num][S][C]           (gpu_round_16_nhwc)
//   W [O][C/g][K]      -> w16 [O][K][C/g]           (cuDNN's NHWC filter format)
//   y16 [num][So][O]   -> y [num][O][So] + b[o]     (gpu_widen_16_nchw, the bias fused)
//   dy [num][O][So]    -> dy16 = round16(S dy), NHWC
//   dx16, dW16 (NHWC)  -> dx = dx16 / S, dW += dW16 / S  (NCHW / [O][C/g][K])
// with S the loss scale. 3 spatial axes keep the 16-bit copies NCHW (elementwise rounding).
#include "layers/convolution.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cudnn_adapter.hpp"
#include "src/mixed_precision.cuh"

namespace crema {

namespace {

cudnn::ConvShape conv_shape(int num, int channels, int num_output, int groups,
                            const std::vector<int>& input, const std::vector<int>& output,
                            const std::vector<int>& kernel, const std::vector<int>& pad,
                            const std::vector<int>& stride, const std::vector<int>& dilation,
                            Precision precision, cudnn::ConvLayout layout) {
  cudnn::ConvShape s;
  s.num = num;
  s.channels = channels;
  s.num_output = num_output;
  s.groups = groups;
  s.input = input;
  s.output = output;
  s.kernel = kernel;
  s.pad = pad;
  s.stride = stride;
  s.dilation = dilation;
  s.precision = precision;
  s.layout = layout;
  return s;
}

// S of `blob` seen as [num][channels][S], the view of the layout conversions: the spatial
// volume of a bottom or top, or the kernel volume of W ([O][C/g][K]).
int64_t spatial_volume(const Blob& blob, int num, int channels) {
  return blob.count() / (static_cast<int64_t>(num) * channels);
}

}  // namespace

bool ConvolutionLayer::nhwc_16(Precision math) const {
  return IsHalfPrecision(math) && num_spatial_axes_ <= 2;
}

void ConvolutionLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(num_spatial_axes_ >= 1 && num_spatial_axes_ <= 3,
                "GPU convolution supports 1 to 3 spatial axes, got " << num_spatial_axes_);
  if (num_ == 0) return;  // an empty batch
  const Precision math = precision();
  const bool nhwc = nhwc_16(math);
  if (!cudnn_) cudnn_ = std::make_shared<cudnn::ConvolutionOp>();
  cudnn_->Setup(conv_shape(num_, channels_, num_output_, group_, bottom_spatial_, output_shape_,
                           kernel_shape_, pad_, stride_, dilation_, math,
                           nhwc ? cudnn::ConvLayout::NHWC : cudnn::ConvLayout::NCHW));
  const float* weight = blobs_[0]->gpu_data();
  const float* bias = bias_term_ ? blobs_[1]->gpu_data() : nullptr;
  if (!IsHalfPrecision(math)) {
    for (size_t i = 0; i < bottom.size(); ++i) {
      float* y = top[i]->mutable_gpu_data();
      cudnn_->Forward(bottom[i]->gpu_data(), weight, y);
      if (bias) cudnn_->AddBias(bias, y);
    }
    return;
  }
  // 16 bits: round W once, then x -> y16 -> widened y (+ fp32 bias) per bottom.
  float* overflow = mixed_precision()->overflow.mutable_gpu_data();
  void* w16 = gpu_buffer_16(&w16_, blobs_[0]->count());
  const int group_channels = channels_ / group_;
  if (nhwc)
    gpu_round_16_nhwc(math, num_output_, group_channels,
                      spatial_volume(*blobs_[0], num_output_, group_channels), weight, 1.f, w16,
                      overflow);
  else
    gpu_round_16(math, blobs_[0]->count(), weight, 1.f, w16, overflow);
  for (size_t i = 0; i < bottom.size(); ++i) {
    void* x16 = gpu_buffer_16(&x16_, bottom[i]->count());
    void* y16 = gpu_buffer_16(&y16_, top[i]->count());
    float* y = top[i]->mutable_gpu_data();
    if (nhwc) {
      gpu_round_16_nhwc(math, num_, channels_, spatial_volume(*bottom[i], num_, channels_),
                        bottom[i]->gpu_data(), 1.f, x16, overflow);
      cudnn_->Forward(x16, w16, y16);
      gpu_widen_16_nchw(math, num_, num_output_, spatial_volume(*top[i], num_, num_output_), y16,
                        1.f, false, bias, y, overflow);
      continue;
    }
    gpu_round_16(math, bottom[i]->count(), bottom[i]->gpu_data(), 1.f, x16, overflow);
    cudnn_->Forward(x16, w16, y16);
    gpu_widen_16(math, top[i]->count(), y16, 1.f, false, y, overflow);
    if (bias) cudnn_->AddBias(bias, y);
  }
}

void ConvolutionLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  if (num_ == 0) return;
  CHECK(cudnn_) << "Backward_gpu before Forward_gpu";
  const Precision math = precision();
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->gpu_diff();
    if (bias_grad) cudnn_->BackwardBias(top_diff, blobs_[1]->mutable_gpu_diff());
    if (!IsHalfPrecision(math)) {
      if (weight_grad)
        cudnn_->BackwardFilter(bottom[i]->gpu_data(), top_diff, blobs_[0]->mutable_gpu_diff());
      if (propagate_down[i])
        cudnn_->BackwardData(blobs_[0]->gpu_data(), top_diff, bottom[i]->mutable_gpu_diff());
      continue;
    }
    // 16 bits: dy16 = round16(S dy); dW += dW16 / S; dx = dx16 / S. w16 still holds this
    // iteration's rounded W (Forward_gpu); x is rounded again for each bottom.
    // In NHWC (nhwc_16) every 16-bit array is channels last and the conversions transpose.
    if (!weight_grad && !propagate_down[i]) continue;
    const bool nhwc = nhwc_16(math);
    const float scale = mixed_precision()->gradient_scale();
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    const int group_channels = channels_ / group_;
    const int64_t in_volume = spatial_volume(*bottom[i], num_, channels_);
    void* dy16 = gpu_buffer_16(&y16_, top[i]->count());
    if (nhwc)
      gpu_round_16_nhwc(math, num_, num_output_, spatial_volume(*top[i], num_, num_output_),
                        top_diff, scale, dy16, overflow);
    else
      gpu_round_16(math, top[i]->count(), top_diff, scale, dy16, overflow);
    if (weight_grad) {
      void* x16 = gpu_buffer_16(&x16_, bottom[i]->count());
      void* dw16 = gpu_buffer_16(&dw16_, blobs_[0]->count());
      float* dw = blobs_[0]->mutable_gpu_diff();
      if (nhwc)
        gpu_round_16_nhwc(math, num_, channels_, in_volume, bottom[i]->gpu_data(), 1.f, x16,
                          overflow);
      else
        gpu_round_16(math, bottom[i]->count(), bottom[i]->gpu_data(), 1.f, x16, overflow);
      cudnn_->BackwardFilter(x16, dy16, dw16, /*accumulate=*/false);
      if (nhwc)
        gpu_widen_16_nchw(math, num_output_, group_channels,
                          spatial_volume(*blobs_[0], num_output_, group_channels), dw16,
                          1.f / scale, true, nullptr, dw, overflow);
      else
        gpu_widen_16(math, blobs_[0]->count(), dw16, 1.f / scale, true, dw, overflow);
    }
    if (propagate_down[i]) {
      void* dx16 = gpu_buffer_16(&dx16_, bottom[i]->count());
      float* dx = bottom[i]->mutable_gpu_diff();
      cudnn_->BackwardData(w16_.gpu_data(), dy16, dx16);
      if (nhwc)
        gpu_widen_16_nchw(math, num_, channels_, in_volume, dx16, 1.f / scale, false, nullptr, dx,
                          overflow);
      else
        gpu_widen_16(math, bottom[i]->count(), dx16, 1.f / scale, false, dx, overflow);
    }
  }
}

}  // namespace crema
