#include "layers/slice.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "crema/syncedmem.hpp"

namespace crema {

SliceLayer::SliceLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::SliceParameter& p = param.slice_param();
  has_axis_ = p.has_axis();
  has_slice_dim_ = p.has_slice_dim();
  axis_param_ = p.axis();
  slice_dim_ = static_cast<int>(p.slice_dim());
  for (int i = 0; i < p.slice_point_size(); ++i)
    slice_points_.push_back(static_cast<int>(p.slice_point(i)));
}

void SliceLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(!(has_axis_ && has_slice_dim_),
                "give either axis or the deprecated slice_dim, not both");
  LAYER_REQUIRE(slice_points_.empty() || slice_points_.size() + 1 == top.size(),
                "has " << slice_points_.size() << " slice_point values for " << top.size()
                       << " tops; give exactly one fewer than the tops (or none)");
}

void SliceLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const int axes = x.num_axes();
  if (has_slice_dim_) {
    LAYER_REQUIRE(
        slice_dim_ >= 0 && slice_dim_ < axes,
        "slice_dim " << slice_dim_ << " is out of range for bottom shape " << x.shape_string());
    axis_ = slice_dim_;
  } else {
    LAYER_REQUIRE(
        axis_param_ >= -axes && axis_param_ < axes,
        "axis " << axis_param_ << " is out of range for bottom shape " << x.shape_string());
    axis_ = x.CanonicalAxisIndex(axis_param_);
  }
  const int dim = x.shape(axis_);
  const int tops = static_cast<int>(top.size());
  std::vector<int> shape = x.shape();
  outer_ = x.count(0, axis_);
  inner_ = x.count(axis_ + 1);
  if (!slice_points_.empty()) {
    int prev = 0;
    for (size_t k = 0; k <= slice_points_.size(); ++k) {
      const int point = k < slice_points_.size() ? slice_points_[k] : dim;
      if (k < slice_points_.size())
        LAYER_REQUIRE(point > prev && point < dim,
                      "slice_point " << point << " (number " << k
                                     << ") must be greater than the previous point (" << prev
                                     << ") and less than the sliced dimension " << dim << " (axis "
                                     << axis_ << " of bottom shape " << x.shape_string() << ")");
      shape[axis_] = point - prev;
      top[k]->Reshape(shape);
      prev = point;
    }
  } else {
    LAYER_REQUIRE(dim % tops == 0, "the sliced dimension "
                                       << dim << " (axis " << axis_ << " of bottom shape "
                                       << x.shape_string() << ") is not divisible by the " << tops
                                       << " tops");
    shape[axis_] = dim / tops;
    for (Blob* t : top) t->Reshape(shape);
  }
  if (tops == 1) {
    // Pass-through: the top is a view of the bottom (data and diff), as in Reshape.
    top[0]->ShareData(x);
    top[0]->ShareDiff(x);
  }
}

void SliceLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  if (top.size() == 1) return;  // a view since Reshape
  const float* x = bottom[0]->cpu_data();
  const int64_t dim = bottom[0]->shape(axis_);
  int64_t offset = 0;
  for (Blob* t : top) {
    float* y = t->mutable_cpu_data();
    const int64_t block = int64_t{t->shape(axis_)} * inner_;
    for (int64_t o = 0; o < outer_; ++o)
      cpu_copy(block, x + (o * dim + offset) * inner_, y + o * block);
    offset += t->shape(axis_);
  }
}

void SliceLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0] || top.size() == 1) return;  // one top: a view since Reshape
  float* dx = bottom[0]->mutable_cpu_diff();
  const int64_t dim = bottom[0]->shape(axis_);
  int64_t offset = 0;
  for (Blob* t : top) {
    const float* dy = t->cpu_diff();
    const int64_t block = int64_t{t->shape(axis_)} * inner_;
    for (int64_t o = 0; o < outer_; ++o)
      cpu_copy(block, dy + o * block, dx + (o * dim + offset) * inner_);
    offset += t->shape(axis_);
  }
}

REGISTER_LAYER_CLASS(Slice);

}  // namespace crema
