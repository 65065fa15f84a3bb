// LRNLayer on the GPU (formulas in lrn.hpp). One thread per element sums its own window
// (channels for ACROSS_CHANNELS, the clipped n x n box for WITHIN_CHANNEL) in the order
// the CPU sums it, so GPU and CPU agree to rounding. scale_ holds the scale (ACROSS) or
// base (WITHIN) for the backward, work_ the backward's ratios, as on the CPU.
#include "layers/lrn.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// s^-beta, with beta = 0.75 done by square roots as on the CPU.
__device__ __forceinline__ float pow_neg(float s, float beta, bool three_quarters) {
  if (three_quarters) {
    const float r = sqrtf(s);
    return 1.f / (r * sqrtf(r));
  }
  return powf(s, -beta);
}

// Element i's channel c and the index of channel 0 at its position.
struct ChannelPos {
  int c;
  int64_t base;
};
__device__ __forceinline__ ChannelPos channel_pos(int64_t i, int channels, int64_t plane) {
  const int c = static_cast<int>(i / plane % channels);
  return {c, i - c * plane};
}

// ACROSS_CHANNELS: scale = k + alpha / n * sum_{c' in window} x[c']^2, y = x * scale^-beta.
__global__ void lrn_across_forward(int64_t n, const float* __restrict__ x, int channels,
                                   int64_t plane, int r, float k, float alpha_over_n, float beta,
                                   bool three_quarters, float* __restrict__ scale,
                                   float* __restrict__ y) {
  CUDA_KERNEL_LOOP(i, n) {
    const ChannelPos p = channel_pos(i, channels, plane);
    const int c0 = max(p.c - r, 0), c1 = min(p.c + r + 1, channels);
    float s = 0.f;
    for (int q = c0; q < c1; ++q) {
      const float v = x[p.base + q * plane];
      s += v * v;
    }
    s = k + alpha_over_n * s;
    scale[i] = s;
    y[i] = x[i] * pow_neg(s, beta, three_quarters);
  }
}

// ACROSS_CHANNELS backward, part 1: ratio = dy * y / scale.
__global__ void lrn_across_ratio(int64_t n, const float* __restrict__ dy,
                                 const float* __restrict__ y, const float* __restrict__ scale,
                                 float* __restrict__ ratio) {
  CUDA_KERNEL_LOOP(i, n) {
    ratio[i] = dy[i] * y[i] / scale[i];
  }
}

// ACROSS_CHANNELS backward, part 2:
// dx = dy * scale^-beta - 2 alpha beta / n * x * sum_{c' in window} ratio[c'].
__global__ void lrn_across_backward(int64_t n, const float* __restrict__ x,
                                    const float* __restrict__ dy, const float* __restrict__ scale,
                                    const float* __restrict__ ratio, int channels, int64_t plane,
                                    int r, float beta, bool three_quarters, float coeff,
                                    float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const ChannelPos p = channel_pos(i, channels, plane);
    const int c0 = max(p.c - r, 0), c1 = min(p.c + r + 1, channels);
    float sum = 0.f;
    for (int q = c0; q < c1; ++q) sum += ratio[p.base + q * plane];
    dx[i] = dy[i] * pow_neg(scale[i], beta, three_quarters) - coeff * x[i] * sum;
  }
}

// Sum of v (squared when `square`) over the (2r+1) x (2r+1) window centred on (h, w),
// clipped to the H x W plane `v`: row sums first, then added row by row, as the CPU's
// separable box sum.
__device__ __forceinline__ float box_sum(const float* v, int H, int W, int h, int w, int r,
                                         bool square) {
  const int h0 = max(h - r, 0), h1 = min(h + r + 1, H);
  const int w0 = max(w - r, 0), w1 = min(w + r + 1, W);
  float total = 0.f;
  for (int q = h0; q < h1; ++q) {
    const float* row = v + static_cast<int64_t>(q) * W;
    float s = 0.f;
    for (int u = w0; u < w1; ++u) s += square ? row[u] * row[u] : row[u];
    total += s;
  }
  return total;
}

