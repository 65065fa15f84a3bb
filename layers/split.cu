// SplitLayer on the GPU: the tops share the bottom's data (no copy); backward sums the top
// gradients in top order, as on the CPU.
#include "layers/split.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void SplitLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  for (Blob* t : top) t->ShareData(*bottom[0]);
}

void SplitLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int count = bottom[0]->count();
  float* dx = bottom[0]->mutable_gpu_diff();
  if (top.size() == 1) {
    gpu_copy(count, top[0]->gpu_diff(), dx);
    return;
  }
  gpu_add(count, top[0]->gpu_diff(), top[1]->gpu_diff(), dx);
  for (size_t i = 2; i < top.size(); ++i) gpu_add(count, dx, top[i]->gpu_diff(), dx);
}

}  // namespace crema
