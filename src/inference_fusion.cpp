// Finding the chains that the GPU runs as one kernel: BatchNorm [+ Scale] [+ ReLU], Eltwise
// SUM + ReLU, and a Convolution with what follows it (src/inference_fusion.hpp states the
// rules and the formulas).
#include "src/inference_fusion.hpp"

#include <cstdlib>
#include <cstring>

#include "crema.pb.h"
#include "crema/layer.hpp"
#include "crema/net.hpp"
#include "layers/convolution.hpp"

namespace crema {
namespace {

bool FusionDisabled() {
  const char* v = std::getenv("CREMA_FUSION");
  return v && std::strcmp(v, "0") == 0;
}

// Layer `i` needs no backward pass, carries no loss weight and has GPU code.
bool Quiet(const Net& net, int i) {
  const Layer& layer = *net.layers()[i];
  return !net.layer_need_backward()[i] && layer.loss(0) == 0 && layer.HasGpuImplementation();
}

// Layer `i` is Quiet and works in place on blob `blob_id` alone.
bool InPlaceOn(const Net& net, int i, int blob_id) {
  const auto& bottoms = net.bottom_ids(i);
  const auto& tops = net.top_ids(i);
  return bottoms.size() == 1 && tops.size() == 1 && bottoms[0] == blob_id && tops[0] == blob_id &&
         Quiet(net, i);
}

// An Eltwise SUM of 2..4 bottoms into a blob of its own, followed by a ReLU in place on it.
bool FindSumRelu(const Net& net, int i, FusedChain* chain) {
  const auto& layers = net.layers();
  const pb::LayerParameter& p = layers[i]->layer_param();
  const auto& bottoms = net.bottom_ids(i);
  if (p.type() != "Eltwise" || p.eltwise_param().operation() != pb::EltwiseParameter::SUM ||
      bottoms.size() < 2 || bottoms.size() > 4 || net.top_ids(i).size() != 1 || !Quiet(net, i) ||
      i + 1 >= net.num_layers())
    return false;
  const int top = net.top_ids(i)[0];
  for (int b : bottoms)
    if (b == top) return false;  // in place: leave it to the layer
  if (layers[i + 1]->type() != std::string("ReLU") || !InPlaceOn(net, i + 1, top)) return false;
  chain->kind = FusedChain::Kind::kSumRelu;
  chain->first = i;
  chain->last = i + 1;
  chain->coefficients.assign(bottoms.size(), 1.f);
  if (p.eltwise_param().coeff_size() > 0)
    chain->coefficients.assign(p.eltwise_param().coeff().begin(), p.eltwise_param().coeff().end());
  chain->relu = true;
  chain->negative_slope = layers[i + 1]->layer_param().relu_param().negative_slope();
  return true;
}

bool UsesGlobalStats(const pb::LayerParameter& p) {
  const pb::BatchNormParameter& bn = p.batch_norm_param();
  return bn.has_use_global_stats() ? bn.use_global_stats() : p.phase() == pb::TEST;
}

bool IsType(const Net& net, int i, const char* type) {
  return i < net.num_layers() && net.layers()[i]->type() == std::string(type);
}

// From layer j on, a BatchNorm with stored statistics in place on blob `blob_id` and then
// optionally a per-channel Scale in place on it: records them in `chain` and returns the
// index of the layer after them (j when there is no such BatchNorm).
int MatchBatchNormScale(const Net& net, int j, int blob_id, FusedChain* chain) {
  if (!IsType(net, j, "BatchNorm") || !InPlaceOn(net, j, blob_id)) return j;
  const Layer& bn = *net.layers()[j];
  const Blob& blob = *net.blobs()[blob_id];
  if (!UsesGlobalStats(bn.layer_param()) || bn.blobs().size() != 3 || blob.num_axes() < 2) return j;
  const int channels = blob.shape(1);
  chain->batch_norm = net.layers()[j].get();
  chain->eps = bn.layer_param().batch_norm_param().eps();
  chain->last = j++;
  if (!IsType(net, j, "Scale") || !InPlaceOn(net, j, blob_id)) return j;
  const Layer& scale = *net.layers()[j];
  const pb::ScaleParameter& s = scale.layer_param().scale_param();
  const auto& params = scale.blobs();
  const bool bias_ok = params.size() == 1 || (params.size() == 2 && params[1]->count() == channels);
  if (s.axis() != 1 || s.num_axes() != 1 || params.empty() || params[0]->count() != channels ||
      !bias_ok)
    return j;
  chain->scale = net.layers()[j].get();
  chain->last = j;
  return j + 1;
}

// Layer j is a ReLU in place on blob `blob_id`: records it as the chain's last layer.
bool MatchRelu(const Net& net, int j, int blob_id, FusedChain* chain) {
  if (!IsType(net, j, "ReLU") || !InPlaceOn(net, j, blob_id)) return false;
  chain->relu = true;
  chain->negative_slope = net.layers()[j]->layer_param().relu_param().negative_slope();
  chain->last = j;
  return true;
}

// Layer j is an Eltwise SUM of blob x and one other blob into a third, [then a ReLU in place
// on that one]: records it as the chain's residual sum.
bool MatchResidualSum(const Net& net, int j, int x, FusedChain* chain) {
  if (!IsType(net, j, "Eltwise") || !Quiet(net, j)) return false;
  const pb::EltwiseParameter& e = net.layers()[j]->layer_param().eltwise_param();
  const auto& bottoms = net.bottom_ids(j);
  const auto& tops = net.top_ids(j);
  if (e.operation() != pb::EltwiseParameter::SUM || bottoms.size() != 2 || tops.size() != 1)
    return false;
  const int x_at = bottoms[0] == x ? 0 : 1;  // which bottom is x
  const int z = bottoms[1 - x_at], s = tops[0];
  if (bottoms[x_at] != x || z == x || s == x || s == z) return false;
  chain->residual = net.blobs()[z].get();
  chain->sum = net.blobs()[s].get();
  if (e.coeff_size() == 2) {
    chain->coeff_x = e.coeff(x_at);
    chain->coeff_residual = e.coeff(1 - x_at);
  }
  chain->last = j;
  MatchRelu(net, j + 1, s, chain);
  return true;
}

// A Convolution (one bottom, one top x, channels on axis 1) followed by at least one of:
// BatchNorm [+ Scale] in place on x; a ReLU in place on x, or an Eltwise SUM with x.
bool FindConvolutionChain(const Net& net, int i, FusedChain* chain) {
  Layer* layer = net.layers()[i].get();
  auto* conv = dynamic_cast<ConvolutionLayer*>(layer);
  if (!conv || !IsType(net, i, "Convolution") || net.bottom_ids(i).size() != 1 ||
      net.top_ids(i).size() != 1 || !Quiet(net, i) ||
      layer->layer_param().convolution_param().axis() != 1)
    return false;
  const int x = net.top_ids(i)[0];
  chain->kind = FusedChain::Kind::kConvolution;
  chain->first = chain->last = i;
  chain->convolution = layer;
  chain->conv_top = net.blobs()[x].get();
  const int j = MatchBatchNormScale(net, i + 1, x, chain);
  if (!MatchRelu(net, j, x, chain)) MatchResidualSum(net, j, x, chain);
  return chain->last > i;
}

}  // namespace

std::vector<FusedChain> FindFusedChains(const Net& net) {
  std::vector<FusedChain> chains;
#ifndef CREMA_WITH_CUDA
  return chains;  // a CPU-only build has no fused kernels
#endif
  if (FusionDisabled()) return chains;
  const auto& layers = net.layers();
  const int n = net.num_layers();
  for (int i = 0; i < n; ++i) {
    FusedChain chain;
    bool found = FindConvolutionChain(net, i, &chain);
    if (!found) {
      chain = FusedChain();
      found = FindSumRelu(net, i, &chain);
    }
    if (found) {
      chains.push_back(chain);
      i = chain.last;
      continue;
    }
    if (layers[i]->type() != std::string("BatchNorm") || net.top_ids(i).size() != 1) continue;
    const int blob_id = net.top_ids(i)[0];
    chain = FusedChain();
    chain.first = chain.last = i;
    const int j = MatchBatchNormScale(net, i, blob_id, &chain);
    if (j == i) continue;  // not a fusable BatchNorm
    MatchRelu(net, j, blob_id, &chain);
    if (chain.last == i) continue;  // a BatchNorm alone gains nothing
    chains.push_back(chain);
    i = chain.last;
  }
  return chains;
}

}  // namespace crema
