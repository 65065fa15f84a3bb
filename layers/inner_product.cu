// InnerProductLayer on the GPU (formulas and precisions in inner_product.hpp): the same
// products as the CPU path, through cuBLAS.
#include "layers/inner_product.hpp"
#include "src/cuda_kernel.cuh"
#include "src/mixed_precision.cuh"

namespace crema {

namespace {
// Row-major shapes of the weight product: y = x op(W), op = transpose unless transpose_.
Trans weight_op(bool transpose) {
  return transpose ? Trans::No : Trans::Yes;
}
}  // namespace

void InnerProductLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const Precision math = precision();
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  const float* w = blobs_[0]->gpu_data();
  if (IsHalfPrecision(math)) {
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    void* x16 = gpu_buffer_16(&x16_, int64_t{M_} * K_);
    void* w16 = gpu_buffer_16(&w16_, blobs_[0]->count());
    gpu_round_16(math, int64_t{M_} * K_, x, 1.f, x16, overflow);
    gpu_round_16(math, blobs_[0]->count(), w, 1.f, w16, overflow);
    gpu_gemm_16(math, Trans::No, weight_op(transpose_), M_, N_, K_, 1.f, x16, w16, 0.f, y);
  } else {
    gpu_gemm_math(math, Trans::No, weight_op(transpose_), M_, N_, K_, 1.f, x, w, 0.f, y);
  }
  // y += 1 b^T (a rank-1 update with the ones vector), in fp32.
  if (bias_term_)
    gpu_gemm(Trans::No, Trans::No, M_, N_, 1, 1.f, bias_multiplier_.gpu_data(),
             blobs_[1]->gpu_data(), 1.f, y);
}

void InnerProductLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const Precision math = precision();
  const float* dy = top[0]->gpu_diff();
  if (bias_term_ && param_propagate_down(1))
    gpu_gemv(Trans::Yes, M_, N_, 1.f, dy, bias_multiplier_.gpu_data(), 1.f,
             blobs_[1]->mutable_gpu_diff());
  const bool weight_grad = param_propagate_down(0);
  if (IsHalfPrecision(math)) {
    // dy16 = round16(S dy); products of 16-bit inputs accumulate in fp32, times 1/S.
    // x16 and w16 still hold this iteration's rounded x and W from Forward_gpu.
    const float scale = mixed_precision()->gradient_scale();
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    void* dy16 = gpu_buffer_16(&dy16_, int64_t{M_} * N_);
    gpu_round_16(math, int64_t{M_} * N_, dy, scale, dy16, overflow);
    const void* x16 = x16_.gpu_data();
    const void* w16 = w16_.gpu_data();
    if (weight_grad) {
      float* dw = blobs_[0]->mutable_gpu_diff();
      if (transpose_)
        gpu_gemm_16(math, Trans::Yes, Trans::No, K_, N_, M_, 1.f / scale, x16, dy16, 1.f, dw);
      else
        gpu_gemm_16(math, Trans::Yes, Trans::No, N_, K_, M_, 1.f / scale, dy16, x16, 1.f, dw);
    }
    if (propagate_down[0])
      gpu_gemm_16(math, Trans::No, transpose_ ? Trans::Yes : Trans::No, M_, K_, N_, 1.f / scale,
                  dy16, w16, 0.f, bottom[0]->mutable_gpu_diff());
    return;
  }
  if (weight_grad) {
    const float* x = bottom[0]->gpu_data();
    float* dw = blobs_[0]->mutable_gpu_diff();
    if (transpose_)
      gpu_gemm_math(math, Trans::Yes, Trans::No, K_, N_, M_, 1.f, x, dy, 1.f, dw);
    else
      gpu_gemm_math(math, Trans::Yes, Trans::No, N_, K_, M_, 1.f, dy, x, 1.f, dw);
  }
  if (propagate_down[0]) {
    const float* w = blobs_[0]->gpu_data();
    float* dx = bottom[0]->mutable_gpu_diff();
    gpu_gemm_math(math, Trans::No, transpose_ ? Trans::Yes : Trans::No, M_, K_, N_, 1.f, dy, w, 0.f,
                  dx);
  }
}

}  // namespace crema
