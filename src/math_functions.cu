// The GPU math of include/crema/gpu_math.hpp: cuBLAS for the BLAS-shaped routines, small
// grid-stride kernels for the elementwise ones, Philox (curand_kernel) for random numbers.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand_kernel.h>

#include <algorithm>
#include <cmath>

#include "crema/common.hpp"
#include "crema/gpu_math.hpp"
#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"

namespace crema {
namespace {

cublasHandle_t handle() {
  return static_cast<cublasHandle_t>(CudaCublasHandle());
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    CREMA_THROW("cuBLAS error " << static_cast<int>(status) << " in " << what);
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    CREMA_THROW("CUDA error in " << what << ": " << cudaGetErrorString(status));
}

cublasOperation_t op(Trans t) {
  return t == Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
}

// Grid-stride loop over [0, n).
#define CREMA_KERNEL_LOOP(i, n)                                                          \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

__global__ void set_kernel(int64_t n, float value, float* y) {
  CREMA_KERNEL_LOOP(i, n) y[i] = value;
}
__global__ void set_int_kernel(int64_t n, int value, int* y) {
  CREMA_KERNEL_LOOP(i, n) y[i] = value;
}
__global__ void axpby_kernel(int64_t n, float a, const float* x, float b, float* y) {
  CREMA_KERNEL_LOOP(i, n) y[i] = a * x[i] + b * y[i];
}
__global__ void scale_kernel(int64_t n, float a, const float* x, float* y) {
  CREMA_KERNEL_LOOP(i, n) y[i] = a * x[i];
}
__global__ void add_scalar_kernel(int64_t n, float a, float* y) {
  CREMA_KERNEL_LOOP(i, n) y[i] += a;
}

// Binary and unary elementwise operations, one functor each.
struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct SubOp {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct DivOp {
  __device__ float operator()(float a, float b) const { return a / b; }
};
struct SqrOp {
  __device__ float operator()(float a) const { return a * a; }
};
struct SqrtOp {
  __device__ float operator()(float a) const { return sqrtf(a); }
};
struct ExpOp {
  __device__ float operator()(float a) const { return expf(a); }
};
struct LogOp {
  __device__ float operator()(float a) const { return logf(a); }
};
struct AbsOp {
  __device__ float operator()(float a) const { return fabsf(a); }
};
struct SignOp {
  __device__ float operator()(float a) const { return static_cast<float>((0.f < a) - (a < 0.f)); }
};
struct PowOp {
  float b;
  __device__ float operator()(float a) const { return powf(a, b); }
};

template <typename Op>
__global__ void binary_kernel(int64_t n, const float* a, const float* b, float* y, Op f) {
  CREMA_KERNEL_LOOP(i, n) y[i] = f(a[i], b[i]);
}
template <typename Op>
__global__ void unary_kernel(int64_t n, const float* a, float* y, Op f) {
  CREMA_KERNEL_LOOP(i, n) y[i] = f(a[i]);
}

template <typename Op>
void binary(int n, const float* a, const float* b, float* y, Op f, const char* what) {
  if (n <= 0) return;
  binary_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, a, b, y, f);
  cuda_check_launch(what);
}
template <typename Op>
void unary(int n, const float* a, float* y, Op f, const char* what) {
  if (n <= 0) return;
  unary_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, a, y, f);
  cuda_check_launch(what);
}

// Random numbers: element i uses Philox subsequence i of `seed`.
__global__ void uniform_kernel(int64_t n, uint64_t seed, float a, float b, float* r) {
  CREMA_KERNEL_LOOP(i, n) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, i, 0, &state);
    // curand_uniform is in (0, 1]; 1 - u is in [0, 1).
    const float u = 1.f - curand_uniform(&state);
    float v = a + (b - a) * u;
    r[i] = v < b ? v : a;  // guard the rounding of a + (b - a) * u up to b
  }
}
__global__ void gaussian_kernel(int64_t n, uint64_t seed, float mu, float sigma, float* r) {
  CREMA_KERNEL_LOOP(i, n) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, i, 0, &state);
    r[i] = mu + sigma * curand_normal(&state);
  }
}
__global__ void bernoulli_kernel(int64_t n, uint64_t seed, float p, unsigned int* r) {
  CREMA_KERNEL_LOOP(i, n) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, i, 0, &state);
    const float u = 1.f - curand_uniform(&state);  // [0, 1)
    r[i] = u < p ? 1u : 0u;
  }
}

}  // namespace

