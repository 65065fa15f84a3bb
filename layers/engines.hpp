// Engine choice for layer types with more than one implementation. Each creator here is
// registered under the type string by the type's own .cpp:
//   REGISTER_LAYER_CREATOR(Convolution, CreateConvolutionLayer);   (layers/convolution.cpp)
//
// cuDNN engines (layers/cudnn_layers.hpp: subclasses that replace only the GPU code). The
// rule, for every type below with an `engine` in its parameters (CAFFE, CUDNN, DEFAULT):
//   CAFFE            -> crema's own layer.
//   DEFAULT, CUDNN   -> the cuDNN layer when this build has cuDNN (cudnn::Available()) and
//                       the parameters are ones cuDNN computes like crema (below); otherwise
//                       crema's own layer. Falling back logs one line: LOG(INFO) when CUDNN
//                       was asked for explicitly, VLOG(1) for DEFAULT (LogEngineFallback).
// ELU and Swish have no engine field (DEFAULT). The cuDNN layers run crema's CPU code in
// CPU mode.
//   Pooling:   MAX or AVE (not STOCHASTIC); at Reshape also: a single top (no mask) and
//              crema's output size equal to cuDNN's floor-rounded one (CEIL, the default,
//              differs when (H + 2 pad - k) is not a multiple of the stride).
//   Softmax:   always.
//   ReLU:      negative_slope == 0.        Sigmoid, TanH, ELU, Swish: always.
//   LRN:       ACROSS_CHANNELS, local_size odd in [1, 16], k >= 1e-5, beta >= 0.01
//              (cudnn::LRNSupported); cuDNN divides alpha by local_size as Caffe does.
// BatchNorm stays on crema's kernels (see the note in layers/engines.cpp).
#pragma once

#include <memory>
#include <string>

#include "crema/layer.hpp"

namespace crema {

// "Convolution": DepthwiseConvolutionLayer (direct kernel) when group > 1 — it decides at
// setup, once the input channel count is known, whether group == channels and otherwise
// runs the ordinary im2col + GEMM path — else ConvolutionLayer.
std::shared_ptr<Layer> CreateConvolutionLayer(const pb::LayerParameter& param);

std::shared_ptr<Layer> CreatePoolingLayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateSoftmaxLayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateReLULayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateSigmoidLayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateTanHLayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateELULayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateSwishLayer(const pb::LayerParameter& param);
std::shared_ptr<Layer> CreateLRNLayer(const pb::LayerParameter& param);

// Logs that `param`'s layer runs on crema's kernels instead of cuDNN, and why: LOG(INFO)
// when cuDNN was asked for explicitly (engine: CUDNN), else VLOG(1).
void LogEngineFallback(const pb::LayerParameter& param, bool cudnn_asked,
                       const std::string& reason);

}  // namespace crema
