// CropLayer on the GPU (semantics in crop.hpp), any number of axes. One thread per element
// of the small blob (the top) decomposes its flat index over the top's shape and finds its
// element of the big blob (bottom 0) from the big blob's strides and the offsets. Forward
// gathers x into y; backward zeroes dx and scatters dy into the window (window elements are
// distinct: no conflicts).
#include "layers/crop.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// Passed by value to the kernels (kernel parameters, no device allocation).
struct CropWindow {
  int axes = 0;
  int64_t base = 0;  // sum over axes of offset * big stride
  int64_t small_shape[kMaxBlobAxes] = {};
  int64_t big_stride[kMaxBlobAxes] = {};
};

// The big blob's index of the small blob's element e.
__device__ int64_t big_index(const CropWindow& w, int64_t e) {
  int64_t index = w.base;
  for (int a = w.axes - 1; a >= 0; --a) {
    index += (e % w.small_shape[a]) * w.big_stride[a];
    e /= w.small_shape[a];
  }
  return index;
}

__global__ void crop_forward(int64_t n, CropWindow w, const float* __restrict__ x,
                             float* __restrict__ y) {
  CUDA_KERNEL_LOOP(e, n) {
    y[e] = x[big_index(w, e)];
  }
}

__global__ void crop_backward(int64_t n, CropWindow w, const float* __restrict__ dy,
                              float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(e, n) {
    dx[big_index(w, e)] = dy[e];
  }
}

CropWindow MakeWindow(const Blob& big, const Blob& small, const std::vector<int>& offsets) {
  CropWindow w;
  w.axes = small.num_axes();
  int64_t stride = 1;
  for (int a = w.axes - 1; a >= 0; --a) {
    w.small_shape[a] = small.shape(a);
    w.big_stride[a] = stride;
    w.base += offsets[a] * stride;
    stride *= big.shape(a);
  }
  return w;
}

}  // namespace

void CropLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const CropWindow w = MakeWindow(*bottom[0], *top[0], offsets_);
  CUDA_LAUNCH(crop_forward, top[0]->count(), w, bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void CropLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_gpu_diff();
  gpu_set(bottom[0]->count(), 0.f, dx);
  const CropWindow w = MakeWindow(*bottom[0], *top[0], offsets_);
  CUDA_LAUNCH(crop_backward, top[0]->count(), w, top[0]->gpu_diff(), dx);
}

}  // namespace crema