void cuda_check_launch(const char* what) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    CREMA_THROW("CUDA kernel launch failed in " << what << ": " << cudaGetErrorString(status));
}

void gpu_gemm(Trans trans_a, Trans trans_b, int M, int N, int K, float alpha, const float* A,
              const float* B, float beta, float* C) {
  if (M <= 0 || N <= 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  check_cublas(
      cublasSgemm(handle(), op(trans_b), op(trans_a), N, M, K, &alpha, B, ldb, A, lda, &beta, C, N),
      "cublasSgemm");
}

void gpu_gemv(Trans trans_a, int M, int N, float alpha, const float* A, const float* x, float beta,
              float* y) {
  if (M <= 0 || N <= 0) return;
  // Row-major A [M x N] is column-major A^T [N x M]: the transposes flip.
  const cublasOperation_t t = trans_a == Trans::No ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_cublas(cublasSgemv(handle(), t, N, M, &alpha, A, N, x, 1, &beta, y, 1), "cublasSgemv");
}

void gpu_axpby(int n, float alpha, const float* x, float beta, float* y) {
  if (n <= 0) return;
  axpby_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, alpha, x, beta, y);
  cuda_check_launch("gpu_axpby");
}

void gpu_set(size_t n, float value, float* y) {
  if (n == 0) return;
  if (value == 0.f) {
    check_cuda(cudaMemsetAsync(y, 0, n * sizeof(float), cuda_stream()), "cudaMemsetAsync");
    return;
  }
  set_kernel<<<cuda_blocks(static_cast<int64_t>(n)), kCudaThreads, 0, ::crema::cuda_stream()>>>(
      n, value, y);
  cuda_check_launch("gpu_set");
}

void gpu_set_int(size_t n, int value, int* y) {
  if (n == 0) return;
  set_int_kernel<<<cuda_blocks(static_cast<int64_t>(n)), kCudaThreads, 0, ::crema::cuda_stream()>>>(
      n, value, y);
  cuda_check_launch("gpu_set_int");
}

void gpu_copy(size_t n, const float* x, float* y) {
  if (n == 0 || x == y) return;
  check_cuda(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda_stream()),
             "gpu_copy");
}

void gpu_copy_2d(size_t rows, size_t width, const float* x, size_t x_ld, float* y, size_t y_ld) {
  if (rows == 0 || width == 0) return;
  check_cuda(
      cudaMemcpy2DAsync(y, y_ld * sizeof(float), x, x_ld * sizeof(float), width * sizeof(float),
                        rows, cudaMemcpyDeviceToDevice, cuda_stream()),
      "gpu_copy_2d");
}

namespace {

// Up to kCopiesPerLaunch copies, passed by value (40 bytes each, well under the 4 KiB of
// kernel parameters); block row blockIdx.y does copy blockIdx.y.
constexpr int kCopiesPerLaunch = 64;
// A copy of this many floats or more is a launch's worth of work by itself.
constexpr size_t kLargeCopy = size_t{1} << 16;
struct CopyBatch {
  GpuCopy2d copy[kCopiesPerLaunch];
};

__global__ void copy_2d_batch_kernel(int64_t rows, CopyBatch batch) {
  const GpuCopy2d c = batch.copy[blockIdx.y];
  const int64_t width = static_cast<int64_t>(c.width), n = rows * width;
  CREMA_KERNEL_LOOP(e, n) {
    const int64_t r = e / width, j = e % width;
    c.y[r * static_cast<int64_t>(c.y_ld) + j] = c.x[r * static_cast<int64_t>(c.x_ld) + j];
  }
}

}  // namespace

