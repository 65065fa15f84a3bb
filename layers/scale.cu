// ScaleLayer on the GPU (formulas in scale.hpp), through the broadcast helpers of bias.cu:
// forward y = s[d] * x (+ b[d]) saving x in bottom_copy_ when in place; backward: the scale
// (and bias) sums in one ReduceGpu pass over dy, then dx = s[d] * dy.
#include "layers/scale.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void ScaleLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* s = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->gpu_data();
  const float* b = bias_term_ ? blobs_[bias_index_]->gpu_data() : nullptr;
  float* copy = top[0] == bottom[0] ? bottom_copy_.mutable_gpu_data() : nullptr;
  broadcast::ApplyGpu(geometry_, bottom[0]->gpu_data(), s, b, top[0]->mutable_gpu_data(), copy);
}

void ScaleLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const float* dy = top[0]->gpu_diff();
  const bool learned = bottom.size() == 1;
  // Parameter gradients first: in place, dx overwrites dy.
  float* bias_diff = bias_term_ && param_propagate_down(bias_index_)
                         ? blobs_[bias_index_]->mutable_gpu_diff()
                         : nullptr;
  Blob* scale = learned ? blobs_[0].get() : bottom[1];
  if (learned ? param_propagate_down(0) : propagate_down[1]) {
    const float* x = top[0] == bottom[0] ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
    broadcast::ReduceGpu(geometry_, dy, x, scale->mutable_gpu_diff(), learned, bias_diff);
  } else if (bias_diff) {
    broadcast::ReduceGpu(geometry_, dy, nullptr, bias_diff, true);
  }
  if (propagate_down[0])
    broadcast::ApplyGpu(geometry_, dy, scale->gpu_data(), nullptr, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
