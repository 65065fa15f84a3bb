// ThresholdLayer on the GPU (formulas in threshold.hpp): y = x > t ? 1 : 0. No backward:
// asking for the bottom gradient is the CPU path's error.
#include "layers/threshold.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place).
__global__ void threshold_forward(int64_t n, const float* x, float t, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = x[i] > t ? 1.f : 0.f;
  }
}

}  // namespace

void ThresholdLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(threshold_forward, bottom[0]->count(), bottom[0]->gpu_data(), threshold_,
              top[0]->mutable_gpu_data());
}

void ThresholdLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  Backward_cpu(top, propagate_down, bottom);  // touches no data; throws if a gradient is asked
}

}  // namespace crema
