// AbsValLayer on the GPU (formulas in absval.hpp): y = |x|, dx = sign(x) * dy.
#include "layers/absval.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void absval_forward(int64_t n, const float* __restrict__ x, float* __restrict__ y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = fabsf(x[i]);
  }
}

__global__ void absval_backward(int64_t n, const float* __restrict__ x,
                                const float* __restrict__ dy, float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    const float s = static_cast<float>((v > 0.f) - (v < 0.f));
    dx[i] = s * dy[i];
  }
}

}  // namespace

// Never in place (LayerSetUp refuses it), so x, y, dy and dx are distinct arrays.
void AbsValLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(absval_forward, bottom[0]->count(), bottom[0]->gpu_data(),
              top[0]->mutable_gpu_data());
}

void AbsValLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(absval_backward, bottom[0]->count(), bottom[0]->gpu_data(), top[0]->gpu_diff(),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
