#include "layers/depthwise_convolution.hpp"

#include <algorithm>
#include <cstring>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

namespace {

// The output columns q whose input column q*s + off lies in [0, W): [*q0, *q1).
inline void valid_columns(int off, int s, int W, int Wo, int* q0, int* q1) {
  *q0 = off >= 0 ? 0 : (-off + s - 1) / s;
  *q1 = W - 1 - off >= 0 ? std::min(Wo, (W - 1 - off) / s + 1) : 0;
  if (*q1 < *q0) *q1 = *q0;
}

}  // namespace

void DepthwiseConvolutionLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  ConvolutionLayer::LayerSetUp(bottom, top);
  depthwise_ = num_spatial_axes_ == 2 && group_ == channels_ && num_output_ % channels_ == 0;
  VLOG(1) << "Convolution layer '" << name() << "': "
          << (depthwise_
                  ? "direct depthwise kernel (group == channels == " + std::to_string(group_) +
                        ", channel multiplier " + std::to_string(num_output_ / group_) + ")"
                  : "im2col + GEMM (group " + std::to_string(group_) + ", channels " +
                        std::to_string(channels_) + ")");
}

DepthwiseConvolutionLayer::Geometry DepthwiseConvolutionLayer::geometry() const {
  Geometry g;
  g.H = bottom_spatial_[0];
  g.W = bottom_spatial_[1];
  g.Ho = output_shape_[0];
  g.Wo = output_shape_[1];
  g.kh = kernel_shape_[0];
  g.kw = kernel_shape_[1];
  g.sh = stride_[0];
  g.sw = stride_[1];
  g.ph = pad_[0];
  g.pw = pad_[1];
  g.dh = dilation_[0];
  g.dw = dilation_[1];
  g.m = num_output_ / channels_;
  return g;
}

void DepthwiseConvolutionLayer::forward_images(const float* x, const float* weight,
                                               const float* bias, float* y) const {
  const Geometry g = geometry();
  const int O = num_output_;
  const long in_plane = static_cast<long>(g.H) * g.W;
  const long out_plane = static_cast<long>(g.Ho) * g.Wo;
  const int64_t planes = static_cast<int64_t>(num_) * O;
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<long>(1, out_plane * g.kh * g.kw));
  parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
    for (int64_t pl = begin; pl < end; ++pl) {
      const int n = static_cast<int>(pl / O), o = static_cast<int>(pl % O);
      const int c = o / g.m;
      const float* xp = x + (static_cast<long>(n) * channels_ + c) * in_plane;
      const float* wp = weight + static_cast<long>(o) * g.kh * g.kw;
      float* yp = y + pl * out_plane;
      std::memset(yp, 0, sizeof(float) * out_plane);
      for (int p = 0; p < g.Ho; ++p) {
        float* yrow = yp + static_cast<long>(p) * g.Wo;
        for (int i = 0; i < g.kh; ++i) {
          const int h = p * g.sh - g.ph + i * g.dh;
          if (h < 0 || h >= g.H) continue;
          const float* xrow = xp + static_cast<long>(h) * g.W;
          for (int j = 0; j < g.kw; ++j) {
            const float w = wp[i * g.kw + j];
            const int off = j * g.dw - g.pw;
            int q0, q1;
            valid_columns(off, g.sw, g.W, g.Wo, &q0, &q1);
            if (g.sw == 1) {
              const float* src = xrow + off;
#pragma omp simd
              for (int q = q0; q < q1; ++q) yrow[q] += w * src[q];
            } else {
              const int s = g.sw;
#pragma omp simd
              for (int q = q0; q < q1; ++q) yrow[q] += w * xrow[q * s + off];
            }
          }
        }
      }
      if (bias) {
        const float b = bias[o];
#pragma omp simd
        for (long k = 0; k < out_plane; ++k) yp[k] += b;
      }
    }
  });
}

