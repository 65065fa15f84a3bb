// BiasLayer on the GPU (formulas in bias.hpp), and the device versions of the broadcast
// helpers that ScaleLayer shares: ApplyGpu runs one thread per element of x seen as
// [outer, dim, inner]; ReduceGpu runs one block per d, summing over (o, i) with a
// shared-memory tree.
#include <algorithm>

#include "layers/bias.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // a multiple of 32

// y = a[d] * x + b[d] (a or b null: 1 or 0), d = (i / inner) % dim; x and y may be the same
// array; `copy` (may be null) gets x.
__global__ void broadcast_apply(int64_t n, int dim, int inner, const float* x, const float* a,
                                const float* b, float* y, float* copy) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t d = (i / inner) % dim;
    const float v = x[i];
    if (copy) copy[i] = v;
    if (!a)
      y[i] = v + b[d];
    else if (!b)
      y[i] = a[d] * v;
    else
      y[i] = a[d] * v + b[d];
  }
}

// One block per d: s = sum over o, i of u (* v when v is not null) at (o, d, i);
// r[d] = r[d] + s (accumulate) or s; with r_plain, also r_plain[d] += sum of u.
__global__ void broadcast_reduce(int outer, int dim, int inner, const float* u, const float* v,
                                 float* r, bool accumulate, float* r_plain) {
  const int64_t per_d = static_cast<int64_t>(outer) * inner;
  for (int d = blockIdx.x; d < dim; d += gridDim.x) {
    float part = 0.f, plain = 0.f;
    for (int64_t k = threadIdx.x; k < per_d; k += blockDim.x) {
      const int64_t at = ((k / inner) * dim + d) * inner + k % inner;
      const float ui = u[at];
      part += v ? ui * v[at] : ui;
      plain += ui;
    }
    part = block_sum(part);
    if (r_plain) plain = block_sum(plain);
    if (threadIdx.x == 0) {
      r[d] = accumulate ? r[d] + part : part;
      if (r_plain) r_plain[d] += plain;
    }
  }
}

}  // namespace

namespace broadcast {

void ApplyGpu(const Geometry& g, const float* x, const float* a, const float* b, float* y,
              float* copy) {
  const int64_t n = static_cast<int64_t>(g.outer) * g.dim * g.inner;
  CUDA_LAUNCH(broadcast_apply, n, g.dim, g.inner, x, a, b, y, copy);
}

void ReduceGpu(const Geometry& g, const float* u, const float* v, float* r, bool accumulate,
               float* r_plain) {
  if (g.dim <= 0) return;
  broadcast_reduce<<<std::min(g.dim, 65535), kReduceThreads>>>(g.outer, g.dim, g.inner, u, v, r,
                                                               accumulate, r_plain);
  cuda_check_launch("broadcast_reduce");
}

}  // namespace broadcast

void BiasLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* b = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->gpu_data();
  broadcast::ApplyGpu(geometry_, bottom[0]->gpu_data(), nullptr, b, top[0]->mutable_gpu_data());
}

void BiasLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const float* dy = top[0]->gpu_diff();
  const bool learned = bottom.size() == 1;
  if (learned ? param_propagate_down(0) : propagate_down[1]) {
    Blob* bias = learned ? blobs_[0].get() : bottom[1];
    broadcast::ReduceGpu(geometry_, dy, nullptr, bias->mutable_gpu_diff(), learned);
  }
  // In place, dx already is dy.
  if (propagate_down[0] && top[0] != bottom[0])
    gpu_copy(bottom[0]->count(), dy, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
