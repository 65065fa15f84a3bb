// ConcatLayer on the GPU (semantics in concat.hpp): each bottom is one strided 2-D copy
// (outer rows of its block) into / out of the top.
#include "layers/concat.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void ConcatLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (bottom.size() == 1) return;  // a view since Reshape
  float* y = top[0]->mutable_gpu_data();
  const int64_t top_row = int64_t{top[0]->shape(axis_)} * inner_;
  int64_t offset = 0;
  for (Blob* b : bottom) {
    const int64_t block = int64_t{b->shape(axis_)} * inner_;
    gpu_copy_2d(outer_, block, b->gpu_data(), block, y + offset * inner_, top_row);
    offset += b->shape(axis_);
  }
}

void ConcatLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (bottom.size() == 1) return;  // a view since Reshape
  const float* dy = top[0]->gpu_diff();
  const int64_t top_row = int64_t{top[0]->shape(axis_)} * inner_;
  int64_t offset = 0;
  for (size_t k = 0; k < bottom.size(); ++k) {
    Blob* b = bottom[k];
    const int64_t block = int64_t{b->shape(axis_)} * inner_;
    if (propagate_down[k])
      gpu_copy_2d(outer_, block, dy + offset * inner_, top_row, b->mutable_gpu_diff(), block);
    offset += b->shape(axis_);
  }
}

}  // namespace crema