void DepthwiseConvolutionLayer::backward_data(const float* dy, const float* weight,
                                              float* dx) const {
  const Geometry g = geometry();
  const int C = channels_;
  const long in_plane = static_cast<long>(g.H) * g.W;
  const long out_plane = static_cast<long>(g.Ho) * g.Wo;
  const int64_t planes = static_cast<int64_t>(num_) * C;
  const int64_t grain =
      std::max<int64_t>(1, 8192 / std::max<long>(1, out_plane * g.kh * g.kw * g.m));
  parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
    for (int64_t pl = begin; pl < end; ++pl) {
      const int n = static_cast<int>(pl / C), c = static_cast<int>(pl % C);
      float* xp = dx + pl * in_plane;
      std::memset(xp, 0, sizeof(float) * in_plane);
      for (int k = 0; k < g.m; ++k) {
        const int o = c * g.m + k;
        const float* dyp = dy + (static_cast<long>(n) * num_output_ + o) * out_plane;
        const float* wp = weight + static_cast<long>(o) * g.kh * g.kw;
        for (int p = 0; p < g.Ho; ++p) {
          const float* dyrow = dyp + static_cast<long>(p) * g.Wo;
          for (int i = 0; i < g.kh; ++i) {
            const int h = p * g.sh - g.ph + i * g.dh;
            if (h < 0 || h >= g.H) continue;
            float* xrow = xp + static_cast<long>(h) * g.W;
            for (int j = 0; j < g.kw; ++j) {
              const float w = wp[i * g.kw + j];
              const int off = j * g.dw - g.pw;
              int q0, q1;
              valid_columns(off, g.sw, g.W, g.Wo, &q0, &q1);
              if (g.sw == 1) {
                float* dst = xrow + off;
#pragma omp simd
                for (int q = q0; q < q1; ++q) dst[q] += w * dyrow[q];
              } else {
                const int s = g.sw;
                for (int q = q0; q < q1; ++q) xrow[q * s + off] += w * dyrow[q];
              }
            }
          }
        }
      }
    }
  });
}

void DepthwiseConvolutionLayer::backward_weight(const float* x, const float* dy,
                                                float* dweight) const {
  const Geometry g = geometry();
  const int O = num_output_;
  const long in_plane = static_cast<long>(g.H) * g.W;
  const long out_plane = static_cast<long>(g.Ho) * g.Wo;
  const int K = g.kh * g.kw;
  const int N = num_;
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<long>(1, out_plane * K * N));
  parallel_for(O, grain, [=](int64_t begin, int64_t end) {
    // Kernel sizes are small; larger ones use a heap buffer (outside the hot loop).
    double stack_acc[64];
    std::vector<double> heap_acc(K > 64 ? K : 0);
    double* acc = K > 64 ? heap_acc.data() : stack_acc;
    for (int64_t o = begin; o < end; ++o) {
      const int c = static_cast<int>(o) / g.m;
      std::fill(acc, acc + K, 0.0);
      for (int n = 0; n < N; ++n) {
        const float* xp = x + (static_cast<long>(n) * channels_ + c) * in_plane;
        const float* dyp = dy + (static_cast<long>(n) * O + o) * out_plane;
        for (int i = 0; i < g.kh; ++i) {
          for (int j = 0; j < g.kw; ++j) {
            const int off = j * g.dw - g.pw;
            int q0, q1;
            valid_columns(off, g.sw, g.W, g.Wo, &q0, &q1);
            double sum = 0.0;  // rows summed in double, each row in float
            for (int p = 0; p < g.Ho; ++p) {
              const int h = p * g.sh - g.ph + i * g.dh;
              if (h < 0 || h >= g.H) continue;
              const float* xrow = xp + static_cast<long>(h) * g.W;
              const float* dyrow = dyp + static_cast<long>(p) * g.Wo;
              float row = 0.f;
              if (g.sw == 1) {
                const float* src = xrow + off;
#pragma omp simd reduction(+ : row)
                for (int q = q0; q < q1; ++q) row += dyrow[q] * src[q];
              } else {
                const int s = g.sw;
#pragma omp simd reduction(+ : row)
                for (int q = q0; q < q1; ++q) row += dyrow[q] * xrow[q * s + off];
              }
              sum += row;
            }
            acc[i * g.kw + j] += sum;
          }
        }
      }
      float* dw = dweight + o * K;
      for (int k = 0; k < K; ++k) dw[k] += static_cast<float>(acc[k]);
    }
  });
}

void DepthwiseConvolutionLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  if (!depthwise_) {
    ConvolutionLayer::Forward_cpu(bottom, top);
    return;
  }
  const float* weight = blobs_[0]->cpu_data();
  const float* bias = bias_term_ ? blobs_[1]->cpu_data() : nullptr;
  for (size_t i = 0; i < bottom.size(); ++i)
    forward_images(bottom[i]->cpu_data(), weight, bias, top[i]->mutable_cpu_data());
}

void DepthwiseConvolutionLayer::Backward_cpu(const BlobVec& top,
                                             const std::vector<bool>& propagate_down,
                                             const BlobVec& bottom) {
  if (!depthwise_) {
    ConvolutionLayer::Backward_cpu(top, propagate_down, bottom);
    return;
  }
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->cpu_diff();
    if (bias_grad) bias_grad_batch(top_diff, blobs_[1]->mutable_cpu_diff());
    if (weight_grad)
      backward_weight(bottom[i]->cpu_data(), top_diff, blobs_[0]->mutable_cpu_diff());
    if (propagate_down[i])
      backward_data(top_diff, blobs_[0]->cpu_data(), bottom[i]->mutable_cpu_diff());
  }
}

}  // namespace crema
