// SliceLayer on the GPU (semantics in slice.hpp): each top is one strided 2-D copy (outer
// rows of its block) out of / into the bottom, all in one gpu_copy_2d_batch (a net that
// cuts a sequence into its 150 time steps launches a few kernels, not 150 copies).
#include "layers/slice.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void SliceLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (top.size() == 1) return;  // a view since Reshape
  const float* x = bottom[0]->gpu_data();
  const size_t row = static_cast<size_t>(bottom[0]->shape(axis_)) * inner_;
  std::vector<GpuCopy2d> copies;
  size_t offset = 0;
  for (Blob* t : top) {
    const size_t block = static_cast<size_t>(t->shape(axis_)) * inner_;
    copies.push_back({x + offset * inner_, row, t->mutable_gpu_data(), block, block});
    offset += t->shape(axis_);
  }
  gpu_copy_2d_batch(outer_, copies);
}

void SliceLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0] || top.size() == 1) return;  // one top: a view since Reshape
  float* dx = bottom[0]->mutable_gpu_diff();
  const size_t row = static_cast<size_t>(bottom[0]->shape(axis_)) * inner_;
  std::vector<GpuCopy2d> copies;
  size_t offset = 0;
  for (Blob* t : top) {
    const size_t block = static_cast<size_t>(t->shape(axis_)) * inner_;
    copies.push_back({t->gpu_diff(), block, dx + offset * inner_, row, block});
    offset += t->shape(axis_);
  }
  gpu_copy_2d_batch(outer_, copies);
}

}  // namespace crema
