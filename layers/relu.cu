// ReLULayer on the GPU (formulas in relu.hpp).
#include "layers/relu.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void relu_forward(int64_t n, const float* x, float slope, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = x[i] > 0.f ? x[i] : slope * x[i];
  }
}

// In place, x is the top data (same sign as the input for slope >= 0), as on the CPU.
__global__ void relu_backward(int64_t n, const float* x, const float* dy, float slope, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = x[i] > 0.f ? dy[i] : slope * dy[i];
  }
}

}  // namespace

void ReLULayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(relu_forward, bottom[0]->count(), bottom[0]->gpu_data(), negative_slope_,
              top[0]->mutable_gpu_data());
}

void ReLULayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(relu_backward, bottom[0]->count(), bottom[0]->gpu_data(), top[0]->gpu_diff(),
              negative_slope_, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
