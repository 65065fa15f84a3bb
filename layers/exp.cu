// ExpLayer on the GPU (formulas in exp.hpp): y = outer * exp(inner * x); dx = inner * (y * dy).
// The backward reads only the top, so in place needs no copy.
#include "layers/exp.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place).
__global__ void exp_forward(int64_t n, const float* x, float inner, float outer, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float e = expf(inner * x[i]);
    y[i] = outer == 1.f ? e : outer * e;
  }
}

// dy and dx may be the same array (in place).
__global__ void exp_backward(int64_t n, const float* y, const float* dy, float inner, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = inner * (y[i] * dy[i]);
  }
}

}  // namespace

void ExpLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(exp_forward, bottom[0]->count(), bottom[0]->gpu_data(), inner_scale_, outer_scale_,
              top[0]->mutable_gpu_data());
}

void ExpLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(exp_backward, bottom[0]->count(), top[0]->gpu_data(), top[0]->gpu_diff(),
              inner_scale_, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
