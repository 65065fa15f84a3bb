#include "layers/split.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void SplitLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  for (size_t i = 0; i < top.size(); ++i) {
    LAYER_REQUIRE(top[i] != bottom[0],
                  "cannot be computed in place (top " << i << " is the bottom)");
    top[i]->ReshapeLike(*bottom[0]);
    top[i]->ShareData(*bottom[0]);
  }
}

void SplitLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  // Re-share in case the bottom's storage was replaced since Reshape.
  for (Blob* t : top) t->ShareData(*bottom[0]);
}

void SplitLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int count = bottom[0]->count();
  float* dx = bottom[0]->mutable_cpu_diff();
  if (top.size() == 1) {
    cpu_copy(count, top[0]->cpu_diff(), dx);
    return;
  }
  cpu_add(count, top[0]->cpu_diff(), top[1]->cpu_diff(), dx);
  for (size_t i = 2; i < top.size(); ++i) cpu_add(count, dx, top[i]->cpu_diff(), dx);
}

REGISTER_LAYER_CLASS(Split);

}  // namespace crema