// WITHIN_CHANNEL: base = 1 + alpha * (box sum of x^2) / n^2, y = x * base^-beta.
__global__ void lrn_within_forward(int64_t n, const float* __restrict__ x, int H, int W, int r,
                                   float alpha, float inv_area, float beta, bool three_quarters,
                                   float* __restrict__ scale, float* __restrict__ y) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t plane = static_cast<int64_t>(H) * W;
    const int w = static_cast<int>(i % W), h = static_cast<int>(i / W % H);
    const float s = 1.f + alpha * (box_sum(x + i / plane * plane, H, W, h, w, r, true) * inv_area);
    scale[i] = s;
    y[i] = x[i] * pow_neg(s, beta, three_quarters);
  }
}

// WITHIN_CHANNEL backward, part 1: ratio = dy * x * base^-beta / base.
__global__ void lrn_within_ratio(int64_t n, const float* __restrict__ dy,
                                 const float* __restrict__ x, const float* __restrict__ scale,
                                 float beta, bool three_quarters, float* __restrict__ ratio) {
  CUDA_KERNEL_LOOP(i, n) {
    ratio[i] = dy[i] * x[i] * pow_neg(scale[i], beta, three_quarters) / scale[i];
  }
}

// WITHIN_CHANNEL backward, part 2: dx = dy * base^-beta - 2 alpha beta / n^2 * x * (box sum
// of ratio); the windows are symmetric, so the windows containing p are those centred in
// p's window.
__global__ void lrn_within_backward(int64_t n, const float* __restrict__ x,
                                    const float* __restrict__ dy, const float* __restrict__ scale,
                                    const float* __restrict__ ratio, int H, int W, int r,
                                    float beta, bool three_quarters, float coeff,
                                    float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t plane = static_cast<int64_t>(H) * W;
    const int w = static_cast<int>(i % W), h = static_cast<int>(i / W % H);
    const float box = box_sum(ratio + i / plane * plane, H, W, h, w, r, false);
    dx[i] = dy[i] * pow_neg(scale[i], beta, three_quarters) - coeff * x[i] * box;
  }
}

}  // namespace

void LRNLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int64_t count = bottom[0]->count();
  const int r = (size_ - 1) / 2;
  const bool tq = beta_ == 0.75f;
  const float* x = bottom[0]->gpu_data();
  float* scale = scale_.mutable_gpu_data();
  float* y = top[0]->mutable_gpu_data();
  if (!within_channel_) {
    CUDA_LAUNCH(lrn_across_forward, count, x, channels_, static_cast<int64_t>(height_) * width_, r,
                k_, alpha_ / size_, beta_, tq, scale, y);
  } else {
    CUDA_LAUNCH(lrn_within_forward, count, x, height_, width_, r, alpha_,
                1.f / static_cast<float>(size_ * size_), beta_, tq, scale, y);
  }
}

void LRNLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int64_t count = bottom[0]->count();
  const int r = (size_ - 1) / 2;
  const bool tq = beta_ == 0.75f;
  const float* x = bottom[0]->gpu_data();
  const float* y = top[0]->gpu_data();
  const float* dy = top[0]->gpu_diff();
  const float* scale = scale_.gpu_data();
  float* ratio = work_.mutable_gpu_data();
  float* dx = bottom[0]->mutable_gpu_diff();
  if (!within_channel_) {
    CUDA_LAUNCH(lrn_across_ratio, count, dy, y, scale, ratio);
    CUDA_LAUNCH(lrn_across_backward, count, x, dy, scale, ratio, channels_,
                static_cast<int64_t>(height_) * width_, r, beta_, tq, 2.f * alpha_ * beta_ / size_,
                dx);
  } else {
    CUDA_LAUNCH(lrn_within_ratio, count, dy, x, scale, beta_, tq, ratio);
    CUDA_LAUNCH(lrn_within_backward, count, x, dy, scale, ratio, height_, width_, r, beta_, tq,
                2.f * alpha_ * beta_ / static_cast<float>(size_ * size_), dx);
  }
}

}  // namespace crema
