// ReLULayer on the GPU (formulas in relu.hpp): one elementwise pass each way, moving float4s
// when the count is a multiple of 4 and every array is 16-byte aligned (floats otherwise).
#include <cstdint>

#include "layers/relu.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// y = x > 0 ? x : slope * x over n Vecs (slope 0: exactly +0 for x <= 0, even -inf; NaN
// stays NaN), as on the CPU. y may be x.
template <typename Vec>
__global__ void relu_forward(int64_t n, const Vec* x, float slope, Vec* y) {
  CUDA_KERNEL_LOOP(i, n) {
    Vec v = x[i];
    for (int k = 0; k < kLanes<Vec>; ++k) {
      const float xk = lane(v, k);
      lane(v, k) = relu_of(xk, slope);
    }
    y[i] = v;
  }
}

// dx = x > 0 ? dy : slope * dy over n Vecs. dx may be dy. In place, x is the top data (same
// sign as the input for slope >= 0), as on the CPU.
template <typename Vec>
__global__ void relu_backward(int64_t n, const Vec* x, const Vec* dy, float slope, Vec* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    Vec v = x[i], g = dy[i];
    for (int k = 0; k < kLanes<Vec>; ++k)
      lane(g, k) = lane(v, k) > 0.f ? lane(g, k) : slope * lane(g, k);
    dx[i] = g;
  }
}

}  // namespace

void ReLULayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int64_t count = bottom[0]->count();
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  if (count % 4 == 0 && aligned16(x) && aligned16(y))
    CUDA_LAUNCH(relu_forward<float4>, count / 4, reinterpret_cast<const float4*>(x),
                negative_slope_, reinterpret_cast<float4*>(y));
  else
    CUDA_LAUNCH(relu_forward<float>, count, x, negative_slope_, y);
}

void ReLULayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t count = bottom[0]->count();
  const float* x = bottom[0]->gpu_data();
  const float* dy = top[0]->gpu_diff();
  float* dx = bottom[0]->mutable_gpu_diff();
  if (count % 4 == 0 && aligned16(x) && aligned16(dy) && aligned16(dx))
    CUDA_LAUNCH(relu_backward<float4>, count / 4, reinterpret_cast<const float4*>(x),
                reinterpret_cast<const float4*>(dy), negative_slope_,
                reinterpret_cast<float4*>(dx));
  else
    CUDA_LAUNCH(relu_backward<float>, count, x, dy, negative_slope_, dx);
}

}  // namespace crema
