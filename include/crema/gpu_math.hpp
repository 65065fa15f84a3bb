// GPU math used by the CUDA layers and solvers: the device counterparts of
// math_functions.hpp. Every pointer is a device pointer (from Blob::gpu_data() & co); every
// array is float and row-major; work is queued on the default stream, so consecutive calls
// run in order, and results returned to the host (dot, asum) synchronise.
//
// BLAS-shaped routines call cuBLAS through the calling thread's handle (src/cuda_util.cu);
// elementwise routines are crema's own kernels (src/math_functions.cu). cuBLAS runs in its
// default math mode: full fp32, no TF32, so GPU results agree with the CPU path to
// rounding. Only available in builds with CREMA_WITH_CUDA.
//
// Random numbers: the gpu_rng_* routines draw a fresh 64-bit seed from the calling thread's
// host generator (Context::rng()) and fill the array with a counter-based generator
// (Philox4x32-10, one subsequence per element). The sequence is therefore a function of the
// host RNG state: Context::reseed makes GPU randomness reproducible exactly as it does on
// the CPU, though the GPU numbers differ from the CPU ones.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crema/math_functions.hpp"

namespace crema {

// Threads per block of the elementwise kernels, and the grid that covers n elements with
// a grid-stride loop (capped so huge arrays reuse threads).
constexpr int kCudaThreads = 256;
inline int cuda_blocks(int64_t n) {
  const int64_t blocks = (n + kCudaThreads - 1) / kCudaThreads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}
// Throws crema::Error naming `what` when the last kernel launch failed.
void cuda_check_launch(const char* what);

// C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C.
void gpu_gemm(Trans trans_a, Trans trans_b, int M, int N, int K, float alpha, const float* A,
              const float* B, float beta, float* C);
// y = alpha * op(A) x + beta * y, A is M x N.
void gpu_gemv(Trans trans_a, int M, int N, float alpha, const float* A, const float* x, float beta,
              float* y);

// Defined in src/cuda_util.cu (repeated here so layers need only this header).
void gpu_axpy(int n, float alpha, const float* x, float* y);  // y += a x
void gpu_scal(int n, float alpha, float* x);                  // x *= a
float gpu_asum(int n, const float* x);                        // sum |x|
float gpu_dot(int n, const float* x, const float* y);

void gpu_axpby(int n, float alpha, const float* x, float beta, float* y);  // y = a x + b y
void gpu_set(size_t n, float value, float* y);
void gpu_set_int(size_t n, int value, int* y);
void gpu_copy(size_t n, const float* x, float* y);  // no-op when x == y
// rows x width floats from x (row pitch x_ld floats) to y (row pitch y_ld floats).
void gpu_copy_2d(size_t rows, size_t width, const float* x, size_t x_ld, float* y, size_t y_ld);
// Many such copies with the same number of rows: the small ones (under 64 Ki floats) in one
// kernel launch per 64 copies rather than one copy each (Slice and Concat with many tops or
// bottoms), the large ones each as gpu_copy_2d.
struct GpuCopy2d {
  const float* x;
  size_t x_ld;
  float* y;
  size_t y_ld;
  size_t width;
};
void gpu_copy_2d_batch(size_t rows, const std::vector<GpuCopy2d>& copies);
void gpu_scale(int n, float alpha, const float* x, float* y);  // y = a x
void gpu_add_scalar(int n, float alpha, float* y);             // y += a
float gpu_sumsq(int n, const float* x);                        // sum x^2

// Elementwise, y may alias a or b.
void gpu_add(int n, const float* a, const float* b, float* y);
void gpu_sub(int n, const float* a, const float* b, float* y);
void gpu_mul(int n, const float* a, const float* b, float* y);
void gpu_div(int n, const float* a, const float* b, float* y);
void gpu_sqr(int n, const float* a, float* y);
void gpu_sqrt(int n, const float* a, float* y);
void gpu_exp(int n, const float* a, float* y);
void gpu_log(int n, const float* a, float* y);
void gpu_abs(int n, const float* a, float* y);
void gpu_powx(int n, const float* a, float b, float* y);
void gpu_sign(int n, const float* a, float* y);

// Random numbers (see the note at the top). Uniform in [a, b), N(mu, sigma^2), and
// Bernoulli(p) as 0/1.
void gpu_rng_uniform(int n, float a, float b, float* r);
void gpu_rng_gaussian(int n, float mu, float sigma, float* r);
void gpu_rng_bernoulli(int n, float p, unsigned int* r);
// A 64-bit seed drawn from the calling thread's host generator.
uint64_t gpu_rng_seed();

}  // namespace crema

#endif  // CREMA_WITH_CUDA
