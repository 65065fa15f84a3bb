#include "layers/engines.hpp"

#include "crema.pb.h"
#include "layers/convolution.hpp"
#include "layers/depthwise_convolution.hpp"
#include "layers/elu.hpp"
#include "layers/lrn.hpp"
#include "layers/pooling.hpp"
#include "layers/relu.hpp"
#include "layers/sigmoid.hpp"
#include "layers/softmax.hpp"
#include "layers/swish.hpp"
#include "layers/tanh.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cudnn_layers.hpp"
#include "src/cudnn_adapter.hpp"
#endif

// BatchNorm is not on cuDNN: crema's running sums (mean_sum, var_sum with the m / (m - 1)
// correction, the factor) must stay exactly as the CPU code makes them, so cuDNN could only
// replace the normalisation; its backward needs the input x, but Caffe nets run BatchNorm in
// place (x is overwritten by y), which would cost a copy of every input; and m = 1 (crema:
// correction 1) has no cuDNN equivalent. crema's kernels are used in every case.

namespace crema {

namespace {

// The engine values shared by every *Parameter's Engine enum.
constexpr int kDefault = 0, kCaffe = 1, kCudnn = 2;

// Whether to create the cuDNN layer, given the engine asked for and why cuDNN cannot
// compute these parameters like crema (empty when it can). Logs a fallback.
bool use_cudnn(const pb::LayerParameter& param, int engine, const std::string& unsupported) {
  if (engine == kCaffe) return false;
  std::string reason = unsupported;
#ifdef CREMA_WITH_CUDA
  if (reason.empty() && !cudnn::Available()) reason = "this crema was built without cuDNN";
#else
  if (reason.empty()) reason = "this crema was built without CUDA";
#endif
  if (reason.empty()) return true;
  LogEngineFallback(param, engine == kCudnn, reason);
  return false;
}

}  // namespace

void LogEngineFallback(const pb::LayerParameter& param, bool cudnn_asked,
                       const std::string& reason) {
  if (cudnn_asked)
    LOG(INFO) << "layer '" << param.name() << "' (" << param.type()
              << "): engine CUDNN asked for, using crema's own GPU kernels: " << reason;
  else
    VLOG(1) << "layer '" << param.name() << "' (" << param.type()
            << "): using crema's own GPU kernels, not cuDNN: " << reason;
}

std::shared_ptr<Layer> CreateConvolutionLayer(const pb::LayerParameter& param) {
  // Only a grouped convolution can be depthwise (group == input channels); the channel
  // count is known at SetUp, where DepthwiseConvolutionLayer makes the final choice and
  // logs it (VLOG(1)). On the GPU a ConvolutionLayer runs cuDNN, except that a 1x1 one
  // (stride 1, no padding, one group) runs as cuBLAS GEMMs where its first forward times
  // them faster (layers/convolution.cu; CREMA_CONV_1X1_GEMM forces either).
  if (param.convolution_param().group() > 1)
    return std::make_shared<DepthwiseConvolutionLayer>(param);
  return std::make_shared<ConvolutionLayer>(param);
}

// In CPU-only builds there are no cuDNN layers: use_cudnn() is always false there.
#ifdef CREMA_WITH_CUDA
#define CREMA_CUDNN_LAYER(Name) return std::make_shared<Cudnn##Name##Layer>(param)
#else
#define CREMA_CUDNN_LAYER(Name) return std::make_shared<Name##Layer>(param)
#endif

std::shared_ptr<Layer> CreatePoolingLayer(const pb::LayerParameter& param) {
  const pb::PoolingParameter& p = param.pooling_param();
  // The output-size and mask-top conditions need the shapes: CudnnPoolingLayer::Reshape.
  const bool stochastic = p.pool() == pb::PoolingParameter::STOCHASTIC;
  if (use_cudnn(param, p.engine(), stochastic ? "cuDNN has no STOCHASTIC pooling" : ""))
    CREMA_CUDNN_LAYER(Pooling);
  return std::make_shared<PoolingLayer>(param);
}

std::shared_ptr<Layer> CreateSoftmaxLayer(const pb::LayerParameter& param) {
  if (use_cudnn(param, param.softmax_param().engine(), "")) CREMA_CUDNN_LAYER(Softmax);
  return std::make_shared<SoftmaxLayer>(param);
}

std::shared_ptr<Layer> CreateReLULayer(const pb::LayerParameter& param) {
  const pb::ReLUParameter& p = param.relu_param();
  if (use_cudnn(param, p.engine(),
                p.negative_slope() != 0.f ? "cuDNN has no leaky ReLU (negative_slope != 0)" : ""))
    CREMA_CUDNN_LAYER(ReLU);
  return std::make_shared<ReLULayer>(param);
}

std::shared_ptr<Layer> CreateSigmoidLayer(const pb::LayerParameter& param) {
  if (use_cudnn(param, param.sigmoid_param().engine(), "")) CREMA_CUDNN_LAYER(Sigmoid);
  return std::make_shared<SigmoidLayer>(param);
}

std::shared_ptr<Layer> CreateTanHLayer(const pb::LayerParameter& param) {
  if (use_cudnn(param, param.tanh_param().engine(), "")) CREMA_CUDNN_LAYER(TanH);
  return std::make_shared<TanHLayer>(param);
}

std::shared_ptr<Layer> CreateELULayer(const pb::LayerParameter& param) {
  // cuDNN's ELU gradient tests the sign of y, not x: wrong for alpha < 0 (y > 0 for x < 0).
  if (use_cudnn(param, kDefault,
                param.elu_param().alpha() < 0.f ? "cuDNN's ELU gradient needs alpha >= 0" : ""))
    CREMA_CUDNN_LAYER(ELU);  // ELUParameter has no engine
  return std::make_shared<ELULayer>(param);
}

std::shared_ptr<Layer> CreateSwishLayer(const pb::LayerParameter& param) {
  if (use_cudnn(param, kDefault, "")) CREMA_CUDNN_LAYER(Swish);  // SwishParameter: no engine
  return std::make_shared<SwishLayer>(param);
}

std::shared_ptr<Layer> CreateLRNLayer(const pb::LayerParameter& param) {
  const pb::LRNParameter& p = param.lrn_param();
  std::string why;
  if (p.norm_region() != pb::LRNParameter::ACROSS_CHANNELS) {
    why = "cuDNN's LRN is ACROSS_CHANNELS only";
  } else {
#ifdef CREMA_WITH_CUDA
    cudnn::LRNSupported(static_cast<int>(p.local_size()), p.beta(), p.k(), &why);
#endif
  }
  if (use_cudnn(param, p.engine(), why)) CREMA_CUDNN_LAYER(LRN);
  return std::make_shared<LRNLayer>(param);
}

#undef CREMA_CUDNN_LAYER

}  // namespace crema
