#include "crema/math_functions.hpp"

#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace crema {
namespace {

// Elementwise loops run single-threaded below this many elements: the OpenMP fork costs
// more than it saves on small arrays.
constexpr int64_t kGrain = 1 << 15;

template <typename Op>
void elementwise(int n, const Op& op) {
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) op(i);
  });
}

CBLAS_TRANSPOSE to_cblas(Trans t) {
  return t == Trans::No ? CblasNoTrans : CblasTrans;
}

}  // namespace

int omp_threads_in_team() {
  return omp_get_num_threads();
}
int omp_thread_id() {
  return omp_get_thread_num();
}

void cpu_gemm(Trans trans_a, Trans trans_b, int M, int N, int K, float alpha, const float* A,
              const float* B, float beta, float* C) {
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  cblas_sgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), M, N, K, alpha, A, lda, B, ldb,
              beta, C, N);
}

void cpu_gemv(Trans trans_a, int M, int N, float alpha, const float* A, const float* x, float beta,
              float* y) {
  cblas_sgemv(CblasRowMajor, to_cblas(trans_a), M, N, alpha, A, N, x, 1, beta, y, 1);
}

void cpu_axpy(int n, float alpha, const float* x, float* y) {
  elementwise(n, [=](int64_t i) { y[i] += alpha * x[i]; });
}

void cpu_axpby(int n, float alpha, const float* x, float beta, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = alpha * x[i] + beta * y[i]; });
}

void cpu_set(size_t n, float value, float* y) {
  if (value == 0.f) {
    std::memset(y, 0, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) y[i] = value;
}

void cpu_copy(size_t n, const float* x, float* y) {
  if (x != y && n > 0) std::memcpy(y, x, n * sizeof(float));
}

void cpu_scal(int n, float alpha, float* x) {
  elementwise(n, [=](int64_t i) { x[i] *= alpha; });
}

void cpu_scale(int n, float alpha, const float* x, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = alpha * x[i]; });
}

void cpu_add_scalar(int n, float alpha, float* y) {
  elementwise(n, [=](int64_t i) { y[i] += alpha; });
}

// Reductions accumulate in double, in a fixed order (results never depend on threads).
float cpu_dot(int n, const float* x, const float* y) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * y[i];
  return static_cast<float>(sum);
}

float cpu_strided_dot(int n, const float* x, int incx, const float* y, int incy) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i * incx]) * y[i * incy];
  return static_cast<float>(sum);
}

float cpu_asum(int n, const float* x) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::fabs(x[i]);
  return static_cast<float>(sum);
}

float cpu_sumsq(int n, const float* x) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(sum);
}

void cpu_add(int n, const float* a, const float* b, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = a[i] + b[i]; });
}
void cpu_sub(int n, const float* a, const float* b, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = a[i] - b[i]; });
}
void cpu_mul(int n, const float* a, const float* b, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = a[i] * b[i]; });
}
void cpu_div(int n, const float* a, const float* b, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = a[i] / b[i]; });
}
void cpu_sqr(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = a[i] * a[i]; });
}
void cpu_sqrt(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = std::sqrt(a[i]); });
}
void cpu_exp(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = std::exp(a[i]); });
}
void cpu_log(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = std::log(a[i]); });
}
void cpu_abs(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = std::fabs(a[i]); });
}
void cpu_powx(int n, const float* a, float b, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = std::pow(a[i], b); });
}
void cpu_sign(int n, const float* a, float* y) {
  elementwise(n, [=](int64_t i) { y[i] = static_cast<float>((0.f < a[i]) - (a[i] < 0.f)); });
}

namespace {

// One uniform draw as Caffe's caffe_rng_uniform(a, b) makes it (boost's uniform_real over a
// 32-bit engine), to the bit: with b+ the float after b and u one raw 32-bit output,
//   x = float(u) / 2^32 * (b+ - a) + a        (each operation in float)
// drawn again while rounding gives x >= b+. So x lies in the closed interval [a, b]. A
// range wider than the largest float is halved, drawn, and doubled. (b = FLT_MAX has no
// float after it: there x <= b is accepted, where Caffe would draw for ever.)
float caffe_uniform(std::mt19937& gen, float lo, float hi_plus) {
  if (hi_plus / 2 - lo / 2 > std::numeric_limits<float>::max() / 2)
    return 2 * caffe_uniform(gen, lo / 2, hi_plus / 2);
  const float two_to_32 = static_cast<float>(std::mt19937::max()) + 1.f;  // 2^32 in float
  const bool top_is_max = hi_plus == std::numeric_limits<float>::max();
  for (;;) {
    const float u = static_cast<float>(gen());
    const float x = u / two_to_32 * (hi_plus - lo) + lo;
    if (x < hi_plus || (top_is_max && x == hi_plus)) return x;
  }
}

}  // namespace

void cpu_rng_uniform(int n, float a, float b, float* r) {
  if (n <= 0) return;
  CREMA_REQUIRE(std::isfinite(a) && std::isfinite(b) && a <= b,
                "uniform random numbers need finite bounds a <= b, got [" << a << ", " << b << "]");
  const float b_plus = std::nextafter(b, std::numeric_limits<float>::max());
  auto& gen = Context::rng();
  for (int i = 0; i < n; ++i) r[i] = caffe_uniform(gen, a, b_plus);
}

void cpu_rng_gaussian(int n, float mu, float sigma, float* r) {
  CHECK_GT(sigma, 0.f);
  std::normal_distribution<float> dist(mu, sigma);
  auto& gen = Context::rng();
  for (int i = 0; i < n; ++i) r[i] = dist(gen);
}

template <typename Int>
static void bernoulli(int n, float p, Int* r) {
  CHECK_GE(p, 0.f);
  CHECK_LE(p, 1.f);
  std::bernoulli_distribution dist(p);
  auto& gen = Context::rng();
  for (int i = 0; i < n; ++i) r[i] = dist(gen) ? 1 : 0;
}

void cpu_rng_bernoulli(int n, float p, int* r) {
  bernoulli(n, p, r);
}
void cpu_rng_bernoulli(int n, float p, unsigned int* r) {
  bernoulli(n, p, r);
}

int rng_int(int n) {
  CHECK_GT(n, 0);
  std::uniform_int_distribution<int> dist(0, n - 1);
  return dist(Context::rng());
}

}  // namespace crema
