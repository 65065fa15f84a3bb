// BNLLLayer on the GPU (formulas in bnll.hpp): y = max(x, 0) + log1p(exp(-|x|));
// dx = dy * e / (1 + e) with e = exp(min(x, 50)), or dy * -expm1(-y) in place.
#include "layers/bnll.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr float kExpClamp = 50.f;  // as bnll.cpp (Caffe's clamp)

// x and y may be the same array (in place): each element is read before it is written.
__global__ void bnll_forward(int64_t n, const float* x, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    y[i] = (v < 0.f ? 0.f : v) + log1pf(expf(-fabsf(v)));  // std::max(v, 0) as on the CPU
  }
}

__global__ void bnll_backward(int64_t n, const float* __restrict__ x, const float* __restrict__ dy,
                              float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    const float e = expf(kExpClamp < v ? kExpClamp : v);  // std::min(v, 50) as on the CPU
    dx[i] = dy[i] * e / (e + 1.f);
  }
}

// In place: x is gone, sigmoid(x) = 1 - exp(-y); dy and dx are the same array.
__global__ void bnll_backward_in_place(int64_t n, const float* y, const float* dy, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * -expm1f(-y[i]);
  }
}

}  // namespace

void BNLLLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(bnll_forward, bottom[0]->count(), bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void BNLLLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  if (top[0] == bottom[0]) {
    CUDA_LAUNCH(bnll_backward_in_place, n, top[0]->gpu_data(), top[0]->gpu_diff(),
                bottom[0]->mutable_gpu_diff());
    return;
  }
  CUDA_LAUNCH(bnll_backward, n, bottom[0]->gpu_data(), top[0]->gpu_diff(),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
