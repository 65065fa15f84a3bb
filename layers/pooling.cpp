#include "layers/pooling.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

PoolingLayer::PoolingLayer(const pb::LayerParameter& param) : Layer(param) {
  method_ = static_cast<Method>(param.pooling_param().pool());
}

void PoolingLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::PoolingParameter& p = layer_param_->pooling_param();
  LAYER_REQUIRE(method_ == Method::MAX || method_ == Method::AVE || method_ == Method::STOCHASTIC,
                "unknown pooling method " << static_cast<int>(method_));
  global_pooling_ = p.global_pooling();
  ceil_mode_ = p.round_mode() == pb::PoolingParameter::CEIL;
  LAYER_REQUIRE(bottom[0]->num_axes() == 4,
                "the bottom must have 4 axes (num, channels, "
                "height, width), got shape "
                    << bottom[0]->shape_string());
  if (global_pooling_) {
    LAYER_REQUIRE(!(p.has_kernel_size() || p.has_kernel_h() || p.has_kernel_w()),
                  "with global_pooling the kernel size cannot be given");
    kernel_h_ = bottom[0]->shape(2);
    kernel_w_ = bottom[0]->shape(3);
  } else {
    const bool hw = p.has_kernel_h() && p.has_kernel_w();
    LAYER_REQUIRE(p.has_kernel_size() != hw && (p.has_kernel_size() || hw) &&
                      (hw || !(p.has_kernel_h() || p.has_kernel_w())),
                  "give the kernel size as kernel_size OR as both kernel_h and kernel_w");
    kernel_h_ = static_cast<int>(p.has_kernel_size() ? p.kernel_size() : p.kernel_h());
    kernel_w_ = static_cast<int>(p.has_kernel_size() ? p.kernel_size() : p.kernel_w());
  }
  LAYER_REQUIRE(kernel_h_ > 0 && kernel_w_ > 0,
                "kernel size must be nonzero, got " << kernel_h_ << " x " << kernel_w_);
  LAYER_REQUIRE(
      (!p.has_pad() && p.has_pad_h() && p.has_pad_w()) || (!p.has_pad_h() && !p.has_pad_w()),
      "give the padding as pad OR as both pad_h and pad_w");
  LAYER_REQUIRE((!p.has_stride() && p.has_stride_h() && p.has_stride_w()) ||
                    (!p.has_stride_h() && !p.has_stride_w()),
                "give the stride as stride OR as both stride_h and stride_w");
  pad_h_ = static_cast<int>(p.has_pad_h() ? p.pad_h() : p.pad());
  pad_w_ = static_cast<int>(p.has_pad_h() ? p.pad_w() : p.pad());
  stride_h_ = static_cast<int>(p.has_stride_h() ? p.stride_h() : p.stride());
  stride_w_ = static_cast<int>(p.has_stride_h() ? p.stride_w() : p.stride());
  LAYER_REQUIRE(stride_h_ > 0 && stride_w_ > 0,
                "stride must be nonzero, got " << stride_h_ << " x " << stride_w_);
  if (global_pooling_)
    LAYER_REQUIRE(pad_h_ == 0 && pad_w_ == 0 && stride_h_ == 1 && stride_w_ == 1,
                  "with global_pooling only pad 0 and stride 1 are allowed, got pad "
                      << pad_h_ << " x " << pad_w_ << ", stride " << stride_h_ << " x "
                      << stride_w_);
  if (pad_h_ != 0 || pad_w_ != 0) {
    LAYER_REQUIRE(method_ != Method::STOCHASTIC,
                  "padding is implemented only for MAX and AVE pooling");
    LAYER_REQUIRE(pad_h_ < kernel_h_ && pad_w_ < kernel_w_,
                  "pad (" << pad_h_ << " x " << pad_w_ << ") must be smaller than the kernel ("
                          << kernel_h_ << " x " << kernel_w_ << ")");
  }
}

void PoolingLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(bottom[0]->num_axes() == 4,
                "the bottom must have 4 axes (num, channels, "
                "height, width), got shape "
                    << bottom[0]->shape_string());
  num_ = bottom[0]->shape(0);
  channels_ = bottom[0]->shape(1);
  height_ = bottom[0]->shape(2);
  width_ = bottom[0]->shape(3);
  if (global_pooling_) {
    kernel_h_ = height_;
    kernel_w_ = width_;
  }
  // Same float arithmetic as Caffe, so the rounding agrees in every case.
  const float rows = static_cast<float>(height_ + 2 * pad_h_ - kernel_h_) / stride_h_;
  const float cols = static_cast<float>(width_ + 2 * pad_w_ - kernel_w_) / stride_w_;
  pooled_height_ = static_cast<int>(ceil_mode_ ? std::ceil(rows) : std::floor(rows)) + 1;
  pooled_width_ = static_cast<int>(ceil_mode_ ? std::ceil(cols) : std::floor(cols)) + 1;
  if (pad_h_ || pad_w_) {
    // The last window must start inside the image (or its top/left padding), not in the
    // bottom/right padding.
    if ((pooled_height_ - 1) * stride_h_ >= height_ + pad_h_) --pooled_height_;
    if ((pooled_width_ - 1) * stride_w_ >= width_ + pad_w_) --pooled_width_;
  }
  LAYER_REQUIRE(pooled_height_ > 0 && pooled_width_ > 0,
                "the kernel " << kernel_h_ << " x " << kernel_w_ << " (pad " << pad_h_ << " x "
                              << pad_w_ << ", stride " << stride_h_ << " x " << stride_w_
                              << ") gives an empty output for the bottom "
                              << bottom[0]->shape_string());
  top[0]->Reshape(num_, channels_, pooled_height_, pooled_width_);
  if (top.size() > 1) top[1]->ReshapeLike(*top[0]);
  const size_t count = static_cast<size_t>(top[0]->count());
  if (method_ == Method::MAX && top.size() == 1) max_idx_.resize(count);
  if (method_ == Method::STOCHASTIC) {
    rand_idx_.resize(count);
    uniform_.resize(count);
  }
}

void PoolingLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const int H = height_, W = width_, PH = pooled_height_, PW = pooled_width_;
  const int kh = kernel_h_, kw = kernel_w_, sh = stride_h_, sw = stride_w_;
  const int pad_h = pad_h_, pad_w = pad_w_;
  const long in_plane = static_cast<long>(H) * W, out_plane = static_cast<long>(PH) * PW;
  const int64_t planes = static_cast<int64_t>(num_) * channels_;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<long>(1, in_plane));

  switch (method_) {
    case Method::MAX: {
      const bool top_mask = top.size() > 1;
      float* mask_f = top_mask ? top[1]->mutable_cpu_data() : nullptr;
      int* mask_i = top_mask ? nullptr : max_idx_.data();
      parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
        for (int64_t pl = begin; pl < end; ++pl) {
          const float* xp = x + pl * in_plane;
          float* yp = y + pl * out_plane;
          for (int ph = 0; ph < PH; ++ph) {
            const int h0 = std::max(ph * sh - pad_h, 0);
            const int h1 = std::min(ph * sh - pad_h + kh, H);
            for (int pw = 0; pw < PW; ++pw) {
              const int w0 = std::max(pw * sw - pad_w, 0);
              const int w1 = std::min(pw * sw - pad_w + kw, W);
              float best = -FLT_MAX;
              int arg = -1;
              for (int h = h0; h < h1; ++h)
                for (int w = w0; w < w1; ++w) {
                  const float v = xp[h * W + w];
                  if (v > best) {
                    best = v;
                    arg = h * W + w;
                  }
                }
              const long o = static_cast<long>(ph) * PW + pw;
              yp[o] = best;
              if (top_mask)
                mask_f[pl * out_plane + o] = static_cast<float>(arg);
              else
                mask_i[pl * out_plane + o] = arg;
            }
          }
        }
      });
      break;
    }
    case Method::AVE: {
      parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
        for (int64_t pl = begin; pl < end; ++pl) {
          const float* xp = x + pl * in_plane;
          float* yp = y + pl * out_plane;
          for (int ph = 0; ph < PH; ++ph) {
            const int hs = ph * sh - pad_h;
            const int he = std::min(hs + kh, H + pad_h);
            const int h0 = std::max(hs, 0), h1 = std::min(he, H);
            for (int pw = 0; pw < PW; ++pw) {
              const int ws = pw * sw - pad_w;
              const int we = std::min(ws + kw, W + pad_w);
              const int pool_size = (he - hs) * (we - ws);
              const int w0 = std::max(ws, 0), w1 = std::min(we, W);
              float sum = 0.f;
              for (int h = h0; h < h1; ++h)
                for (int w = w0; w < w1; ++w) sum += xp[h * W + w];
              yp[static_cast<long>(ph) * PW + pw] = sum / pool_size;
            }
          }
        }
      });
      break;
    }
    case Method::STOCHASTIC: {
      const bool train = phase_ == Phase::TRAIN;
      const int count = top[0]->count();
      if (train && count > 0) cpu_rng_uniform(count, 0.f, 1.f, uniform_.data());
      const float* u = uniform_.data();
      int* chosen = rand_idx_.data();
      parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
        for (int64_t pl = begin; pl < end; ++pl) {
          const float* xp = x + pl * in_plane;
          float* yp = y + pl * out_plane;
          for (int ph = 0; ph < PH; ++ph) {
            const int h0 = ph * sh, h1 = std::min(h0 + kh, H);
            for (int pw = 0; pw < PW; ++pw) {
              const int w0 = pw * sw, w1 = std::min(w0 + kw, W);
              const long o = static_cast<long>(ph) * PW + pw;
              float sum = 0.f;
              if (train) {
                for (int h = h0; h < h1; ++h)
                  for (int w = w0; w < w1; ++w) sum += xp[h * W + w];
                const float threshold = u[pl * out_plane + o] * sum;
                // The first element whose running sum reaches the threshold; the last one
                // if rounding keeps the running sum just below it.
                int arg = (h1 - 1) * W + (w1 - 1);
                float run = 0.f;
                for (int h = h0; h < h1 && arg == (h1 - 1) * W + (w1 - 1); ++h)
                  for (int w = w0; w < w1; ++w) {
                    run += xp[h * W + w];
                    if (run >= threshold) {
                      arg = h * W + w;
                      break;
                    }
                  }
                chosen[pl * out_plane + o] = arg;
                yp[o] = xp[arg];
              } else {
                float sum_sq = 0.f;
                for (int h = h0; h < h1; ++h)
                  for (int w = w0; w < w1; ++w) {
                    const float v = xp[h * W + w];
                    sum += v;
                    sum_sq += v * v;
                  }
                yp[o] = sum > 0.f ? sum_sq / sum : 0.f;
              }
            }
          }
        }
      });
      break;
    }
  }
}

void PoolingLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const int H = height_, W = width_, PH = pooled_height_, PW = pooled_width_;
  const int kh = kernel_h_, kw = kernel_w_, sh = stride_h_, sw = stride_w_;
  const int pad_h = pad_h_, pad_w = pad_w_;
  const long in_plane = static_cast<long>(H) * W, out_plane = static_cast<long>(PH) * PW;
  const int64_t planes = static_cast<int64_t>(num_) * channels_;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<long>(1, in_plane));
  const Method method = method_;
  const bool top_mask = top.size() > 1;
  const float* mask_f = top_mask ? top[1]->cpu_data() : nullptr;
  const int* mask_i =
      method == Method::MAX ? (top_mask ? nullptr : max_idx_.data()) : rand_idx_.data();
  const bool routed =
      method == Method::MAX || (method == Method::STOCHASTIC && phase_ == Phase::TRAIN);
  parallel_for(planes, grain, [=](int64_t begin, int64_t end) {
    for (int64_t pl = begin; pl < end; ++pl) {
      float* dxp = dx + pl * in_plane;
      const float* dyp = dy + pl * out_plane;
      std::memset(dxp, 0, sizeof(float) * in_plane);
      if (routed) {
        for (long o = 0; o < out_plane; ++o) {
          const int idx =
              mask_f ? static_cast<int>(mask_f[pl * out_plane + o]) : mask_i[pl * out_plane + o];
          if (idx >= 0 && idx < in_plane) dxp[idx] += dyp[o];
        }
      } else if (method == Method::AVE) {
        for (int ph = 0; ph < PH; ++ph) {
          const int hs = ph * sh - pad_h;
          const int he = std::min(hs + kh, H + pad_h);
          const int h0 = std::max(hs, 0), h1 = std::min(he, H);
          for (int pw = 0; pw < PW; ++pw) {
            const int ws = pw * sw - pad_w;
            const int we = std::min(ws + kw, W + pad_w);
            const int pool_size = (he - hs) * (we - ws);
            const int w0 = std::max(ws, 0), w1 = std::min(we, W);
            const float g = dyp[static_cast<long>(ph) * PW + pw] / pool_size;
            for (int h = h0; h < h1; ++h)
              for (int w = w0; w < w1; ++w) dxp[h * W + w] += g;
          }
        }
      }
      // STOCHASTIC in TEST: no gradient (zeros).
    }
  });
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(Pooling, CreatePoolingLayer);

}  // namespace crema
