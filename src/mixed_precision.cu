// Mixed-precision GPU math (src/mixed_precision.cuh): TF32 and 16-bit GEMMs through
// cublasGemmEx, and the fp32 <-> 16-bit conversions that apply the loss scale and watch
// for overflow.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"
#include "src/mixed_precision.cuh"

namespace crema {
namespace {

cublasHandle_t handle() {
  return static_cast<cublasHandle_t>(CudaCublasHandle());
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    CREMA_THROW("cuBLAS error " << static_cast<int>(status) << " in " << what);
}

cublasOperation_t op(Trans t) {
  return t == Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
}

cudaDataType_t data_type_16(Precision precision) {
  CHECK(IsHalfPrecision(precision)) << "not a 16-bit precision: " << PrecisionName(precision);
  return precision == Precision::FP16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T (as in gpu_gemm).
void gemm_ex(cublasComputeType_t compute, cudaDataType_t ab_type, Trans trans_a, Trans trans_b,
             int M, int N, int K, float alpha, const void* A, const void* B, float beta, float* C,
             const char* what) {
  if (M <= 0 || N <= 0) return;
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  check_cublas(cublasGemmEx(handle(), op(trans_b), op(trans_a), N, M, K, &alpha, B, ab_type, ldb, A,
                            ab_type, lda, &beta, C, CUDA_R_32F, N, compute, CUBLAS_GEMM_DEFAULT),
               what);
}

template <typename T>
__device__ T round_to(float v);
template <>
__device__ __half round_to<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __nv_bfloat16 round_to<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
__device__ float widen(__half v) {
  return __half2float(v);
}
__device__ float widen(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__global__ void round_kernel(int64_t n, const float* x, float scale, T* y, float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {
    const T r = round_to<T>(scale * x[i]);
    bad |= !isfinite(widen(r));
    y[i] = r;
  }
  if (bad && overflow) *overflow = 1.f;  // every writer stores the same value
}

template <typename T>
__global__ void widen_kernel(int64_t n, const T* x, float scale, bool accumulate, float* y,
                             float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {
    const float v = widen(x[i]);
    bad |= !isfinite(v);
    y[i] = accumulate ? y[i] + scale * v : scale * v;
  }
  if (bad && overflow) *overflow = 1.f;
}

}  // namespace

void gpu_gemm_math(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                   float alpha, const float* A, const float* B, float beta, float* C) {
  switch (precision) {
    case Precision::FP32:
      gpu_gemm(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
      return;
    case Precision::TF32:
      gemm_ex(CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, trans_a, trans_b, M, N, K, alpha, A, B,
              beta, C, "cublasGemmEx (TF32)");
      return;
    default:
      LOG(FATAL) << "gpu_gemm_math called with " << PrecisionName(precision);
  }
}

void gpu_gemm_16(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                 float alpha, const void* A, const void* B, float beta, float* C) {
  gemm_ex(CUBLAS_COMPUTE_32F, data_type_16(precision), trans_a, trans_b, M, N, K, alpha, A, B, beta,
          C, "cublasGemmEx (16-bit inputs)");
}

void gpu_round_16(Precision precision, int64_t n, const float* x, float scale, void* y16,
                  float* overflow) {
  if (data_type_16(precision) == CUDA_R_16F)
    CUDA_LAUNCH(round_kernel<__half>, n, x, scale, static_cast<__half*>(y16), overflow);
  else
    CUDA_LAUNCH(round_kernel<__nv_bfloat16>, n, x, scale, static_cast<__nv_bfloat16*>(y16),
                overflow);
}

void gpu_widen_16(Precision precision, int64_t n, const void* x16, float scale, bool accumulate,
                  float* y, float* overflow) {
  if (data_type_16(precision) == CUDA_R_16F)
    CUDA_LAUNCH(widen_kernel<__half>, n, static_cast<const __half*>(x16), scale, accumulate, y,
                overflow);
  else
    CUDA_LAUNCH(widen_kernel<__nv_bfloat16>, n, static_cast<const __nv_bfloat16*>(x16), scale,
                accumulate, y, overflow);
}

}  // namespace crema
