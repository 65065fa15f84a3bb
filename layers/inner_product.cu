// InnerProductLayer on the GPU (formulas in inner_product.hpp): the same products as the
// CPU path, through cuBLAS.
#include "layers/inner_product.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void InnerProductLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  const float* w = blobs_[0]->gpu_data();
  gpu_gemm(Trans::No, transpose_ ? Trans::No : Trans::Yes, M_, N_, K_, 1.f, x, w, 0.f, y);
  // y += 1 b^T (a rank-1 update with the ones vector).
  if (bias_term_)
    gpu_gemm(Trans::No, Trans::No, M_, N_, 1, 1.f, bias_multiplier_.gpu_data(),
             blobs_[1]->gpu_data(), 1.f, y);
}

void InnerProductLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const float* dy = top[0]->gpu_diff();
  if (param_propagate_down(0)) {
    const float* x = bottom[0]->gpu_data();
    float* dw = blobs_[0]->mutable_gpu_diff();
    if (transpose_)
      gpu_gemm(Trans::Yes, Trans::No, K_, N_, M_, 1.f, x, dy, 1.f, dw);
    else
      gpu_gemm(Trans::Yes, Trans::No, N_, K_, M_, 1.f, dy, x, 1.f, dw);
  }
  if (bias_term_ && param_propagate_down(1))
    gpu_gemv(Trans::Yes, M_, N_, 1.f, dy, bias_multiplier_.gpu_data(), 1.f,
             blobs_[1]->mutable_gpu_diff());
  if (propagate_down[0]) {
    const float* w = blobs_[0]->gpu_data();
    float* dx = bottom[0]->mutable_gpu_diff();
    gpu_gemm(Trans::No, transpose_ ? Trans::Yes : Trans::No, M_, K_, N_, 1.f, dy, w, 0.f, dx);
  }
}

}  // namespace crema
