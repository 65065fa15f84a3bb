#include "layers/mvn.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = 32768;  // elements per thread, at least
}

MVNLayer::MVNLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::MVNParameter& p = param.mvn_param();
  normalize_variance_ = p.normalize_variance();
  across_channels_ = p.across_channels();
  eps_ = p.eps();
}

void MVNLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  LAYER_REQUIRE(x.num_axes() <= 4,
                "works on blobs of at most 4 axes (Caffe's legacy N x C x "
                "H x W view), got "
                    << x.shape_string());
  const int num = x.num(), channels = x.channels(), height = x.height(), width = x.width();
  // Caffe's MVN always gives its top the 4-axis legacy shape (in place too).
  top[0]->Reshape(num, channels, height, width);
  rows_ = across_channels_ ? num : num * channels;
  dim_ = rows_ == 0 ? 0 : x.count() / rows_;
  mean_.resize(rows_);
  inv_std_.resize(rows_);
}

void MVNLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const int dim = dim_;
  const bool normalize = normalize_variance_;
  const float eps = eps_;
  float* mean = mean_.data();
  float* inv_std = inv_std_.data();
  parallel_for(rows_, std::max<int64_t>(1, kGrain / std::max(dim, 1)),
               [=](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const float* xr = x + r * dim;
                   float* yr = y + r * dim;
                   double sum = 0;
#pragma omp simd reduction(+ : sum)
                   for (int i = 0; i < dim; ++i) sum += xr[i];
                   const float mu = static_cast<float>(sum / dim);
                   float k = 1.f;
                   if (normalize) {
                     double sq = 0;
#pragma omp simd reduction(+ : sq)
                     for (int i = 0; i < dim; ++i) {
                       const float d = xr[i] - mu;
                       sq += static_cast<double>(d) * d;
                     }
                     k = 1.f / (std::sqrt(static_cast<float>(sq / dim)) + eps);
                   }
                   mean[r] = mu;
                   inv_std[r] = k;
                   if (normalize) {
#pragma omp simd
                     for (int i = 0; i < dim; ++i) yr[i] = (xr[i] - mu) * k;
                   } else {
#pragma omp simd
                     for (int i = 0; i < dim; ++i) yr[i] = xr[i] - mu;
                   }
                 }
               });
}

void MVNLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const bool in_place = top[0] == bottom[0];
  const float* dy = top[0]->cpu_diff();
  const float* x = bottom[0]->cpu_data();  // y itself when in place
  float* dx = bottom[0]->mutable_cpu_diff();
  const int dim = dim_;
  const bool normalize = normalize_variance_;
  const float* mean = mean_.data();
  const float* inv_std = inv_std_.data();
  parallel_for(rows_, std::max<int64_t>(1, kGrain / std::max(dim, 1)),
               [=](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const float* gr = dy + r * dim;
                   const float* xr = x + r * dim;
                   float* dr = dx + r * dim;
                   if (!normalize) {
                     double sum = 0;
#pragma omp simd reduction(+ : sum)
                     for (int i = 0; i < dim; ++i) sum += gr[i];
                     const float mean_dy = static_cast<float>(sum / dim);
#pragma omp simd
                     for (int i = 0; i < dim; ++i) dr[i] = gr[i] - mean_dy;
                     continue;
                   }
                   // y from the input (or, in place, the top); a = 0 and k = 1 read y as is.
                   const float mu = in_place ? 0.f : mean[r];
                   const float ky = in_place ? 1.f : inv_std[r];
                   double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
                   for (int i = 0; i < dim; ++i) {
                     const float yi = (xr[i] - mu) * ky;
                     sa += gr[i];
                     sb += static_cast<double>(gr[i]) * yi;
                   }
                   const float mean_dy = static_cast<float>(sa / dim);
                   const float mean_dyy = static_cast<float>(sb / dim);
                   const float k = inv_std[r];
#pragma omp simd
                   for (int i = 0; i < dim; ++i) {
                     const float yi = (xr[i] - mu) * ky;
                     dr[i] = (gr[i] - mean_dy - yi * mean_dyy) * k;
                   }
                 }
               });
}

REGISTER_LAYER_CLASS(MVN);

}  // namespace crema
