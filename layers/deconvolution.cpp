#include "layers/deconvolution.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

std::vector<int> DeconvolutionLayer::compute_output_shape() const {
  std::vector<int> out(num_spatial_axes_);
  for (int a = 0; a < num_spatial_axes_; ++a) {
    const int in = input_shape(a);
    const int extent = dilation_[a] * (kernel_shape_[a] - 1) + 1;
    out[a] = stride_[a] * (in - 1) + extent - 2 * pad_[a];
    LAYER_REQUIRE(in > 0 && out[a] > 0, "the output size along spatial axis "
                                            << a << " is stride " << stride_[a] << " * (input "
                                            << in << " - 1) + kernel extent " << extent
                                            << " - 2 * pad " << pad_[a] << " = " << out[a]
                                            << ", which is not positive");
  }
  return out;
}

void DeconvolutionLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* weight = blobs_[0]->cpu_data();
  const float* bias = bias_term_ ? blobs_[1]->cpu_data() : nullptr;
  for (size_t i = 0; i < bottom.size(); ++i)
    backward_data_batch(bottom[i]->cpu_data(), weight, bias, top[i]->mutable_cpu_data());
}

void DeconvolutionLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->cpu_diff();
    if (bias_grad) bias_grad_batch(top_diff, blobs_[1]->mutable_cpu_diff());
    // Conv view: the top is the conv input, the bottom the conv output.
    if (weight_grad)
      weight_grad_batch(top_diff, bottom[i]->cpu_data(), blobs_[0]->mutable_cpu_diff());
    if (propagate_down[i])
      forward_batch(top_diff, blobs_[0]->cpu_data(), nullptr, bottom[i]->mutable_cpu_diff());
  }
}

REGISTER_LAYER_CLASS(Deconvolution);

}  // namespace crema
