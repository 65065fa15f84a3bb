// SwishLayer on the GPU (formulas in swish.hpp): s = sigmoid(beta * x) (kept in sigmoid_),
// y = x * s; dx = dy * (beta * y + s * (1 - beta * y)). The backward reads only the top and
// s, so in place needs no copy.
#include "layers/swish.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place).
__global__ void swish_forward(int64_t n, const float* x, float beta, float* s, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    const float si = 0.5f * tanhf(0.5f * (beta * v)) + 0.5f;  // the CPU's sigmoid formula
    s[i] = si;
    y[i] = v * si;
  }
}

// dy and dx may be the same array (in place).
__global__ void swish_backward(int64_t n, const float* y, const float* s, const float* dy,
                               float beta, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float by = beta * y[i];
    dx[i] = dy[i] * (by + s[i] * (1.f - by));
  }
}

}  // namespace

void SwishLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(swish_forward, bottom[0]->count(), bottom[0]->gpu_data(), beta_,
              sigmoid_.mutable_gpu_data(), top[0]->mutable_gpu_data());
}

void SwishLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(swish_backward, bottom[0]->count(), top[0]->gpu_data(), sigmoid_.gpu_data(),
              top[0]->gpu_diff(), beta_, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
