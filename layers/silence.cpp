#include "layers/silence.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void SilenceLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  for (size_t i = 0; i < bottom.size(); ++i)
    if (propagate_down[i]) cpu_set(bottom[i]->count(), 0.f, bottom[i]->mutable_cpu_diff());
}

REGISTER_LAYER_CLASS(Silence);

}  // namespace crema
