// SoftmaxLayer on the GPU (formulas in softmax.hpp). One thread per (outer, inner)
// position walks the channels with the CPU's arithmetic: max, exp(x - max) and its sum,
// then division; backward dx = (dy - sum_c dy y) * y.
#include "layers/softmax.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void softmax_forward(int64_t n, int channels, int inner, const float* x, float* y) {
  CUDA_KERNEL_LOOP(p, n) {
    const int64_t o = p / inner, i = p % inner;
    const int64_t base = o * channels * inner + i;
    float m = x[base];
    for (int c = 1; c < channels; ++c) m = fmaxf(m, x[base + int64_t{c} * inner]);
    float sum = 0.f;
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + int64_t{c} * inner;
      const float e = expf(x[at] - m);
      y[at] = e;
      sum += e;
    }
    for (int c = 0; c < channels; ++c) y[base + int64_t{c} * inner] /= sum;
  }
}

__global__ void softmax_backward(int64_t n, int channels, int inner, const float* y,
                                 const float* dy, float* dx) {
  CUDA_KERNEL_LOOP(p, n) {
    const int64_t o = p / inner, i = p % inner;
    const int64_t base = o * channels * inner + i;
    float dot = 0.f;
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + int64_t{c} * inner;
      dot += dy[at] * y[at];
    }
    for (int c = 0; c < channels; ++c) {
      const int64_t at = base + int64_t{c} * inner;
      dx[at] = (dy[at] - dot) * y[at];
    }
  }
}

}  // namespace

void SoftmaxForwardGpu(int outer, int channels, int inner, const float* in, float* out) {
  if (channels <= 0) return;
  CUDA_LAUNCH(softmax_forward, int64_t{outer} * inner, channels, inner, in, out);
}

void SoftmaxBackwardGpu(int outer, int channels, int inner, const float* y, const float* dy,
                        float* dx) {
  if (channels <= 0) return;
  CUDA_LAUNCH(softmax_backward, int64_t{outer} * inner, channels, inner, y, dy, dx);
}

void SoftmaxLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardGpu(outer_, channels_, inner_, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void SoftmaxLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  SoftmaxBackwardGpu(outer_, channels_, inner_, top[0]->gpu_data(), top[0]->gpu_diff(),
                     bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