void gpu_copy_2d_batch(size_t rows, const std::vector<GpuCopy2d>& copies) {
  for (size_t first = 0; first < copies.size(); first += kCopiesPerLaunch) {
    const size_t count = std::min<size_t>(kCopiesPerLaunch, copies.size() - first);
    CopyBatch batch{};
    size_t widest = 0;
    int used = 0;
    for (size_t k = first; k < first + count; ++k) {
      if (copies[k].width == 0 || rows == 0) continue;
      if (rows * copies[k].width >= kLargeCopy) {  // the copy engine's 2-D copy is as good
        const GpuCopy2d& c = copies[k];
        gpu_copy_2d(rows, c.width, c.x, c.x_ld, c.y, c.y_ld);
        continue;
      }
      batch.copy[used++] = copies[k];
      widest = std::max(widest, copies[k].width);
    }
    if (used == 0) continue;
    const dim3 grid(cuda_blocks(static_cast<int64_t>(rows * widest)), used);
    copy_2d_batch_kernel<<<grid, kCudaThreads, 0, ::crema::cuda_stream()>>>(
        static_cast<int64_t>(rows), batch);
    cuda_check_launch("gpu_copy_2d_batch");
  }
}

void gpu_scale(int n, float alpha, const float* x, float* y) {
  if (n <= 0) return;
  scale_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, alpha, x, y);
  cuda_check_launch("gpu_scale");
}

void gpu_add_scalar(int n, float alpha, float* y) {
  if (n <= 0) return;
  add_scalar_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, alpha, y);
  cuda_check_launch("gpu_add_scalar");
}

float gpu_sumsq(int n, const float* x) {
  return n > 0 ? gpu_dot(n, x, x) : 0.f;
}

void gpu_add(int n, const float* a, const float* b, float* y) {
  binary(n, a, b, y, AddOp{}, "gpu_add");
}
void gpu_sub(int n, const float* a, const float* b, float* y) {
  binary(n, a, b, y, SubOp{}, "gpu_sub");
}
void gpu_mul(int n, const float* a, const float* b, float* y) {
  binary(n, a, b, y, MulOp{}, "gpu_mul");
}
void gpu_div(int n, const float* a, const float* b, float* y) {
  binary(n, a, b, y, DivOp{}, "gpu_div");
}
void gpu_sqr(int n, const float* a, float* y) {
  unary(n, a, y, SqrOp{}, "gpu_sqr");
}
void gpu_sqrt(int n, const float* a, float* y) {
  unary(n, a, y, SqrtOp{}, "gpu_sqrt");
}
void gpu_exp(int n, const float* a, float* y) {
  unary(n, a, y, ExpOp{}, "gpu_exp");
}
void gpu_log(int n, const float* a, float* y) {
  unary(n, a, y, LogOp{}, "gpu_log");
}
void gpu_abs(int n, const float* a, float* y) {
  unary(n, a, y, AbsOp{}, "gpu_abs");
}
void gpu_sign(int n, const float* a, float* y) {
  unary(n, a, y, SignOp{}, "gpu_sign");
}
void gpu_powx(int n, const float* a, float b, float* y) {
  unary(n, a, y, PowOp{b}, "gpu_powx");
}

uint64_t gpu_rng_seed() {
  std::mt19937& rng = Context::rng();
  const uint64_t hi = rng(), lo = rng();
  return (hi << 32) | lo;
}

void gpu_rng_uniform(int n, float a, float b, float* r) {
  CREMA_REQUIRE(a < b, "gpu_rng_uniform: empty range [" << a << ", " << b << ")");
  const uint64_t seed = gpu_rng_seed();
  if (n <= 0) return;
  uniform_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, seed, a, b, r);
  cuda_check_launch("gpu_rng_uniform");
}

void gpu_rng_gaussian(int n, float mu, float sigma, float* r) {
  CREMA_REQUIRE(sigma > 0, "gpu_rng_gaussian: sigma must be positive, got " << sigma);
  const uint64_t seed = gpu_rng_seed();
  if (n <= 0) return;
  gaussian_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, seed, mu, sigma,
                                                                               r);
  cuda_check_launch("gpu_rng_gaussian");
}

void gpu_rng_bernoulli(int n, float p, unsigned int* r) {
  CREMA_REQUIRE(p >= 0 && p <= 1, "gpu_rng_bernoulli: p must be in [0, 1], got " << p);
  const uint64_t seed = gpu_rng_seed();
  if (n <= 0) return;
  bernoulli_kernel<<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(n, seed, p, r);
  cuda_check_launch("gpu_rng_bernoulli");
}

}  // namespace crema
