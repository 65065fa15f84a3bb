// Device side of mixed precision (see include/crema/mixed_precision.hpp for the scheme).
// Included by .cu files only. Every pointer is a device pointer; 16-bit arrays are passed
// as void* and hold IEEE half (FP16) or bfloat16 (BF16) values.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstdint>

#include "crema/blob.hpp"
#include "crema/math_functions.hpp"
#include "crema/mixed_precision.hpp"

namespace crema {

// C[M x N] = alpha op(A) op(B) + beta C on fp32 arrays. FP32: plain SGEMM (FMA, no tensor
// cores); TF32: tensor-core TF32 multiplies with fp32 accumulation. FP16/BF16 callers use
// gpu_gemm_16 on rounded copies instead (this throws for them).
void gpu_gemm_math(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                   float alpha, const float* A, const float* B, float beta, float* C);

// The same with A and B in 16 bits (precision FP16 or BF16) and C in fp32, accumulated in
// fp32 on the tensor cores.
void gpu_gemm_16(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                 float alpha, const void* A, const void* B, float beta, float* C);

// y16[i] = round16(scale * x[i]). Sets *overflow = 1 when a result is not finite (fp16
// saturates to inf above 65504). overflow may be null.
void gpu_round_16(Precision precision, int64_t n, const float* x, float scale, void* y16,
                  float* overflow);

// y[i] = scale * widen(x16[i]) (accumulate: y[i] += ...). Sets *overflow = 1 when an
// input is not finite. overflow may be null.
void gpu_widen_16(Precision precision, int64_t n, const void* x16, float scale, bool accumulate,
                  float* y, float* overflow);

// Device storage for n 16-bit values in `holder` (a scratch Blob, resized as needed).
inline void* gpu_buffer_16(Blob* holder, int64_t n) {
  const int floats = static_cast<int>((n + 1) / 2);
  if (holder->count() < floats) holder->Reshape(std::vector<int>{floats});
  return holder->mutable_gpu_data();
}

}  // namespace crema

#endif  // CREMA_WITH_CUDA
