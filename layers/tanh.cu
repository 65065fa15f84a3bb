// TanHLayer on the GPU (formulas in tanh.hpp).
#include "layers/tanh.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void tanh_forward(int64_t n, const float* x, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = tanhf(x[i]);
  }
}

__global__ void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float t = y[i];
    dx[i] = dy[i] * (1.f - t * t);
  }
}

}  // namespace

void TanHLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(tanh_forward, bottom[0]->count(), bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void TanHLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(tanh_backward, bottom[0]->count(), top[0]->gpu_data(), top[0]->gpu_diff(),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
