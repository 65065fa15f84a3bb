// FilterLayer on the GPU (semantics in filter.hpp). Reshape (shared with the CPU path) reads
// the selector on the host, which the top shapes need; Forward_gpu uploads the selected row
// numbers to gpu_selected_, then one thread per top element gathers its row. Backward zeroes
// dx and scatters dy's rows back (selected rows are distinct: no conflicts).
#include <algorithm>

#include "layers/filter.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// y[j, k] = x[sel[j], k], k < dim.
__global__ void filter_gather(int64_t n, int64_t dim, const float* __restrict__ sel,
                              const float* __restrict__ x, float* __restrict__ y) {
  CUDA_KERNEL_LOOP(e, n) {
    y[e] = x[static_cast<int64_t>(sel[e / dim]) * dim + e % dim];
  }
}

// dx[sel[j], k] = dy[j, k].
__global__ void filter_scatter(int64_t n, int64_t dim, const float* __restrict__ sel,
                               const float* __restrict__ dy, float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(e, n) {
    dx[static_cast<int64_t>(sel[e / dim]) * dim + e % dim] = dy[e];
  }
}

}  // namespace

void FilterLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int selected = static_cast<int>(selected_.size());
  gpu_selected_.Reshape({std::max(selected, 1)});
  float* host = gpu_selected_.mutable_cpu_data();
  for (int j = 0; j < selected; ++j) host[j] = static_cast<float>(selected_[j]);
  const float* sel = gpu_selected_.gpu_data();
  for (size_t t = 0; t < top.size(); ++t) {
    const int64_t dim = bottom[t]->count(1);
    CUDA_LAUNCH(filter_gather, selected * dim, dim, sel, bottom[t]->gpu_data(),
                top[t]->mutable_gpu_data());
  }
}

void FilterLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (propagate_down.back()) LAYER_THROW("cannot backpropagate to the selector (last bottom)");
  const int64_t selected = static_cast<int64_t>(selected_.size());
  const float* sel = gpu_selected_.gpu_data();  // uploaded by Forward_gpu
  for (size_t t = 0; t < top.size(); ++t) {
    if (!propagate_down[t]) continue;
    const int64_t dim = bottom[t]->count(1);
    float* dx = bottom[t]->mutable_gpu_diff();
    gpu_set(bottom[t]->count(), 0.f, dx);
    CUDA_LAUNCH(filter_scatter, selected * dim, dim, sel, top[t]->gpu_diff(), dx);
  }
}

}  // namespace crema
