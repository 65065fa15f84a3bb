#include "layers/lrn.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

namespace {

constexpr int64_t kGrain = 1 << 14;

// s^-beta, with the common beta = 0.75 done by square roots (much faster than powf and
// within a few ulp of it).
inline float pow_neg(float s, float beta, bool three_quarters) {
  if (three_quarters) {
    const float r = std::sqrt(s);
    return 1.f / (r * std::sqrt(r));
  }
  return std::pow(s, -beta);
}

// out[h][w] = sum of in over the (2r+1) x (2r+1) window centred on (h, w), clipped to the
// H x W plane. tmp is one plane of scratch.
void box_sum(const float* in, float* out, float* tmp, int H, int W, int r) {
  for (int h = 0; h < H; ++h) {
    const float* row = in + static_cast<long>(h) * W;
    float* t = tmp + static_cast<long>(h) * W;
    for (int w = 0; w < W; ++w) {
      const int w0 = std::max(w - r, 0), w1 = std::min(w + r + 1, W);
      float s = 0.f;
      for (int q = w0; q < w1; ++q) s += row[q];
      t[w] = s;
    }
  }
  for (int h = 0; h < H; ++h) {
    const int h0 = std::max(h - r, 0), h1 = std::min(h + r + 1, H);
    float* o = out + static_cast<long>(h) * W;
    for (int w = 0; w < W; ++w) o[w] = 0.f;
    for (int q = h0; q < h1; ++q) {
      const float* t = tmp + static_cast<long>(q) * W;
      for (int w = 0; w < W; ++w) o[w] += t[w];
    }
  }
}

}  // namespace

LRNLayer::LRNLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::LRNParameter& p = param.lrn_param();
  within_channel_ = p.norm_region() == pb::LRNParameter::WITHIN_CHANNEL;
  size_ = static_cast<int>(p.local_size());
  alpha_ = p.alpha();
  beta_ = p.beta();
  k_ = p.k();
}

void LRNLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(size_ > 0 && size_ % 2 == 1,
                "local_size must be odd (LRN windows are centred), got " << size_);
}

void LRNLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(bottom[0]->num_axes() == 4,
                "the bottom must have 4 axes (num, channels, "
                "height, width), got shape "
                    << bottom[0]->shape_string());
  num_ = bottom[0]->shape(0);
  channels_ = bottom[0]->shape(1);
  height_ = bottom[0]->shape(2);
  width_ = bottom[0]->shape(3);
  top[0]->ReshapeLike(*bottom[0]);
  scale_.ReshapeLike(*bottom[0]);
  work_.ReshapeLike(*bottom[0]);
  if (within_channel_)
    line_.Reshape({std::max(1, Context::num_threads()), 2, std::max(1, height_ * width_)});
}

void LRNLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  float* scale = scale_.mutable_cpu_data();
  float* sq = work_.mutable_cpu_data();
  const int C = channels_, H = height_, W = width_;
  const long plane = static_cast<long>(H) * W;
  const int64_t planes = static_cast<int64_t>(num_) * C;
  const int64_t count = planes * plane;
  const int r = (size_ - 1) / 2;
  const float beta = beta_;
  const bool tq = beta_ == 0.75f;
  parallel_for(count, kGrain, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sq[i] = x[i] * x[i];
  });
  if (!within_channel_) {
    const float alpha_over_n = alpha_ / size_;
    const float k = k_;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<long>(1, plane));
    parallel_for(planes, grain, [=](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const int c = static_cast<int>(pl % C);
        const int64_t image = pl - c;  // plane index of channel 0
        const int c0 = std::max(c - r, 0), c1 = std::min(c + r + 1, C);
        float* s = scale + pl * plane;
        for (long i = 0; i < plane; ++i) s[i] = 0.f;
        for (int q = c0; q < c1; ++q) {
          const float* src = sq + (image + q) * plane;
          for (long i = 0; i < plane; ++i) s[i] += src[i];
        }
        const float* xp = x + pl * plane;
        float* yp = y + pl * plane;
        for (long i = 0; i < plane; ++i) {
          s[i] = k + alpha_over_n * s[i];
          yp[i] = xp[i] * pow_neg(s[i], beta, tq);
        }
      }
    });
  } else {
    const float alpha = alpha_;
    const float inv_area = 1.f / static_cast<float>(size_ * size_);
    float* lines = line_.mutable_cpu_data();
    const int T = line_.shape(0);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && count >= 2 * kGrain)
    for (int64_t pl = 0; pl < planes; ++pl) {
      float* tmp = lines + static_cast<long>(omp_get_thread_num()) * 2 * std::max(plane, 1L);
      float* s = scale + pl * plane;
      box_sum(sq + pl * plane, s, tmp, H, W, r);
      const float* xp = x + pl * plane;
      float* yp = y + pl * plane;
      for (long i = 0; i < plane; ++i) {
        s[i] = 1.f + alpha * (s[i] * inv_area);
        yp[i] = xp[i] * pow_neg(s[i], beta, tq);
      }
    }
  }
}

void LRNLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = bottom[0]->cpu_data();
  const float* y = top[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const float* scale = scale_.cpu_data();
  float* ratio = work_.mutable_cpu_data();
  const int C = channels_, H = height_, W = width_;
  const long plane = static_cast<long>(H) * W;
  const int64_t planes = static_cast<int64_t>(num_) * C;
  const int64_t count = planes * plane;
  const int r = (size_ - 1) / 2;
  const float beta = beta_;
  const bool tq = beta_ == 0.75f;
  if (!within_channel_) {
    // ratio = dy * y / scale
    parallel_for(count, kGrain, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ratio[i] = dy[i] * y[i] / scale[i];
    });
    const float coeff = 2.f * alpha_ * beta_ / size_;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<long>(1, plane));
    parallel_for(planes, grain, [=](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const int c = static_cast<int>(pl % C);
        const int64_t image = pl - c;
        const int c0 = std::max(c - r, 0), c1 = std::min(c + r + 1, C);
        float* d = dx + pl * plane;
        for (long i = 0; i < plane; ++i) d[i] = 0.f;
        for (int q = c0; q < c1; ++q) {
          const float* src = ratio + (image + q) * plane;
          for (long i = 0; i < plane; ++i) d[i] += src[i];
        }
        const float* xp = x + pl * plane;
        const float* dyp = dy + pl * plane;
        const float* s = scale + pl * plane;
        for (long i = 0; i < plane; ++i)
          d[i] = dyp[i] * pow_neg(s[i], beta, tq) - coeff * xp[i] * d[i];
      }
    });
  } else {
    // ratio = dy * x * base^(-beta) / base
    parallel_for(count, kGrain, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        ratio[i] = dy[i] * x[i] * pow_neg(scale[i], beta, tq) / scale[i];
    });
    const float coeff = 2.f * alpha_ * beta_ / static_cast<float>(size_ * size_);
    float* lines = line_.mutable_cpu_data();
    const int T = line_.shape(0);
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && count >= 2 * kGrain)
    for (int64_t pl = 0; pl < planes; ++pl) {
      float* tmp = lines + static_cast<long>(omp_get_thread_num()) * 2 * std::max(plane, 1L);
      float* box = tmp + std::max(plane, 1L);
      box_sum(ratio + pl * plane, box, tmp, H, W, r);
      const float* xp = x + pl * plane;
      const float* dyp = dy + pl * plane;
      const float* s = scale + pl * plane;
      float* d = dx + pl * plane;
      for (long i = 0; i < plane; ++i)
        d[i] = dyp[i] * pow_neg(s[i], beta, tq) - coeff * xp[i] * box[i];
    }
  }
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(LRN, CreateLRNLayer);

}  // namespace crema
