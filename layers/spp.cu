// SPPLayer on the GPU (semantics in spp.hpp). The levels are Pooling layers, which run on
// the GPU in GPU mode through Layer::Forward/Backward; what the CPU code does on the host
// (interleaving the levels' outputs per image, splitting the top gradient back, summing
// the levels' bottom gradients) is done here with device copies and adds.
#include "layers/spp.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void SPPLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (pyramid_height_ == 1) {
    levels_[0]->Forward(bottom, top);
    return;
  }
  const int N = bottom[0]->shape(0);
  const size_t row = top[0]->count(1);
  float* y = top[0]->mutable_gpu_data();
  size_t offset = 0;
  for (int l = 0; l < pyramid_height_; ++l) {
    levels_[l]->Forward(bottom, {pooled_[l].get()});
    const size_t size = level_size_[l];
    // Image n's `size` values of this level go to y[n, offset, offset + size).
    gpu_copy_2d(N, size, pooled_[l]->gpu_data(), size, y + offset, row);
    offset += size;
  }
}

void SPPLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (pyramid_height_ == 1) {
    levels_[0]->Backward(top, propagate_down, bottom);
    return;
  }
  const int N = bottom[0]->shape(0);
  const size_t row = top[0]->count(1);
  const float* dy = top[0]->gpu_diff();
  const int count = bottom[0]->count();
  float* dx = bottom[0]->mutable_gpu_diff();
  gpu_set(count, 0.f, dx);
  const BlobVec proxy = {&proxy_};
  size_t offset = 0;
  for (int l = 0; l < pyramid_height_; ++l) {
    const size_t size = level_size_[l];
    gpu_copy_2d(N, size, dy + offset, row, pooled_[l]->mutable_gpu_diff(), size);
    offset += size;
    levels_[l]->Backward({pooled_[l].get()}, propagate_down, proxy);
    gpu_add(count, dx, proxy_.gpu_diff(), dx);
  }
}

}  // namespace crema
