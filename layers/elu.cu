// ELULayer on the GPU (formulas in elu.hpp): y = x if x > 0, else alpha * (exp(x) - 1);
// dx = dy if x > 0, else dy * (y + alpha). In place with alpha < 0 the forward saves x in
// bottom_copy_; in place with alpha >= 0 the sign test is made on y (as on the CPU).
#include "layers/elu.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place); `saved` (null unless needed) gets x.
__global__ void elu_forward(int64_t n, const float* x, float alpha, float* saved, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    if (saved) saved[i] = v;
    y[i] = v > 0.f ? v : alpha * (expf(v) - 1.f);
  }
}

// Any of x, y (the same array in place with alpha >= 0) and dy, dx (the same in place).
__global__ void elu_backward(int64_t n, const float* x, const float* y, const float* dy,
                             float alpha, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    // The CPU's two selects, so that both paths round identically.
    const float g = dy[i];
    const bool positive = x[i] > 0.f;
    dx[i] = (positive ? g : 0.f) + (positive ? 0.f : g) * (y[i] + alpha);
  }
}

}  // namespace

void ELULayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  float* saved = NeedsCopy(bottom, top) ? bottom_copy_.mutable_gpu_data() : nullptr;
  CUDA_LAUNCH(elu_forward, bottom[0]->count(), bottom[0]->gpu_data(), alpha_, saved,
              top[0]->mutable_gpu_data());
}

void ELULayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  // Not in place: the real input. In place: the saved copy, or (alpha >= 0) the top.
  const float* x = NeedsCopy(bottom, top) ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
  CUDA_LAUNCH(elu_backward, bottom[0]->count(), x, top[0]->gpu_data(), top[0]->gpu_diff(), alpha_,
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
