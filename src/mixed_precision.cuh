// Device side of mixed precision (see include/crema/mixed_precision.hpp for the scheme).
// Included by .cu files (and GPU tests); host-callable, no device code. Every pointer is a
// device pointer; 16-bit arrays are passed as void* and hold IEEE half (FP16) or bfloat16
// (BF16) values.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstdint>

#include "crema/blob.hpp"
#include "crema/math_functions.hpp"
#include "crema/mixed_precision.hpp"
#include "src/channel_epilogue.hpp"

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

// A batch of row-major GEMMs, C_b = alpha op(A_b) op(B_b) + beta C_b for b < batch, with
// X_b = X + b * stride_x (in elements; stride 0 gives every item the same matrix). C is fp32;
// A and B are fp32 for FP32 (FMA) and TF32 (tensor cores), 16-bit for FP16/BF16 (tensor
// cores, fp32 accumulation). One cuBLAS call (cublasGemmStridedBatchedEx).
void gpu_gemm_batched(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                      float alpha, const void* A, int64_t stride_a, const void* B, int64_t stride_b,
                      float beta, float* C, int64_t stride_c, int batch);
// y16[i] = round16(scale * x[i]). Sets *overflow = 1 when a result is not finite (fp16
// saturates to inf above 65504). overflow may be null.
void gpu_round_16(Precision precision, int64_t n, const float* x, float scale, void* y16,
                  float* overflow);

// y[i] = scale * widen(x16[i]) (accumulate: y[i] += ...). Sets *overflow = 1 when an
// input is not finite. overflow may be null.
void gpu_widen_16(Precision precision, int64_t n, const void* x16, float scale, bool accumulate,
                  float* y, float* overflow);

// Layout-changing conversions for the 16-bit convolutions, which cuDNN runs fastest in
// channels-last order. An array of `num` items, each a [channels][spatial] matrix in the
// fp32 NCHW layout (Caffe's: x[(n*C + c)*S + s]), has the 16-bit NHWC layout
// x16[(n*S + s)*C + c]. The same formulas serve the filters: W [O][C/g][k...] is num = O,
// channels = C/g, spatial = the kernel volume, and NHWC is cuDNN's NHWC filter format
// [O][k...][C/g]. Both transpose through shared-memory tiles, so reads and writes are
// coalesced (when C and S are both >= 32; otherwise one thread per destination element);
// pairs of channels move as one 4-byte access when C is even and the 16-bit array 4-byte
// aligned. overflow as in gpu_round_16 / gpu_widen_16 (may be null).

// y16[(n*S + s)*C + c] = round16(scale * x[(n*C + c)*S + s]).
void gpu_round_16_nhwc(Precision precision, int64_t num, int channels, int64_t spatial,
                       const float* x, float scale, void* y16, float* overflow);

// r = scale * widen(x16[(n*S + s)*C + c]), then
// y[(n*C + c)*S + s] = (accumulate ? y[...] + r : r) + (bias ? bias[c] : 0)
// (bias: an optional fp32 per-channel vector of `channels` values).
void gpu_widen_16_nchw(Precision precision, int64_t num, int channels, int64_t spatial,
                       const void* x16, float scale, bool accumulate, const float* bias, float* y,
                       float* overflow);

// y[(n*C + c)*S + s] = the epilogue (src/channel_epilogue.hpp) of the raw convolution value
// widen(x16[(n*S + s)*C + c]) at channel c: a convolution's bias, BatchNorm, Scale, ReLU
// and residual sum done by the pass that widens its output; also the epilogue's 16-bit copy
// (NCHW or NHWC; same 16-bit type as x16) when it has one.
void gpu_widen_16_nchw_epilogue(Precision precision, int64_t num, int channels, int64_t spatial,
                                const void* x16, const ChannelEpilogue& epilogue, float* y,
                                float* overflow);

// gpu_channel_epilogue (src/channel_epilogue.hpp) in place on fp32 NCHW y, for an epilogue
// whose 16-bit copy (precision's type) is NHWC: the copy is written through shared-memory
// tiles, coalesced, as gpu_round_16_nhwc writes.
void gpu_channel_epilogue_nhwc_copy(Precision precision, int64_t num, int channels, int64_t spatial,
                                    const ChannelEpilogue& epilogue, float* y);

// Device storage for n 16-bit values in `holder` (a scratch Blob, resized as needed).
inline void* gpu_buffer_16(Blob* holder, int64_t n) {
  const int floats = static_cast<int>((n + 1) / 2);
  if (holder->count() < floats) holder->Reshape(std::vector<int>{floats});
  return holder->mutable_gpu_data();
}

}  // namespace crema

#endif  // CREMA_WITH_CUDA
