// SliceLayer on the GPU (semantics in slice.hpp): each top is one strided 2-D copy (outer
// rows of its block) out of / into the bottom.
#include "layers/slice.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void SliceLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (top.size() == 1) return;  // a view since Reshape
  const float* x = bottom[0]->gpu_data();
  const int64_t row = int64_t{bottom[0]->shape(axis_)} * inner_;
  int64_t offset = 0;
  for (Blob* t : top) {
    const int64_t block = int64_t{t->shape(axis_)} * inner_;
    gpu_copy_2d(outer_, block, x + offset * inner_, row, t->mutable_gpu_data(), block);
    offset += t->shape(axis_);
  }
}

void SliceLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0] || top.size() == 1) return;  // one top: a view since Reshape
  float* dx = bottom[0]->mutable_gpu_diff();
  const int64_t row = int64_t{bottom[0]->shape(axis_)} * inner_;
  int64_t offset = 0;
  for (Blob* t : top) {
    const int64_t block = int64_t{t->shape(axis_)} * inner_;
    gpu_copy_2d(outer_, block, t->gpu_diff(), block, dx + offset * inner_, row);
    offset += t->shape(axis_);
  }
}

}  // namespace crema
