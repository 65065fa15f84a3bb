// ReductionLayer on the GPU (formulas in reduction.hpp): x seen as [num, D]. Forward: each
// row's sum of x, |x| or x^2 (float accumulation, a tree), times coeff; a warp per row for
// D < kBlockRowMin, a block per row above (so that both many short rows and one long row
// keep the device busy). Backward: one thread per element of dx.
#include <algorithm>

#include "layers/reduction.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

using Op = ReductionLayer::Op;

constexpr int kReduceThreads = 256;  // a multiple of 32
constexpr int kBlockRowMin = 1024;   // rows at least this long get a block each

__device__ float term(Op op, float v) {
  switch (op) {
    case Op::ASUM:
      return fabsf(v);
    case Op::SUMSQ:
      return v * v;
    default:  // SUM, MEAN
      return v;
  }
}

// One warp per row (the row loop is uniform across each warp).
__global__ void reduction_forward_warp(int num, int dim, Op op, float coeff,
                                       const float* __restrict__ x, float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t step = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = first; row < num; row += step) {
    const float* xr = x + row * dim;
    float v = 0.f;
    for (int j = lane; j < dim; j += 32) v += term(op, xr[j]);
    v = warp_sum(v);
    if (lane == 0) y[row] = coeff == 1.f ? v : v * coeff;
  }
}

// One block per row.
__global__ void reduction_forward_block(int num, int dim, Op op, float coeff,
                                        const float* __restrict__ x, float* __restrict__ y) {
  for (int64_t row = blockIdx.x; row < num; row += gridDim.x) {
    const float* xr = x + row * dim;
    float v = 0.f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) v += term(op, xr[j]);
    v = block_sum(v);
    if (threadIdx.x == 0) y[row] = coeff == 1.f ? v : v * coeff;
  }
}

__global__ void reduction_backward(int64_t n, int dim, Op op, float coeff,
                                   const float* __restrict__ x, const float* __restrict__ dy,
                                   float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(e, n) {
    const float g = dy[e / dim] * coeff;
    switch (op) {
      case Op::ASUM: {
        const float v = x[e];
        dx[e] = v > 0.f ? g : (v < 0.f ? -g : 0.f);
        break;
      }
      case Op::SUMSQ:
        dx[e] = 2.f * g * x[e];
        break;
      default:  // SUM, MEAN
        dx[e] = g;
        break;
    }
  }
}

}  // namespace

void ReductionLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (num_ <= 0) return;
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  if (dim_ >= kBlockRowMin) {
    reduction_forward_block<<<std::min(num_, 65535), kReduceThreads, 0, ::crema::cuda_stream()>>>(
        num_, dim_, op_, coeff_, x, y);
    cuda_check_launch("reduction_forward_block");
  } else {
    reduction_forward_warp<<<cuda_blocks(int64_t{num_} * 32), kCudaThreads, 0,
                             ::crema::cuda_stream()>>>(num_, dim_, op_, coeff_, x, y);
    cuda_check_launch("reduction_forward_warp");
  }
}

void ReductionLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(reduction_backward, bottom[0]->count(), dim_, op_, coeff_, bottom[0]->gpu_data(),
              top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
