#include "layers/batch_reindex.hpp"

#include <cstring>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void BatchReindexLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(
      bottom[1]->num_axes() == 1,
      "the indices (bottom 1) must have exactly one axis, got shape " << bottom[1]->shape_string());
  LAYER_REQUIRE(bottom[0]->num_axes() >= 1,
                "the data (bottom 0) needs a batch axis, got shape " << bottom[0]->shape_string());
  std::vector<int> shape = bottom[0]->shape();
  shape[0] = bottom[1]->shape(0);
  top[0]->Reshape(shape);
  inner_ = bottom[0]->count(1);
}

void BatchReindexLayer::CheckIndices(const BlobVec& bottom) const {
  const float* idx = bottom[1]->cpu_data();
  const int n = bottom[0]->shape(0);
  for (int m = 0; m < bottom[1]->count(); ++m)
    LAYER_REQUIRE(
        idx[m] >= 0 && idx[m] < n && idx[m] == static_cast<float>(static_cast<int>(idx[m])),
        "index " << idx[m] << " at position " << m << " is not a valid example of the batch of "
                 << n << " (bottom 0 " << bottom[0]->shape_string() << ")");
}

void BatchReindexLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  CheckIndices(bottom);
  const float* x = bottom[0]->cpu_data();
  const float* idx = bottom[1]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const long inner = inner_;
  for (int m = 0; m < bottom[1]->count(); ++m)
    cpu_copy(inner, x + static_cast<long>(idx[m]) * inner, y + m * inner);
}

void BatchReindexLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (propagate_down.size() > 1 && propagate_down[1])
    LAYER_THROW("cannot backpropagate to the indices (bottom 1)");
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  const float* idx = bottom[1]->cpu_data();
  float* dx = bottom[0]->mutable_cpu_diff();
  const long inner = inner_;
  cpu_set(bottom[0]->count(), 0.f, dx);
  for (int m = 0; m < bottom[1]->count(); ++m)
    cpu_axpy(static_cast<int>(inner), 1.f, dy + m * inner, dx + static_cast<long>(idx[m]) * inner);
}

REGISTER_LAYER_CLASS(BatchReindex);

}  // namespace crema
