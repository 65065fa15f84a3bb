#include "layers/bias.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace broadcast {

namespace {
// Elements per thread below which a loop stays on the calling thread.
constexpr int64_t kGrain = 32768;

int CheckedAxis(const Layer& layer, const Blob& x, int axis, const char* what) {
  const int axes = x.num_axes();
  CREMA_REQUIRE(axis >= -axes && axis < axes, layer.error_prefix()
                                                  << "axis " << axis << " (for the " << what
                                                  << ") is out of range for bottom[0] shape "
                                                  << x.shape_string());
  return axis < 0 ? axis + axes : axis;
}
}  // namespace

std::vector<int> ParamShape(const Layer& layer, const Blob& x, int axis, int num_axes,
                            const char* what) {
  const int start = CheckedAxis(layer, x, axis, what);
  CREMA_REQUIRE(num_axes >= -1, layer.error_prefix()
                                    << "num_axes must be non-negative, or -1 to extend to the "
                                       "last axis; got "
                                    << num_axes);
  const int end = num_axes == -1 ? x.num_axes() : start + num_axes;
  CREMA_REQUIRE(end <= x.num_axes(),
                layer.error_prefix() << "the " << what << " spans axes [" << start << ", " << end
                                     << "), past the end of bottom[0] shape " << x.shape_string());
  return std::vector<int>(x.shape().begin() + start, x.shape().begin() + end);
}

Geometry Compute(const Layer& layer, const Blob& x, const Blob& p, int axis, const char* what) {
  Geometry g;
  // A scalar lines up with anything; axis 0 makes outer 1 (the cheapest layout).
  g.axis = p.num_axes() == 0 ? 0 : CheckedAxis(layer, x, axis, what);
  bool fits = g.axis + p.num_axes() <= x.num_axes();
  for (int i = 0; fits && i < p.num_axes(); ++i) fits = x.shape(g.axis + i) == p.shape(i);
  CREMA_REQUIRE(fits, layer.error_prefix() << "the " << what << " shape " << p.shape_string()
                                           << " does not match bottom[0] shape " << x.shape_string()
                                           << " from axis " << g.axis);
  g.outer = x.count(0, g.axis);
  g.dim = p.count();
  g.inner = x.count(g.axis + p.num_axes());
  return g;
}

void Apply(const Geometry& g, const float* x, const float* a, const float* b, float* y,
           float* copy) {
  const int64_t rows = static_cast<int64_t>(g.outer) * g.dim;
  const int dim = g.dim, inner = g.inner;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max(inner, 1));
  parallel_for(rows, grain, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int d = static_cast<int>(r % dim);
      const float* xr = x + r * inner;
      float* yr = y + r * inner;
      if (copy) {
        float* cr = copy + r * inner;
#pragma omp simd
        for (int i = 0; i < inner; ++i) cr[i] = xr[i];
      }
      const float scale = a ? a[d] : 1.f, shift = b ? b[d] : 0.f;
      if (!a) {
#pragma omp simd
        for (int i = 0; i < inner; ++i) yr[i] = xr[i] + shift;
      } else if (!b) {
#pragma omp simd
        for (int i = 0; i < inner; ++i) yr[i] = scale * xr[i];
      } else {
#pragma omp simd
        for (int i = 0; i < inner; ++i) yr[i] = scale * xr[i] + shift;
      }
    }
  });
}

void Reduce(const Geometry& g, const float* u, const float* v, float* r, bool accumulate,
            float* r_plain) {
  const int outer = g.outer, dim = g.dim, inner = g.inner;
  const int64_t per_d = static_cast<int64_t>(outer) * inner;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(per_d, 1));
  parallel_for(dim, grain, [=](int64_t begin, int64_t end) {
    for (int64_t d = begin; d < end; ++d) {
      double sum = 0, plain = 0;
      for (int o = 0; o < outer; ++o) {
        const int64_t offset = (static_cast<int64_t>(o) * dim + d) * inner;
        const float* ur = u + offset;
        float part = 0.f;
        if (v && r_plain) {
          const float* vr = v + offset;
          float part_plain = 0.f;
#pragma omp simd reduction(+ : part, part_plain)
          for (int i = 0; i < inner; ++i) {
            part += ur[i] * vr[i];
            part_plain += ur[i];
          }
          plain += part_plain;
        } else if (v) {
          const float* vr = v + offset;
#pragma omp simd reduction(+ : part)
          for (int i = 0; i < inner; ++i) part += ur[i] * vr[i];
        } else {
#pragma omp simd reduction(+ : part)
          for (int i = 0; i < inner; ++i) part += ur[i];
        }
        sum += part;
      }
      r[d] = accumulate ? r[d] + static_cast<float>(sum) : static_cast<float>(sum);
      if (r_plain) r_plain[d] += static_cast<float>(plain);
    }
  });
}

}  // namespace broadcast

BiasLayer::BiasLayer(const pb::LayerParameter& param) : Layer(param) {
  axis_param_ = param.bias_param().axis();
  num_axes_ = param.bias_param().num_axes();
}

void BiasLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  if (bottom.size() > 1) return;  // the bias is bottom[1]
  const std::vector<int> shape =
      broadcast::ParamShape(*this, *bottom[0], axis_param_, num_axes_, "bias");
  if (blobs_.empty()) {
    blobs_.push_back(std::make_shared<Blob>(shape));
    CreateFiller(layer_param_->bias_param().filler())->Fill(blobs_[0].get());
  }
  LAYER_REQUIRE(blobs_.size() == 1, "expected 1 parameter blob (the bias), got " << blobs_.size());
  param_propagate_down_.resize(blobs_.size(), true);
}

void BiasLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& bias = bottom.size() > 1 ? *bottom[1] : *blobs_[0];
  geometry_ = broadcast::Compute(*this, *bottom[0], bias, axis_param_, "bias");
  if (top[0] != bottom[0]) top[0]->ReshapeLike(*bottom[0]);
}

void BiasLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* b = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->cpu_data();
  broadcast::Apply(geometry_, bottom[0]->cpu_data(), nullptr, b, top[0]->mutable_cpu_data());
}

void BiasLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();
  const bool learned = bottom.size() == 1;
  if (learned ? param_propagate_down(0) : propagate_down[1]) {
    Blob* bias = learned ? blobs_[0].get() : bottom[1];
    broadcast::Reduce(geometry_, dy, nullptr, bias->mutable_cpu_diff(), learned);
  }
  // In place, dx already is dy.
  if (propagate_down[0] && top[0] != bottom[0])
    cpu_copy(bottom[0]->count(), dy, bottom[0]->mutable_cpu_diff());
}

REGISTER_LAYER_CLASS(Bias);

}  // namespace crema
