// SigmoidLayer on the GPU (formulas in sigmoid.hpp).
#include "layers/sigmoid.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void sigmoid_forward(int64_t n, const float* x, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = 0.5f * tanhf(0.5f * x[i]) + 0.5f;
  }
}

__global__ void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float s = y[i];
    dx[i] = dy[i] * s * (1.f - s);
  }
}

}  // namespace

void SigmoidLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(sigmoid_forward, bottom[0]->count(), bottom[0]->gpu_data(),
              top[0]->mutable_gpu_data());
}

void SigmoidLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(sigmoid_backward, bottom[0]->count(), top[0]->gpu_data(), top[0]->gpu_diff(),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
