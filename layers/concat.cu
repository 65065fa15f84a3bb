// ConcatLayer on the GPU (semantics in concat.hpp): each bottom is one strided 2-D copy
// (outer rows of its block) into / out of the top, all in one gpu_copy_2d_batch (a few
// kernel launches for a concatenation of many small pieces).
#include "layers/concat.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void ConcatLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (bottom.size() == 1) return;  // a view since Reshape
  float* y = top[0]->mutable_gpu_data();
  const size_t top_row = static_cast<size_t>(top[0]->shape(axis_)) * inner_;
  std::vector<GpuCopy2d> copies;
  size_t offset = 0;
  for (Blob* b : bottom) {
    const size_t block = static_cast<size_t>(b->shape(axis_)) * inner_;
    copies.push_back({b->gpu_data(), block, y + offset * inner_, top_row, block});
    offset += b->shape(axis_);
  }
  gpu_copy_2d_batch(outer_, copies);
}

void ConcatLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (bottom.size() == 1) return;  // a view since Reshape
  const float* dy = top[0]->gpu_diff();
  const size_t top_row = static_cast<size_t>(top[0]->shape(axis_)) * inner_;
  std::vector<GpuCopy2d> copies;
  size_t offset = 0;
  for (size_t k = 0; k < bottom.size(); ++k) {
    Blob* b = bottom[k];
    const size_t block = static_cast<size_t>(b->shape(axis_)) * inner_;
    if (propagate_down[k])
      copies.push_back({dy + offset * inner_, top_row, b->mutable_gpu_diff(), block, block});
    offset += b->shape(axis_);
  }
  gpu_copy_2d_batch(outer_, copies);
}

}  // namespace crema
