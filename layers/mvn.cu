// MVNLayer on the GPU (formulas in mvn.hpp). The row statistics (mu and 1 / (sigma + eps),
// then the backward's mean(dy) and mean(dy * y)) are reduced by one block per row with sums
// in double, as the CPU's; the elementwise maps are one thread per element. Nothing is read
// back to the host. gpu_stats_ holds the statistics between the kernels.
#include <algorithm>

#include "layers/mvn.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the per-row blocks (a multiple of 32)

// One block per row of `dim` elements: mean[r] = mu and inv_std[r] = 1 / (sigma + eps), or 1
// without normalize_variance (two passes, as the CPU).
__global__ void mvn_row_stats(int dim, const float* __restrict__ x, bool normalize, float eps,
                              float* mean, float* inv_std) {
  const int64_t r = blockIdx.x;
  const float* xr = x + r * dim;
  double sum = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i];
  const float mu = static_cast<float>(block_sum(sum) / dim);
  float k = 1.f;
  if (normalize) {
    double sq = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
      const float d = xr[i] - mu;
      sq += static_cast<double>(d) * d;
    }
    k = 1.f / (sqrtf(static_cast<float>(block_sum(sq) / dim)) + eps);
  }
  if (threadIdx.x == 0) {
    mean[r] = mu;
    inv_std[r] = k;
  }
}

// y = (x - mu) * k, or x - mu without normalize_variance. x may be y.
__global__ void mvn_forward(int64_t n, const float* x, const float* __restrict__ mean,
                            const float* __restrict__ inv_std, int dim, bool normalize, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t r = i / dim;
    y[i] = normalize ? (x[i] - mean[r]) * inv_std[r] : x[i] - mean[r];
  }
}

// y as the backward sees it: recomputed from x, or (in place) x is y already.
__device__ __forceinline__ float mvn_y(float x, int64_t r, const float* mean, const float* inv_std,
                                       bool in_place) {
  return in_place ? x : (x - mean[r]) * inv_std[r];
}

// One block per row: mean_dy[r] = sum dy / dim and, with normalize_variance,
// mean_dyy[r] = sum dy * y / dim.
__global__ void mvn_backward_sums(int dim, const float* dy, const float* x,
                                  const float* __restrict__ mean, const float* __restrict__ inv_std,
                                  bool normalize, bool in_place, float* mean_dy, float* mean_dyy) {
  const int64_t r = blockIdx.x;
  const float* gr = dy + r * dim;
  const float* xr = x + r * dim;
  double sa = 0, sb = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    sa += gr[i];
    if (normalize) sb += static_cast<double>(gr[i]) * mvn_y(xr[i], r, mean, inv_std, in_place);
  }
  sa = block_sum(sa);
  sb = block_sum(sb);
  if (threadIdx.x == 0) {
    mean_dy[r] = static_cast<float>(sa / dim);
    mean_dyy[r] = static_cast<float>(sb / dim);
  }
}

// normalize_variance: dx = (dy - mean_dy - y * mean_dyy) * inv_std; otherwise
// dx = dy - mean_dy. In place, dx is dy and x is y.
__global__ void mvn_backward(int64_t n, const float* dy, const float* x,
                             const float* __restrict__ mean, const float* __restrict__ inv_std,
                             const float* __restrict__ mean_dy, const float* __restrict__ mean_dyy,
                             int dim, bool normalize, bool in_place, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t r = i / dim;
    if (normalize) {
      const float y = mvn_y(x[i], r, mean, inv_std, in_place);
      dx[i] = (dy[i] - mean_dy[r] - y * mean_dyy[r]) * inv_std[r];
    } else {
      dx[i] = dy[i] - mean_dy[r];
    }
  }
}

}  // namespace

void MVNLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int rows = rows_, dim = dim_;
  gpu_stats_.Reshape({4, std::max(rows, 1)});
  float* mean = gpu_stats_.mutable_gpu_data();
  float* inv_std = mean + gpu_stats_.count(1);
  if (rows <= 0 || dim <= 0) return;
  const float* x = bottom[0]->gpu_data();
  mvn_row_stats<<<rows, kReduceThreads, 0, ::crema::cuda_stream()>>>(dim, x, normalize_variance_,
                                                                     eps_, mean, inv_std);
  cuda_check_launch("mvn_row_stats");
  CUDA_LAUNCH(mvn_forward, bottom[0]->count(), x, mean, inv_std, dim, normalize_variance_,
              top[0]->mutable_gpu_data());
}

void MVNLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int rows = rows_, dim = dim_;
  if (rows <= 0 || dim <= 0) return;
  const bool in_place = top[0] == bottom[0];
  const int64_t stride = gpu_stats_.count(1);
  float* stats = gpu_stats_.mutable_gpu_data();
  const float *mean = stats, *inv_std = stats + stride;
  float *mean_dy = stats + 2 * stride, *mean_dyy = stats + 3 * stride;
  const float* dy = top[0]->gpu_diff();
  const float* x = bottom[0]->gpu_data();     // y itself when in place
  float* dx = bottom[0]->mutable_gpu_diff();  // dy itself when in place
  // Every row's sums are complete before dx (possibly dy's memory) is written.
  mvn_backward_sums<<<rows, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      dim, dy, x, mean, inv_std, normalize_variance_, in_place, mean_dy, mean_dyy);
  cuda_check_launch("mvn_backward_sums");
  CUDA_LAUNCH(mvn_backward, bottom[0]->count(), dy, x, mean, inv_std, mean_dy, mean_dyy, dim,
              normalize_variance_, in_place, dx);
}

}  // namespace crema
