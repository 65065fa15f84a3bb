#include "layers/convolution.hpp"
#include "layers/engines.hpp"

#include "crema.pb.h"
#include "crema/im2col.hpp"
#include "crema/layer_registry.hpp"

namespace crema {

std::vector<int> ConvolutionLayer::compute_output_shape() const {
  std::vector<int> out(num_spatial_axes_);
  for (int a = 0; a < num_spatial_axes_; ++a) {
    const int in = input_shape(a);
    const int extent = dilation_[a] * (kernel_shape_[a] - 1) + 1;
    out[a] = conv_output_size(in, kernel_shape_[a], pad_[a], stride_[a], dilation_[a]);
    LAYER_REQUIRE(out[a] > 0 && in + 2 * pad_[a] >= extent,
                  "kernel extent " << extent << " (kernel " << kernel_shape_[a] << ", dilation "
                                   << dilation_[a] << ") exceeds the padded input " << in << " + 2*"
                                   << pad_[a] << " = " << in + 2 * pad_[a] << " along spatial axis "
                                   << a);
  }
  return out;
}

void ConvolutionLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* weight = blobs_[0]->cpu_data();
  const float* bias = bias_term_ ? blobs_[1]->cpu_data() : nullptr;
  for (size_t i = 0; i < bottom.size(); ++i)
    forward_batch(bottom[i]->cpu_data(), weight, bias, top[i]->mutable_cpu_data());
}

void ConvolutionLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->cpu_diff();
    if (bias_grad) bias_grad_batch(top_diff, blobs_[1]->mutable_cpu_diff());
    if (weight_grad)
      weight_grad_batch(bottom[i]->cpu_data(), top_diff, blobs_[0]->mutable_cpu_diff());
    if (propagate_down[i])
      backward_data_batch(top_diff, blobs_[0]->cpu_data(), nullptr, bottom[i]->mutable_cpu_diff());
  }
}

// Engine choice (im2col + GEMM, or the direct depthwise kernel) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(Convolution, CreateConvolutionLayer);

}  // namespace crema
