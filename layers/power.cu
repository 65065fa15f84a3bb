// PowerLayer on the GPU (formulas in power.hpp): y = (shift + scale * x) ^ power, with the
// CPU's special cases (constant output when power * scale == 0; power 1, 2 and 0.5 without
// powf). In place, x is saved in bottom_copy_ whenever the derivative depends on it.
#include <cmath>

#include "layers/power.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place); `saved` (null unless needed) gets x. The
// branch on `power` is uniform across the grid.
__global__ void power_forward(int64_t n, const float* x, float power, float scale, float shift,
                              float* saved, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    if (saved) saved[i] = v;
    const float b = shift + scale * v;
    float r;
    if (power == 1.f)
      r = b;
    else if (power == 2.f)
      r = b * b;
    else if (power == 0.5f)
      r = sqrtf(b);
    else
      r = powf(b, power);
    y[i] = r;
  }
}

// power == 1: dx = k * dy (dy and dx may be the same array).
__global__ void power_backward_linear(int64_t n, const float* dy, float k, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = k * dy[i];
  }
}

// power == 2: dx = dy * (k * (shift + scale * x)).
__global__ void power_backward_square(int64_t n, const float* x, const float* dy, float k,
                                      float scale, float shift, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * (k * (shift + scale * x[i]));
  }
}

// Otherwise dx = dy * (k * b^p / b) with b^p read from the top, or b^(p - 1) where b == 0.
__global__ void power_backward_general(int64_t n, const float* x, const float* y, const float* dy,
                                       float k, float power, float scale, float shift, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float b = shift + scale * x[i];
    const float d = b != 0.f ? y[i] / b : powf(b, power - 1.f);
    dx[i] = dy[i] * (k * d);
  }
}

}  // namespace

void PowerLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  float* y = top[0]->mutable_gpu_data();
  const int64_t n = bottom[0]->count();
  if (diff_scale_ == 0.f) {
    const float value = power_ == 0.f ? 1.f : std::pow(shift_, power_);
    gpu_set(n, value, y);
    return;
  }
  float* saved =
      top[0] == bottom[0] && DerivativeNeedsInput() ? bottom_copy_.mutable_gpu_data() : nullptr;
  CUDA_LAUNCH(power_forward, n, bottom[0]->gpu_data(), power_, scale_, shift_, saved, y);
}

void PowerLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t n = bottom[0]->count();
  float* dx = bottom[0]->mutable_gpu_diff();
  const float* dy = top[0]->gpu_diff();
  const float k = diff_scale_;
  if (k == 0.f) {
    gpu_set(n, 0.f, dx);
    return;
  }
  if (power_ == 1.f) {
    CUDA_LAUNCH(power_backward_linear, n, dy, k, dx);
    return;
  }
  const float* x = top[0] == bottom[0] ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
  if (power_ == 2.f) {
    CUDA_LAUNCH(power_backward_square, n, x, dy, k, scale_, shift_, dx);
    return;
  }
  CUDA_LAUNCH(power_backward_general, n, x, top[0]->gpu_data(), dy, k, power_, scale_, shift_, dx);
}

}  // namespace crema
