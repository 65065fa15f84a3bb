// TileLayer on the GPU (formulas in tile.hpp): x seen as [outer, inner], y as
// [outer, tiles, inner]. Forward: one thread per top element copies x[o, j]. Backward: one
// thread per bottom element sums dy[o, t, j] over t in order (the CPU's order).
#include "layers/tile.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void tile_forward(int64_t n, int64_t inner, int tiles, const float* __restrict__ x,
                             float* __restrict__ y) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t row = e / inner;  // o * tiles + t
    y[e] = x[(row / tiles) * inner + e % inner];
  }
}

__global__ void tile_backward(int64_t n, int64_t inner, int tiles, const float* __restrict__ dy,
                              float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t o = e / inner;
    const float* src = dy + o * tiles * inner + e % inner;
    float sum = src[0];
    for (int t = 1; t < tiles; ++t) sum += src[t * inner];
    dx[e] = sum;
  }
}

}  // namespace

void TileLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(tile_forward, top[0]->count(), static_cast<int64_t>(inner_), tiles_,
              bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void TileLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(tile_backward, bottom[0]->count(), static_cast<int64_t>(inner_), tiles_,
              top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
