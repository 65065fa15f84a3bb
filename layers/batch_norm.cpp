#include "layers/batch_norm.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = 32768;  // elements per thread, at least
}

BatchNormLayer::BatchNormLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::BatchNormParameter& p = param.batch_norm_param();
  use_global_stats_ = p.has_use_global_stats() ? p.use_global_stats() : phase_ == Phase::TEST;
  moving_average_fraction_ = p.moving_average_fraction();
  eps_ = p.eps();
}

void BatchNormLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(bottom[0]->num_axes() >= 1,
                "the bottom needs at least 1 axis, got " << bottom[0]->shape_string());
  LAYER_REQUIRE(eps_ >= 0.f, "eps must not be negative, got " << eps_);
  channels_ = ChannelsOf(*bottom[0]);
  if (blobs_.empty()) {
    for (const std::vector<int>& shape :
         {std::vector<int>{channels_}, std::vector<int>{channels_}, std::vector<int>{1}}) {
      blobs_.push_back(std::make_shared<Blob>(shape));
      cpu_set(blobs_.back()->count(), 0.f, blobs_.back()->mutable_cpu_data());
    }
  }
  LAYER_REQUIRE(
      blobs_.size() == 3,
      "expected 3 parameter blobs (mean sum, variance sum, scale factor), got " << blobs_.size());
  LAYER_REQUIRE(
      blobs_[0]->count() == channels_ && blobs_[1]->count() == channels_ && blobs_[2]->count() == 1,
      "the statistics blobs " << blobs_[0]->shape_string() << ", " << blobs_[1]->shape_string()
                              << ", " << blobs_[2]->shape_string() << " do not fit the "
                              << channels_ << " channels of the bottom "
                              << bottom[0]->shape_string() << " (expected (" << channels_ << "), ("
                              << channels_ << "), (1))");
  // The statistics are not learned: pin their learning rate to 0, as Caffe does.
  for (int i = 0; i < static_cast<int>(blobs_.size()); ++i) {
    if (layer_param_->param_size() == i) {
      layer_param_->add_param()->set_lr_mult(0.f);
    } else {
      LAYER_REQUIRE(layer_param_->param(i).lr_mult() == 0.f,
                    "param " << i << " has lr_mult " << layer_param_->param(i).lr_mult()
                             << ", but the batch statistics cannot be learned (use lr_mult: "
                                "0, or a Scale layer for a learned scale and shift)");
    }
  }
  param_propagate_down_.assign(blobs_.size(), false);
  mean_.resize(channels_);
  inv_std_.resize(channels_);
  var_.resize(channels_);
  sum_a_.resize(channels_);
  sum_b_.resize(channels_);
}

void BatchNormLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  LAYER_REQUIRE(x.num_axes() >= 1 && ChannelsOf(x) == channels_,
                "the bottom " << x.shape_string() << " does not have the " << channels_
                              << " channels (axis 1) the layer was set up with");
  if (top[0] != bottom[0]) top[0]->ReshapeLike(x);
  num_ = x.shape(0);
  spatial_ = x.count() == 0 ? 0 : x.count() / (num_ * channels_);
  if (!use_global_stats_) x_norm_.ReshapeLike(x);
}

void BatchNormLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const int channels = channels_, num = num_, spatial = spatial_;
  const int64_t stride = static_cast<int64_t>(channels) * spatial;  // one sample
  const int64_t m = static_cast<int64_t>(num) * spatial;            // elements per channel
  float* mean = mean_.data();
  float* inv_std = inv_std_.data();
  const float eps = eps_;

  if (use_global_stats_) {
    const float stored = blobs_[2]->cpu_data()[0];
    const float factor = stored == 0.f ? 0.f : 1.f / stored;
    const float* mean_sum = blobs_[0]->cpu_data();
    const float* var_sum = blobs_[1]->cpu_data();
    for (int c = 0; c < channels; ++c) {
      mean[c] = factor * mean_sum[c];
      inv_std[c] = 1.f / std::sqrt(factor * var_sum[c] + eps);
    }
  } else {
    LAYER_REQUIRE(
        m > 0, "cannot compute batch statistics of an empty bottom " << bottom[0]->shape_string());
    // Two passes per channel (mean, then the mean of squared deviations), as Caffe.
    float* var = var_.data();
    const int64_t grain = std::max<int64_t>(1, kGrain / m);
    parallel_for(channels, grain, [=](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        double sum = 0;
        for (int n = 0; n < num; ++n) {
          const float* xr = x + n * stride + c * spatial;
          float part = 0.f;
#pragma omp simd reduction(+ : part)
          for (int s = 0; s < spatial; ++s) part += xr[s];
          sum += part;
        }
        const float mu = static_cast<float>(sum / static_cast<double>(m));
        double sq = 0;
        for (int n = 0; n < num; ++n) {
          const float* xr = x + n * stride + c * spatial;
          float part = 0.f;
#pragma omp simd reduction(+ : part)
          for (int s = 0; s < spatial; ++s) {
            const float d = xr[s] - mu;
            part += d * d;
          }
          sq += part;
        }
        mean[c] = mu;
        var[c] = static_cast<float>(sq / static_cast<double>(m));
      }
    });
    // Running sums.
    const float f = moving_average_fraction_;
    float* factor = blobs_[2]->mutable_cpu_data();
    factor[0] = factor[0] * f + 1.f;
    const float correction = m > 1 ? static_cast<float>(m) / static_cast<float>(m - 1) : 1.f;
    float* mean_sum = blobs_[0]->mutable_cpu_data();
    float* var_sum = blobs_[1]->mutable_cpu_data();
    for (int c = 0; c < channels; ++c) {
      mean_sum[c] = mean[c] + f * mean_sum[c];
      var_sum[c] = correction * var[c] + f * var_sum[c];
      inv_std[c] = 1.f / std::sqrt(var[c] + eps);
    }
  }

  // Normalise, one (n, c) row of `spatial` elements at a time.
  float* saved = use_global_stats_ ? nullptr : x_norm_.mutable_cpu_data();
  const int64_t rows = static_cast<int64_t>(num) * channels;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max(spatial, 1));
  parallel_for(rows, grain, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int c = static_cast<int>(r % channels);
      const float mu = mean[c], k = inv_std[c];
      const float* xr = x + r * spatial;
      float* yr = y + r * spatial;
#pragma omp simd
      for (int s = 0; s < spatial; ++s) yr[s] = (xr[s] - mu) * k;
      if (saved) std::copy(yr, yr + spatial, saved + r * spatial);
    }
  });
}

void BatchNormLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();  // may be dy itself (in place)
  const int channels = channels_, num = num_, spatial = spatial_;
  const int64_t stride = static_cast<int64_t>(channels) * spatial;
  const int64_t rows = static_cast<int64_t>(num) * channels;
  const int64_t row_grain = std::max<int64_t>(1, kGrain / std::max(spatial, 1));
  const float* inv_std = inv_std_.data();

  if (use_global_stats_) {
    parallel_for(rows, row_grain, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float k = inv_std[r % channels];
        const float* gr = dy + r * spatial;
        float* dr = dx + r * spatial;
#pragma omp simd
        for (int s = 0; s < spatial; ++s) dr[s] = gr[s] * k;
      }
    });
    return;
  }

  // Per channel: A = sum dy, B = sum dy * y (all reads happen before dx is written).
  const float* y = x_norm_.cpu_data();
  const int64_t m = static_cast<int64_t>(num) * spatial;
  double* sum_a = sum_a_.data();
  double* sum_b = sum_b_.data();
  parallel_for(channels, std::max<int64_t>(1, kGrain / m), [=](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double a = 0, b = 0;
      for (int n = 0; n < num; ++n) {
        const int64_t offset = n * stride + c * spatial;
        const float* gr = dy + offset;
        const float* yr = y + offset;
        float pa = 0.f, pb = 0.f;
#pragma omp simd reduction(+ : pa, pb)
        for (int s = 0; s < spatial; ++s) {
          pa += gr[s];
          pb += gr[s] * yr[s];
        }
        a += pa;
        b += pb;
      }
      sum_a[c] = a / static_cast<double>(m);
      sum_b[c] = b / static_cast<double>(m);
    }
  });
  parallel_for(rows, row_grain, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int c = static_cast<int>(r % channels);
      const float mean_dy = static_cast<float>(sum_a[c]);
      const float mean_dyy = static_cast<float>(sum_b[c]);
      const float k = inv_std[c];
      const float* gr = dy + r * spatial;
      const float* yr = y + r * spatial;
      float* dr = dx + r * spatial;
#pragma omp simd
      for (int s = 0; s < spatial; ++s) dr[s] = (gr[s] - mean_dy - yr[s] * mean_dyy) * k;
    }
  });
}

REGISTER_LAYER_CLASS(BatchNorm);

}  // namespace crema
