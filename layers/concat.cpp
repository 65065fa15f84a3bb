#include "layers/concat.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "crema/syncedmem.hpp"

namespace crema {

ConcatLayer::ConcatLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::ConcatParameter& p = param.concat_param();
  has_axis_ = p.has_axis();
  has_concat_dim_ = p.has_concat_dim();
  axis_param_ = p.axis();
  concat_dim_ = static_cast<int>(p.concat_dim());
}

void ConcatLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(!(has_axis_ && has_concat_dim_),
                "give either axis or the deprecated concat_dim, not both");
}

void ConcatLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& first = *bottom[0];
  const int axes = first.num_axes();
  if (has_concat_dim_) {
    LAYER_REQUIRE(concat_dim_ >= 0 && concat_dim_ < axes,
                  "concat_dim " << concat_dim_ << " is out of range for bottom 0 of shape "
                                << first.shape_string());
    axis_ = concat_dim_;
  } else {
    LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < axes,
                  "axis " << axis_param_ << " is out of range for bottom 0 of shape "
                          << first.shape_string());
    axis_ = first.CanonicalAxisIndex(axis_param_);
  }
  std::vector<int> shape = first.shape();
  for (size_t k = 1; k < bottom.size(); ++k) {
    const Blob& b = *bottom[k];
    bool ok = b.num_axes() == axes;
    for (int j = 0; ok && j < axes; ++j) ok = j == axis_ || b.shape(j) == shape[j];
    LAYER_REQUIRE(ok, "all bottoms must have the same shape except on the concatenation axis "
                          << axis_ << ": bottom 0 has shape " << first.shape_string() << ", bottom "
                          << k << " has shape " << b.shape_string());
    shape[axis_] += b.shape(axis_);
  }
  outer_ = first.count(0, axis_);
  inner_ = first.count(axis_ + 1);
  top[0]->Reshape(shape);
  if (bottom.size() == 1) {
    // Pass-through: the top is a view of the bottom (data and diff), as in Reshape.
    top[0]->ShareData(*bottom[0]);
    top[0]->ShareDiff(*bottom[0]);
  }
}

void ConcatLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  if (bottom.size() == 1) return;  // a view since Reshape
  float* y = top[0]->mutable_cpu_data();
  const int64_t top_axis = top[0]->shape(axis_);
  int64_t offset = 0;
  for (Blob* b : bottom) {
    const float* x = b->cpu_data();
    const int64_t block = int64_t{b->shape(axis_)} * inner_;
    for (int64_t o = 0; o < outer_; ++o)
      cpu_copy(block, x + o * block, y + (o * top_axis + offset) * inner_);
    offset += b->shape(axis_);
  }
}

void ConcatLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (bottom.size() == 1) return;  // a view since Reshape
  const float* dy = top[0]->cpu_diff();
  const int64_t top_axis = top[0]->shape(axis_);
  int64_t offset = 0;
  for (size_t k = 0; k < bottom.size(); ++k) {
    Blob* b = bottom[k];
    const int64_t block = int64_t{b->shape(axis_)} * inner_;
    if (propagate_down[k]) {
      float* dx = b->mutable_cpu_diff();
      for (int64_t o = 0; o < outer_; ++o)
        cpu_copy(block, dy + (o * top_axis + offset) * inner_, dx + o * block);
    }
    offset += b->shape(axis_);
  }
}

REGISTER_LAYER_CLASS(Concat);

}  // namespace crema
