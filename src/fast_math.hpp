// Branch-free float exp, logistic sigmoid and tanh that the compiler can vectorise inside a
// `#pragma omp simd` loop (libm's expf/tanhf are calls, one element at a time). For the CPU
// kernels of layers beyond Caffe only (GRU): Caffe's own layers keep std::exp/std::tanh so
// they match Caffe bit for bit.
//
// exp(x): x = k ln2 + r with k = round(x / ln2) and |r| <= ln2 / 2 (ln2 split in two parts
// so k ln2 is exact); exp(r) by a degree-6 polynomial (the classic Cephes expf
// coefficients), times 2^k built in the exponent bits. x is clamped to [-87, 88], where
// 2^k stays a normal float: exp(-87) = 1.6e-38, exp(88) = 1.65e38. NaN gives NaN.
// Relative error: under 2 ulp over the clamped range (tests/test_recurrent.cpp checks it).
// tanh(x): for |x| < 0.625 the odd polynomial x + x^3 P(x^2) (Cephes tanhf), which avoids
// the cancellation of the exp form near 0; otherwise sign(x) (1 - 2 / (exp(2|x|) + 1)).
// sigmoid(x) = 1 / (1 + exp(-x)).
#pragma once

#include <cstdint>
#include <cstring>

namespace crema {
namespace fast {

#if defined(__GNUC__)
#define CREMA_FAST_INLINE inline __attribute__((always_inline))
#else
#define CREMA_FAST_INLINE inline
#endif

CREMA_FAST_INLINE float Exp(float x_in) {
  float x = x_in > -87.f ? x_in : -87.f;  // NaN too, so k below is always in range
  x = x < 88.f ? x : 88.f;
  const float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - k * 0.693359375f;  // ln2's high part: k * it is exact for |k| < 2^12
  r = r + k * 2.12194440e-4f;      // ln2 = 0.693359375 - 2.12194440e-4
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r2 + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k, k in [-126, 127]
  float two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return x_in == x_in ? e_r * two_k : x_in;  // NaN stays NaN
}

CREMA_FAST_INLINE float Sigmoid(float x) {
  return 1.f / (1.f + Exp(-x));
}

CREMA_FAST_INLINE float Tanh(float x) {
  const float a = x < 0.f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float large_abs = 1.f - 2.f / (Exp(2.f * a) + 1.f);
  const float large = x < 0.f ? -large_abs : large_abs;
  return a < 0.625f ? small : large;
}

#undef CREMA_FAST_INLINE

}  // namespace fast
}  // namespace crema
