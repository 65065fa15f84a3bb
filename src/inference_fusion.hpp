// Inference fusion on the GPU: short chains of memory-bound layers run as ONE kernel instead of
// one memory pass each. Three kinds, all found in ResNet-style nets at test time:
//  (1) a BatchNorm that uses its stored (global) statistics, followed in place by a per-channel
//      Scale and/or a ReLU;
//  (2) an Eltwise SUM of 2 to 4 blobs followed by a ReLU in place on its top:
//        y = act(sum_k coeff_k x_k)  (summed in Caffe's order: c0 x0 + c1 x1 + ...);
//  (3) a Convolution followed by what its output's writer can do on the way (the convolution's
//      epilogue, src/channel_epilogue.hpp): [BatchNorm [+ Scale]] in place on its top x, then a
//      ReLU in place on x, or an Eltwise SUM of x and one other blob z (computed earlier) into
//      a new blob s, [+ a ReLU in place on s]:
//        x = v * a_c + b_c  (v the convolution without bias; a_c, b_c below), then
//        x = act(x),  or  s = act(c_x x + c_z z)  (x keeps its value: it stays readable)
//      with a_c = inv_std_c gamma_c and b_c = (bias_c - mean_c) a_c + beta_c (the parts that
//      are absent drop out: no BatchNorm gives a_c = gamma_c or 1, b_c = bias_c). At least one
//      of BatchNorm, ReLU and Eltwise must follow. The 16-bit convolutions apply it while
//      widening their output (no extra pass); the others in one pass after cuDNN or cuBLAS,
//      or inside cuDNN's fused convolution (src/cudnn_adapter.hpp), whichever is faster.
//
// Kind (1):
// For the blob x of shape [N, C, inner...] (inner = product of the axes after C, 1 for 2-D):
//   BatchNorm (global):  s = (factor == 0 ? 0 : 1 / factor),  mean_c = s * mean_sum_c,
//                        inv_std_c = 1 / sqrt(s * var_sum_c + eps),  x' = (x - mean_c) inv_std_c
//   Scale (learned, axis 1, one axis, optional bias):  x'' = gamma_c x' + beta_c
//   ReLU (negative slope k):  y = x'' > 0 ? x'' : k x''
// fused:  y = act((x - mean_c) * a_c + beta_c)  with  a_c = gamma_c * inv_std_c.
// (It differs from the three layers only by the rounding of a_c: relative ~1e-7.)
//
// A chain is fused only where nothing can tell the difference: every layer of it works in place
// on one blob (so no intermediate blob exists; kind 3 writes both x and s), none needs a
// backward pass (a test net), none has a loss weight, every one has GPU code, and the net has
// no debug_info. The CPU path and training nets are never changed. The results differ from
// the layers' by rounding only (relative ~1e-7, more where cuDNN's fused convolution takes a
// different algorithm). CREMA_FUSION=0 in the environment turns fusion off.
#pragma once

#include <memory>
#include <vector>

#include "crema/blob.hpp"

namespace crema {

class Layer;
class Net;

struct FusedChain {
  enum class Kind { kBatchNorm, kSumRelu, kConvolution };
  Kind kind = Kind::kBatchNorm;
  int first = 0;  // the first layer's index (BatchNorm, Eltwise or Convolution)
  int last = 0;   // the last fused layer's index (Scale or ReLU)
  Layer* batch_norm = nullptr;
  std::vector<float> coefficients;  // kSumRelu: the Eltwise coefficients, one per bottom
  Layer* scale = nullptr;           // nullptr: no Scale in the chain
  bool relu = false;
  float negative_slope = 0.f;
  float eps = 1e-5f;
  // kConvolution: the layer (a ConvolutionLayer), its top x, the Eltwise's other bottom z and
  // top s with their coefficients (null: no Eltwise), and device scratch for a_c and b_c.
  Layer* convolution = nullptr;
  Blob* conv_top = nullptr;
  Blob* residual = nullptr;
  Blob* sum = nullptr;
  float coeff_x = 1.f, coeff_residual = 1.f;
  std::shared_ptr<Blob> epilogue_scratch = std::make_shared<Blob>();
};

// The chains of `net` (see above), in layer order; empty when CREMA_FUSION=0.
std::vector<FusedChain> FindFusedChains(const Net& net);

#ifdef CREMA_WITH_CUDA
// Runs the chain on the GPU: `bottoms` are its first layer's, `top` the blob it leaves (its
// layers' Reshape must have run; kConvolution reads its blobs from the chain).
void ForwardFusedChainGpu(const FusedChain& chain, const std::vector<Blob*>& bottoms, Blob* top);
#endif

}  // namespace crema
