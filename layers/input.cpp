#include "layers/input.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

void InputLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::InputParameter& param = layer_param_->input_param();
  const int num_top = static_cast<int>(top.size());
  const int num_shape = param.shape_size();
  LAYER_REQUIRE(num_shape == 0 || num_shape == 1 || num_shape == num_top,
                "input_param must give 'shape' once, once per top, or not at all; got "
                    << num_shape << " shapes for " << num_top << " tops");
  if (num_shape == 0) return;
  for (int i = 0; i < num_top; ++i) {
    const pb::BlobShape& shape = param.shape(num_shape == 1 ? 0 : i);
    try {
      top[i]->Reshape(shape);
    } catch (const Error& e) {
      LAYER_THROW("input_param.shape for top " << i << ": " << e.what());
    }
  }
}

REGISTER_LAYER_CLASS(Input);

}  // namespace crema
