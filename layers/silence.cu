// SilenceLayer on the GPU (semantics in silence.hpp): nothing forward; the bottom gradients
// that are asked for are zeroed on the device.
#include "layers/silence.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void SilenceLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {}

void SilenceLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate_down[i]) gpu_set(bottom[i]->count(), 0.f, bottom[i]->mutable_gpu_diff());
}

}  // namespace crema
