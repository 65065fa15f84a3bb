// BatchReindexLayer on the GPU (semantics in batch_reindex.hpp). The indices are checked on
// the host first, as on the CPU (the error names the bad index; the index blob is small).
// Forward: one thread per top element gathers x[i[m]]. Backward: one thread per element of
// dx sums dy[m] over the m with i[m] == n, in order of m: the CPU's sum, deterministic and
// without atomics, at O(M) per element (M, the number of indices, is a batch size).
#include "layers/batch_reindex.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void batch_reindex_forward(int64_t n, int64_t inner, const float* __restrict__ x,
                                      const float* __restrict__ idx, float* __restrict__ y) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t m = e / inner;
    y[e] = x[static_cast<int64_t>(idx[m]) * inner + e % inner];
  }
}

__global__ void batch_reindex_backward(int64_t n, int64_t inner, int num_idx,
                                       const float* __restrict__ idx, const float* __restrict__ dy,
                                       float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t row = e / inner, j = e % inner;
    float sum = 0.f;
    for (int m = 0; m < num_idx; ++m)
      if (static_cast<int64_t>(idx[m]) == row) sum += dy[m * inner + j];
    dx[e] = sum;
  }
}

}  // namespace

void BatchReindexLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CheckIndices(bottom);
  CUDA_LAUNCH(batch_reindex_forward, top[0]->count(), static_cast<int64_t>(inner_),
              bottom[0]->gpu_data(), bottom[1]->gpu_data(), top[0]->mutable_gpu_data());
}

void BatchReindexLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (propagate_down.size() > 1 && propagate_down[1])
    LAYER_THROW("cannot backpropagate to the indices (bottom 1)");
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(batch_reindex_backward, bottom[0]->count(), static_cast<int64_t>(inner_),
              bottom[1]->count(), bottom[1]->gpu_data(), top[0]->gpu_diff(),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
