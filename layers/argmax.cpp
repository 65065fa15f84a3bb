#include "layers/argmax.hpp"

#include <algorithm>
#include <functional>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

ArgMaxLayer::ArgMaxLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::ArgMaxParameter& p = param.argmax_param();
  out_max_val_ = p.out_max_val();
  top_k_ = static_cast<int>(p.top_k());
  has_axis_ = p.has_axis();
  axis_param_ = p.axis();
}

void ArgMaxLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(top_k_ >= 1, "top_k must be at least 1, got " << top_k_);
}

void ArgMaxLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const int axes = x.num_axes();
  std::vector<int> shape;
  if (has_axis_) {
    LAYER_REQUIRE(
        axis_param_ >= -axes && axis_param_ < axes,
        "axis " << axis_param_ << " is out of range for bottom shape " << x.shape_string());
    axis_ = x.CanonicalAxisIndex(axis_param_);
    LAYER_REQUIRE(top_k_ <= x.shape(axis_), "top_k " << top_k_ << " exceeds the size "
                                                     << x.shape(axis_) << " of axis " << axis_
                                                     << " of the bottom " << x.shape_string());
    shape = x.shape();
    shape[axis_] = top_k_;
  } else {
    LAYER_REQUIRE(axes >= 1, "the bottom needs at least one axis, got shape " << x.shape_string());
    LAYER_REQUIRE(top_k_ <= x.count(1),
                  "top_k " << top_k_ << " exceeds the number of values per example " << x.count(1)
                           << " (bottom " << x.shape_string() << ")");
    shape.assign(std::max(3, axes), 1);
    shape[0] = x.shape(0);
    shape[1] = out_max_val_ ? 2 : 1;
    shape[2] = top_k_;
  }
  top[0]->Reshape(shape);
  const int dim = has_axis_ ? x.shape(axis_) : x.count(1);
  scratch_.resize(dim);
}

void ArgMaxLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const float* in = x.cpu_data();
  float* out = top[0]->mutable_cpu_data();
  const int dim = has_axis_ ? x.shape(axis_) : x.count(1);
  if (dim == 0) return;
  const int inner = has_axis_ ? x.count(axis_ + 1) : 1;
  const int rows = x.count() / dim;  // (outer, inner) pairs
  const int k = top_k_;
  std::vector<std::pair<float, int>>& v = scratch_;
  for (int r = 0; r < rows; ++r) {
    const int o = r / inner, i = r % inner;
    const float* src = in + static_cast<long>(o) * dim * inner + i;
    for (int j = 0; j < dim; ++j) v[j] = {src[static_cast<long>(j) * inner], j};
    std::partial_sort(v.begin(), v.begin() + k, v.end(), std::greater<std::pair<float, int>>());
    if (has_axis_) {
      float* dst = out + static_cast<long>(o) * k * inner + i;
      for (int j = 0; j < k; ++j)
        dst[static_cast<long>(j) * inner] =
            out_max_val_ ? v[j].first : static_cast<float>(v[j].second);
    } else if (out_max_val_) {
      float* dst = out + 2L * r * k;
      for (int j = 0; j < k; ++j) {
        dst[j] = static_cast<float>(v[j].second);
        dst[k + j] = v[j].first;
      }
    } else {
      float* dst = out + static_cast<long>(r) * k;
      for (int j = 0; j < k; ++j) dst[j] = static_cast<float>(v[j].second);
    }
  }
}

void ArgMaxLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (propagate_down[0]) LAYER_THROW("cannot backpropagate (argmax has no gradient)");
}

REGISTER_LAYER_CLASS(ArgMax);

}  // namespace crema
