// ConvolutionLayer on the GPU (formulas in convolution.hpp): cuDNN through
// src/cudnn_adapter (algorithm search, caching, fp32-exact math; see that header). Grouped
// convolutions (including the depthwise case, whose layer derives from this one) use
// cuDNN's group count. Every bottom/top pair shares one configured operation.
#include "layers/convolution.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cudnn_adapter.hpp"

namespace crema {

namespace {

cudnn::ConvShape conv_shape(int num, int channels, int num_output, int groups,
                            const std::vector<int>& input, const std::vector<int>& output,
                            const std::vector<int>& kernel, const std::vector<int>& pad,
                            const std::vector<int>& stride, const std::vector<int>& dilation) {
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
  return s;
}

}  // namespace

void ConvolutionLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(num_spatial_axes_ >= 1 && num_spatial_axes_ <= 3,
                "GPU convolution supports 1 to 3 spatial axes, got " << num_spatial_axes_);
  if (num_ == 0) return;  // an empty batch
  if (!cudnn_) cudnn_ = std::make_shared<cudnn::ConvolutionOp>();
  cudnn_->Setup(conv_shape(num_, channels_, num_output_, group_, bottom_spatial_, output_shape_,
                           kernel_shape_, pad_, stride_, dilation_));
  const float* weight = blobs_[0]->gpu_data();
  const float* bias = bias_term_ ? blobs_[1]->gpu_data() : nullptr;
  for (size_t i = 0; i < bottom.size(); ++i) {
    float* y = top[i]->mutable_gpu_data();
    cudnn_->Forward(bottom[i]->gpu_data(), weight, y);
    if (bias) cudnn_->AddBias(bias, y);
  }
}

void ConvolutionLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  if (num_ == 0) return;
  CHECK(cudnn_) << "Backward_gpu before Forward_gpu";
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->gpu_diff();
    if (bias_grad) cudnn_->BackwardBias(top_diff, blobs_[1]->mutable_gpu_diff());
    if (weight_grad)
      cudnn_->BackwardFilter(bottom[i]->gpu_data(), top_diff, blobs_[0]->mutable_gpu_diff());
    if (propagate_down[i])
      cudnn_->BackwardData(blobs_[0]->gpu_data(), top_diff, bottom[i]->mutable_gpu_diff());
  }
}

}  // namespace crema
