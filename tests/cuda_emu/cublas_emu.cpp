// crema's CUDA emulator: the cuBLAS routines crema calls, computed on the host.
//
// cuBLAS is column-major: an m x n matrix A with leading dimension lda holds A(i, j) at
// A[i + j * lda]. op(X) is X or X^T by the operation flag. Scalars (alpha, beta, results)
// are host pointers (CUBLAS_POINTER_MODE_HOST, the default). The GEMMs are OpenBLAS's fp32
// GEMM (the emulator's hot spot); GemmEx first widens 16-bit inputs to fp32, or rounds fp32
// inputs to TF32's 10-bit mantissa for that compute type, as the tensor cores do. The level-1
// and -2 routines accumulate in double: a reference, not a model of cuBLAS's rounding.
// A call runs at once, or, when the handle's stream is being captured (emu_memory.hpp), is
// recorded with copies of its scalars; the routines that return a result to host memory
// cannot be captured.
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"
#include "tests/cuda_emu/emu_numeric.hpp"

namespace {

struct Handle {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

Handle* AsHandle(cublasHandle_t h) {
  return reinterpret_cast<Handle*>(h);
}

// Bytes spanned by n elements of `size` bytes at stride inc.
size_t VectorBytes(int n, int inc, size_t size) {
  return n <= 0 ? 0 : (static_cast<size_t>(n - 1) * std::abs(inc) + 1) * size;
}

// Bytes spanned by a column-major rows x cols matrix with leading dimension ld.
size_t MatrixBytes(int rows, int cols, int ld, size_t size) {
  return rows <= 0 || cols <= 0 ? 0 : (static_cast<size_t>(cols - 1) * ld + rows) * size;
}

// Reads element i of a matrix stored in `type`.
float Load(const void* p, size_t i, cudaDataType_t type) {
  switch (type) {
    case CUDA_R_16F:
      return __half2float(static_cast<const __half*>(p)[i]);
    case CUDA_R_16BF:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

size_t TypeSize(cudaDataType_t type) {
  return type == CUDA_R_16F || type == CUDA_R_16BF ? 2 : 4;
}

bool ValidOp(cublasOperation_t t) {
  return t == CUBLAS_OP_N || t == CUBLAS_OP_T;
}

// Checks the shapes and extents of a GEMM; A is op(A) m x k, B is op(B) k x n.
bool GemmArgumentsValid(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                        int ldb, int ldc) {
  if (!ValidOp(ta) || !ValidOp(tb) || m < 0 || n < 0 || k < 0) return false;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  return lda >= std::max(1, a_rows) && ldb >= std::max(1, b_rows) && ldc >= std::max(1, m);
}

void RequireGemmOperands(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const void* A, int lda, size_t a_size, const void* B, int ldb,
                         size_t b_size, const void* C, int ldc, const char* what) {
  if (m == 0 || n == 0) return;
  if (k > 0) {
    crema_emu::RequireDevice(
        A, MatrixBytes(ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, a_size), what);
    crema_emu::RequireDevice(
        B, MatrixBytes(tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, b_size), what);
  }
  crema_emu::RequireDevice(C, MatrixBytes(m, n, ldc, 4), what);
}

// Runs a checked call's work `op` now, or records it when the handle's stream is captured.
cublasStatus_t Execute(cublasHandle_t handle, const char* what, const std::function<void()>& op) {
  switch (crema_emu::RecordIfCapturing(AsHandle(handle)->stream, op, what)) {
    case crema_emu::CaptureOutcome::kNotCapturing:
      op();
      return CUBLAS_STATUS_SUCCESS;
    case crema_emu::CaptureOutcome::kRecorded:
      return CUBLAS_STATUS_SUCCESS;
    default:  // the launch failed (capture invalidated, or the legacy stream refused it)
      return CUBLAS_STATUS_EXECUTION_FAILED;
  }
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  *handle = reinterpret_cast<cublasHandle_t>(new Handle);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete AsHandle(handle);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  AsHandle(handle)->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  *stream = AsHandle(handle)->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  AsHandle(handle)->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  *mode = AsHandle(handle)->math;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED;
  AsHandle(handle)->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                              int m, int n, int k, const float* alpha, const float* A, int lda,
                              const float* B, int ldb, const float* beta, float* C, int ldc) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!GemmArgumentsValid(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
  RequireGemmOperands(ta, tb, m, n, k, A, lda, 4, B, ldb, 4, C, ldc, "cublasSgemm");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *alpha, b = *beta;
  return Execute(handle, "cublasSgemm", [=] {
    crema_emu::DeviceScope scope("cublasSgemm");
    // OpenBLAS does not read C when beta is 0, as cuBLAS promises.
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, A, lda, B, ldb, b, C,
                ldc);
  });
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                            int m, int n, int k, const void* alpha, const void* A,
                            cudaDataType_t a_type, int lda, const void* B, cudaDataType_t b_type,
                            int ldb, const void* beta, void* C, cudaDataType_t c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!GemmArgumentsValid(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
  const bool known_type = [](cudaDataType_t t) {
    return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF;
  }(a_type);
  if (!known_type || a_type != b_type || c_type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool compute_32f =
      compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
      compute == CUBLAS_COMPUTE_32F_FAST_16F || compute == CUBLAS_COMPUTE_32F_FAST_16BF;
  if (!compute_32f) return CUBLAS_STATUS_NOT_SUPPORTED;  // alpha/beta are floats only then
  // TF32 compute takes fp32 inputs; 16-bit inputs need a 32F compute type.
  if (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && a_type != CUDA_R_32F)
    return CUBLAS_STATUS_INVALID_VALUE;
  RequireGemmOperands(ta, tb, m, n, k, A, lda, TypeSize(a_type), B, ldb, TypeSize(b_type), C, ldc,
                      "cublasGemmEx");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const float alpha_value = *static_cast<const float*>(alpha),
              beta_value = *static_cast<const float*>(beta);
  return Execute(handle, "cublasGemmEx", [=] {
    crema_emu::DeviceScope scope("cublasGemmEx");
    // The inputs widened to fp32 (and rounded to TF32 for that compute type), then an fp32
    // GEMM: the products and sums of tensor-core math are fp32 too.
    const bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    auto widen = [tf32](const void* p, cudaDataType_t type, size_t count) {
      std::vector<float> out(count);
      for (size_t i = 0; i < count; ++i) {
        const float v = Load(p, i, type);
        out[i] = tf32 ? crema_emu::RoundToTf32(v) : v;
      }
      return out;
    };
    const std::vector<float> a =
        widen(A, a_type, MatrixBytes(ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, 1));
    const std::vector<float> b =
        widen(B, b_type, MatrixBytes(tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, 1));
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha_value, a.data(), lda,
                b.data(), ldb, beta_value, static_cast<float*>(C), ldc);
  });
}

// batchCount GEMMs on matrices `stride` elements apart (stride 0: one shared matrix), each
// checked and computed as cublasGemmEx does it.
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void* alpha, const void* A, cudaDataType_t a_type,
                                          int lda, long long stride_a, const void* B,
                                          cudaDataType_t b_type, int ldb, long long stride_b,
                                          const void* beta, void* C, cudaDataType_t c_type, int ldc,
                                          long long stride_c, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  if (batch < 0 || stride_a < 0 || stride_b < 0 || stride_c < 0) return CUBLAS_STATUS_INVALID_VALUE;
  auto at = [](const void* p, cudaDataType_t type, long long offset) {
    return static_cast<const char*>(p) + offset * static_cast<long long>(TypeSize(type));
  };
  for (int i = 0; i < batch; ++i) {
    const cublasStatus_t status =
        cublasGemmEx(handle, ta, tb, m, n, k, alpha, at(A, a_type, i * stride_a), a_type, lda,
                     at(B, b_type, i * stride_b), b_type, ldb, beta,
                     const_cast<char*>(at(C, c_type, i * stride_c)), c_type, ldc, compute, algo);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// y = alpha op(A) x + beta y, A m x n column-major.
cublasStatus_t cublasSgemv_v2(cublasHandle_t handle, cublasOperation_t t, int m, int n,
                              const float* alpha, const float* A, int lda, const float* x, int incx,
                              const float* beta, float* y, int incy) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!ValidOp(t) || m < 0 || n < 0 || lda < std::max(1, m) || incx == 0 || incy == 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const int x_len = t == CUBLAS_OP_N ? n : m, y_len = t == CUBLAS_OP_N ? m : n;
  crema_emu::RequireDevice(A, MatrixBytes(m, n, lda, 4), "cublasSgemv A");
  crema_emu::RequireDevice(x, VectorBytes(x_len, incx, 4), "cublasSgemv x");
  crema_emu::RequireDevice(y, VectorBytes(y_len, incy, 4), "cublasSgemv y");
  if (incx < 0 || incy < 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  const float alpha_value = *alpha, beta_value = *beta;
  return Execute(handle, "cublasSgemv", [=] {
    crema_emu::DeviceScope scope("cublasSgemv");
    std::vector<double> result(y_len, 0.0);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        const double a = A[i + static_cast<size_t>(j) * lda];
        if (t == CUBLAS_OP_N)
          result[i] += a * x[static_cast<size_t>(j) * incx];
        else
          result[j] += a * x[static_cast<size_t>(i) * incx];
      }
    for (int i = 0; i < y_len; ++i) {
      float& out = y[static_cast<size_t>(i) * incy];
      out = static_cast<float>(alpha_value * result[i] +
                               (beta_value == 0.f ? 0.0 : double{beta_value} * out));
    }
  });
}

cublasStatus_t cublasSaxpy_v2(cublasHandle_t handle, int n, const float* alpha, const float* x,
                              int incx, float* y, int incy) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (n <= 0) return CUBLAS_STATUS_SUCCESS;
  if (incx <= 0 || incy <= 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  crema_emu::RequireDevice(x, VectorBytes(n, incx, 4), "cublasSaxpy x");
  crema_emu::RequireDevice(y, VectorBytes(n, incy, 4), "cublasSaxpy y");
  const float a = *alpha;
  return Execute(handle, "cublasSaxpy", [=] {
    crema_emu::DeviceScope scope("cublasSaxpy");
    for (int i = 0; i < n; ++i)
      y[static_cast<size_t>(i) * incy] += a * x[static_cast<size_t>(i) * incx];
  });
}

cublasStatus_t cublasSscal_v2(cublasHandle_t handle, int n, const float* alpha, float* x,
                              int incx) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (n <= 0 || incx <= 0) return CUBLAS_STATUS_SUCCESS;  // cuBLAS does nothing then
  crema_emu::RequireDevice(x, VectorBytes(n, incx, 4), "cublasSscal x");
  const float a = *alpha;
  return Execute(handle, "cublasSscal", [=] {
    crema_emu::DeviceScope scope("cublasSscal");
    for (int i = 0; i < n; ++i) x[static_cast<size_t>(i) * incx] *= a;
  });
}

cublasStatus_t cublasSasum_v2(cublasHandle_t handle, int n, const float* x, int incx,
                              float* result) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  // The host result needs a synchronisation, which a capture cannot hold.
  if (crema_emu::RefuseIfCapturing(AsHandle(handle)->stream, "cublasSasum (host pointer mode)"))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  *result = 0.f;
  if (n <= 0 || incx <= 0) return CUBLAS_STATUS_SUCCESS;
  crema_emu::RequireDevice(x, VectorBytes(n, incx, 4), "cublasSasum x");
  crema_emu::DeviceScope scope("cublasSasum");
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::fabs(x[static_cast<size_t>(i) * incx]);
  *result = static_cast<float>(sum);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSdot_v2(cublasHandle_t handle, int n, const float* x, int incx, const float* y,
                             int incy, float* result) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (crema_emu::RefuseIfCapturing(AsHandle(handle)->stream, "cublasSdot (host pointer mode)"))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  *result = 0.f;
  if (n <= 0) return CUBLAS_STATUS_SUCCESS;
  if (incx <= 0 || incy <= 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  crema_emu::RequireDevice(x, VectorBytes(n, incx, 4), "cublasSdot x");
  crema_emu::RequireDevice(y, VectorBytes(n, incy, 4), "cublasSdot y");
  crema_emu::DeviceScope scope("cublasSdot");
  double sum = 0;
  for (int i = 0; i < n; ++i)
    sum += double{x[static_cast<size_t>(i) * incx]} * y[static_cast<size_t>(i) * incy];
  *result = static_cast<float>(sum);
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
