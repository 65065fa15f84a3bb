// CPU math used by layers and solvers. BLAS-shaped routines call OpenBLAS; elementwise
// routines are crema's own, vectorised by the compiler and threaded with OpenMP when the
// array is large enough to pay for it. All arrays are float and row-major.
#pragma once

#include <cstddef>
#include <cstdint>

#include "crema/common.hpp"

namespace crema {

enum class Trans { No, Yes };

// C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C.
void cpu_gemm(Trans trans_a, Trans trans_b, int M, int N, int K, float alpha, const float* A,
              const float* B, float beta, float* C);
// y = alpha * op(A) x + beta * y, A is M x N.
void cpu_gemv(Trans trans_a, int M, int N, float alpha, const float* A, const float* x, float beta,
              float* y);

void cpu_axpy(int n, float alpha, const float* x, float* y);               // y += a x
void cpu_axpby(int n, float alpha, const float* x, float beta, float* y);  // y = a x + b y
void cpu_set(size_t n, float value, float* y);
void cpu_copy(size_t n, const float* x, float* y);
void cpu_scal(int n, float alpha, float* x);                   // x *= a
void cpu_scale(int n, float alpha, const float* x, float* y);  // y = a x
void cpu_add_scalar(int n, float alpha, float* y);             // y += a
float cpu_dot(int n, const float* x, const float* y);
float cpu_strided_dot(int n, const float* x, int incx, const float* y, int incy);
float cpu_asum(int n, const float* x);   // sum |x|
float cpu_sumsq(int n, const float* x);  // sum x^2

// Elementwise, y may alias a or b.
void cpu_add(int n, const float* a, const float* b, float* y);
void cpu_sub(int n, const float* a, const float* b, float* y);
void cpu_mul(int n, const float* a, const float* b, float* y);
void cpu_div(int n, const float* a, const float* b, float* y);
void cpu_sqr(int n, const float* a, float* y);
void cpu_sqrt(int n, const float* a, float* y);
void cpu_exp(int n, const float* a, float* y);
void cpu_log(int n, const float* a, float* y);
void cpu_abs(int n, const float* a, float* y);
void cpu_powx(int n, const float* a, float b, float* y);
void cpu_sign(int n, const float* a, float* y);

// Random numbers from the calling thread's generator (Context::rng()).
// Uniform in [a, b] (closed, and the same numbers as Caffe's caffe_rng_uniform from the
// same generator state), Gaussian N(mu, sigma^2), Bernoulli(p) as 0/1 ints.
void cpu_rng_uniform(int n, float a, float b, float* r);
void cpu_rng_gaussian(int n, float mu, float sigma, float* r);
void cpu_rng_bernoulli(int n, float p, int* r);
void cpu_rng_bernoulli(int n, float p, unsigned int* r);
// A uniformly random integer in [0, n).
int rng_int(int n);

// Thin wrappers so this header does not need <omp.h>.
int omp_threads_in_team();
int omp_thread_id();

// Runs body(begin, end) over [0, n) split across the OpenMP team when n >= grain,
// inline otherwise. Use for elementwise loops in layers.
template <typename Body>
void parallel_for(int64_t n, int64_t grain, const Body& body) {
  if (n < grain * 2) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_threads_in_team();
    const int64_t id = omp_thread_id();
    const int64_t chunk = (n + threads - 1) / threads;
    const int64_t begin = id * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) body(begin, end);
  }
}

}  // namespace crema
