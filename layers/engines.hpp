// Engine choice for layer types with more than one implementation. Each creator here is
// registered under the type string by the type's own .cpp:
//   REGISTER_LAYER_CREATOR(Convolution, CreateConvolutionLayer);   (layers/convolution.cpp)
#pragma once

#include <memory>

#include "crema/layer.hpp"

namespace crema {

// "Convolution": DepthwiseConvolutionLayer (direct kernel) when group > 1 — it decides at
// setup, once the input channel count is known, whether group == channels and otherwise
// runs the ordinary im2col + GEMM path — else ConvolutionLayer.
std::shared_ptr<Layer> CreateConvolutionLayer(const pb::LayerParameter& param);

}  // namespace crema
