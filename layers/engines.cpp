#include "layers/engines.hpp"

#include "crema.pb.h"
#include "layers/convolution.hpp"
#include "layers/depthwise_convolution.hpp"

namespace crema {

std::shared_ptr<Layer> CreateConvolutionLayer(const pb::LayerParameter& param) {
  // Only a grouped convolution can be depthwise (group == input channels); the channel
  // count is known at SetUp, where DepthwiseConvolutionLayer makes the final choice and
  // logs it (VLOG(1)).
  if (param.convolution_param().group() > 1)
    return std::make_shared<DepthwiseConvolutionLayer>(param);
  return std::make_shared<ConvolutionLayer>(param);
}

}  // namespace crema
