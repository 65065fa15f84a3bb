#include "layers/filter.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

bool FilterLayer::AllowForceBackward(int bottom_index) const {
  return num_bottoms_ == 0 || bottom_index != num_bottoms_ - 1;
}

void FilterLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(top.size() == bottom.size() - 1, "needs one top per filtered bottom ("
                                                     << bottom.size() - 1
                                                     << " bottoms plus the selector), got "
                                                     << top.size() << " tops");
  num_bottoms_ = static_cast<int>(bottom.size());
  first_reshape_ = true;
}

void FilterLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& sel = *bottom.back();
  LAYER_REQUIRE(sel.num_axes() >= 1,
                "the selector (last bottom) needs a batch axis, got shape " << sel.shape_string());
  for (int a = 1; a < sel.num_axes(); ++a)
    LAYER_REQUIRE(sel.shape(a) == 1,
                  "the selector (last bottom) must have size 1 on every axis "
                  "after the first, got shape "
                      << sel.shape_string());
  for (size_t i = 0; i + 1 < bottom.size(); ++i)
    LAYER_REQUIRE(bottom[i]->num_axes() >= 1 && bottom[i]->shape(0) == sel.shape(0),
                  "bottom " << i << " (shape " << bottom[i]->shape_string()
                            << ") must have as many rows as the selector (shape "
                            << sel.shape_string() << ")");
  const float* s = sel.cpu_data();
  selected_.clear();
  for (int n = 0; n < sel.shape(0); ++n)
    if (s[n] != 0.f) selected_.push_back(n);
  int rows = static_cast<int>(selected_.size());
  if (first_reshape_) {
    rows = sel.shape(0);
    first_reshape_ = false;
  }
  for (size_t t = 0; t < top.size(); ++t) {
    std::vector<int> shape = bottom[t]->shape();
    shape[0] = rows;
    top[t]->Reshape(shape);
  }
}

void FilterLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  for (size_t t = 0; t < top.size(); ++t) {
    const long dim = bottom[t]->count(1);
    const float* x = bottom[t]->cpu_data();
    float* y = top[t]->mutable_cpu_data();
    for (size_t j = 0; j < selected_.size(); ++j)
      cpu_copy(dim, x + selected_[j] * dim, y + j * dim);
  }
}

void FilterLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (propagate_down.back()) LAYER_THROW("cannot backpropagate to the selector (last bottom)");
  for (size_t t = 0; t < top.size(); ++t) {
    if (!propagate_down[t]) continue;
    const long dim = bottom[t]->count(1);
    const float* dy = top[t]->cpu_diff();
    float* dx = bottom[t]->mutable_cpu_diff();
    cpu_set(bottom[t]->count(), 0.f, dx);
    for (size_t j = 0; j < selected_.size(); ++j)
      cpu_copy(dim, dy + j * dim, dx + selected_[j] * dim);
  }
}

REGISTER_LAYER_CLASS(Filter);

}  // namespace crema
