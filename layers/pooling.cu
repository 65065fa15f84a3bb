// PoolingLayer on the GPU (semantics in pooling.hpp). MAX and AVE use crema's own kernels,
// which repeat the CPU arithmetic exactly (same window clipping, same CEIL output size, same
// first-maximum argmax, same summation order), so GPU and CPU results are identical; cuDNN's
// pooling treats the padded border differently. Backward is a gather: each bottom element
// sums the gradients of the windows that cover it, in window order, which is the order the
// CPU scatter adds them in, and no atomics are needed.
// STOCHASTIC pooling runs the CPU code (its tops move to the device when next read).
#include <cfloat>

#include "layers/pooling.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

struct Geometry {
  int channels, H, W, PH, PW, kh, kw, sh, sw, ph, pw;
};

__global__ void max_pool_forward(int64_t n, const float* x, Geometry g, float* y, int* mask_i,
                                 float* mask_f) {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = static_cast<int>(index % g.PW);
    const int ph = static_cast<int>((index / g.PW) % g.PH);
    const int64_t plane = index / (static_cast<int64_t>(g.PW) * g.PH);
    const float* xp = x + plane * g.H * g.W;
    const int h0 = max(ph * g.sh - g.ph, 0), h1 = min(ph * g.sh - g.ph + g.kh, g.H);
    const int w0 = max(pw * g.sw - g.pw, 0), w1 = min(pw * g.sw - g.pw + g.kw, g.W);
    float best = -FLT_MAX;
    int arg = -1;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) {
        const float v = xp[h * g.W + w];
        if (v > best) {
          best = v;
          arg = h * g.W + w;
        }
      }
    y[index] = best;
    if (mask_f)
      mask_f[index] = static_cast<float>(arg);
    else
      mask_i[index] = arg;
  }
}

__global__ void ave_pool_forward(int64_t n, const float* x, Geometry g, float* y) {
  CUDA_KERNEL_LOOP(index, n) {
    const int pw = static_cast<int>(index % g.PW);
    const int ph = static_cast<int>((index / g.PW) % g.PH);
    const int64_t plane = index / (static_cast<int64_t>(g.PW) * g.PH);
    const float* xp = x + plane * g.H * g.W;
    const int hs = ph * g.sh - g.ph, he = min(hs + g.kh, g.H + g.ph);
    const int ws = pw * g.sw - g.pw, we = min(ws + g.kw, g.W + g.pw);
    const int pool_size = (he - hs) * (we - ws);
    const int h0 = max(hs, 0), h1 = min(he, g.H), w0 = max(ws, 0), w1 = min(we, g.W);
    float sum = 0.f;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) sum += xp[h * g.W + w];
    y[index] = sum / pool_size;
  }
}

// The windows (rows) covering bottom row h: [first, last).
__device__ __forceinline__ void covering(int h, int pad, int k, int s, int pooled, int* first,
                                         int* last) {
  *first = h + pad < k ? 0 : (h + pad - k) / s + 1;
  *last = min((h + pad) / s + 1, pooled);
}

__global__ void max_pool_backward(int64_t n, const float* dy, const int* mask_i,
                                  const float* mask_f, Geometry g, float* dx) {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = static_cast<int>(index % g.W);
    const int h = static_cast<int>((index / g.W) % g.H);
    const int64_t plane = index / (static_cast<int64_t>(g.W) * g.H);
    const int64_t out_off = plane * g.PH * g.PW;
    const int self = h * g.W + w;
    int ph0, ph1, pw0, pw1;
    covering(h, g.ph, g.kh, g.sh, g.PH, &ph0, &ph1);
    covering(w, g.pw, g.kw, g.sw, g.PW, &pw0, &pw1);
    float sum = 0.f;
    for (int ph = ph0; ph < ph1; ++ph)
      for (int pw = pw0; pw < pw1; ++pw) {
        const int64_t o = out_off + ph * g.PW + pw;
        const int arg = mask_f ? static_cast<int>(mask_f[o]) : mask_i[o];
        if (arg == self) sum += dy[o];
      }
    dx[index] = sum;
  }
}

__global__ void ave_pool_backward(int64_t n, const float* dy, Geometry g, float* dx) {
  CUDA_KERNEL_LOOP(index, n) {
    const int w = static_cast<int>(index % g.W);
    const int h = static_cast<int>((index / g.W) % g.H);
    const int64_t plane = index / (static_cast<int64_t>(g.W) * g.H);
    const int64_t out_off = plane * g.PH * g.PW;
    int ph0, ph1, pw0, pw1;
    covering(h, g.ph, g.kh, g.sh, g.PH, &ph0, &ph1);
    covering(w, g.pw, g.kw, g.sw, g.PW, &pw0, &pw1);
    float sum = 0.f;
    for (int ph = ph0; ph < ph1; ++ph) {
      const int hs = ph * g.sh - g.ph, he = min(hs + g.kh, g.H + g.ph);
      for (int pw = pw0; pw < pw1; ++pw) {
        const int ws = pw * g.sw - g.pw, we = min(ws + g.kw, g.W + g.pw);
        const int pool_size = (he - hs) * (we - ws);
        sum += dy[out_off + ph * g.PW + pw] / pool_size;
      }
    }
    dx[index] = sum;
  }
}

}  // namespace

void PoolingLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (method_ == Method::STOCHASTIC) {
    Forward_cpu(bottom, top);
    return;
  }
  const Geometry g{channels_, height_,   width_,    pooled_height_, pooled_width_, kernel_h_,
                   kernel_w_, stride_h_, stride_w_, pad_h_,         pad_w_};
  const int64_t count = top[0]->count();
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  if (method_ == Method::MAX) {
    float* mask_f = nullptr;
    int* mask_i = nullptr;
    if (top.size() > 1) {
      mask_f = top[1]->mutable_gpu_data();
    } else {
      gpu_mask_.ReshapeLike(*top[0]);  // ints stored in float slots (same size)
      mask_i = reinterpret_cast<int*>(gpu_mask_.mutable_gpu_data());
    }
    CUDA_LAUNCH(max_pool_forward, count, x, g, y, mask_i, mask_f);
  } else {
    CUDA_LAUNCH(ave_pool_forward, count, x, g, y);
  }
}

void PoolingLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (method_ == Method::STOCHASTIC) {
    Backward_cpu(top, propagate_down, bottom);
    return;
  }
  const Geometry g{channels_, height_,   width_,    pooled_height_, pooled_width_, kernel_h_,
                   kernel_w_, stride_h_, stride_w_, pad_h_,         pad_w_};
  const int64_t count = bottom[0]->count();
  const float* dy = top[0]->gpu_diff();
  float* dx = bottom[0]->mutable_gpu_diff();
  if (method_ == Method::MAX) {
    const float* mask_f = top.size() > 1 ? top[1]->gpu_data() : nullptr;
    const int* mask_i = mask_f ? nullptr : reinterpret_cast<const int*>(gpu_mask_.gpu_data());
    CUDA_LAUNCH(max_pool_backward, count, dy, mask_i, mask_f, g, dx);
  } else {
    CUDA_LAUNCH(ave_pool_backward, count, dy, g, dx);
  }
}

}  // namespace crema
