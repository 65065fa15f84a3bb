// Finding the chains that the GPU runs as one kernel: BatchNorm [+ Scale] [+ ReLU], and
// Eltwise SUM + ReLU (src/inference_fusion.hpp states the rules and the formulas).
#include "src/inference_fusion.hpp"

#include <cstdlib>
#include <cstring>

#include "crema.pb.h"
#include "crema/layer.hpp"
#include "crema/net.hpp"

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
    FusedChain sum_relu;
    if (FindSumRelu(net, i, &sum_relu)) {
      chains.push_back(sum_relu);
      i = sum_relu.last;
      continue;
    }
    const pb::LayerParameter& p = layers[i]->layer_param();
    if (p.type() != "BatchNorm" || net.top_ids(i).size() != 1) continue;
    const int blob_id = net.top_ids(i)[0];
    const Blob& blob = *net.blobs()[blob_id];
    if (!InPlaceOn(net, i, blob_id) || !UsesGlobalStats(p) || layers[i]->blobs().size() != 3 ||
        blob.num_axes() < 2)
      continue;
    const int channels = blob.shape(1);
    FusedChain chain;
    chain.first = chain.last = i;
    chain.batch_norm = layers[i].get();
    chain.eps = p.batch_norm_param().eps();
    int j = i + 1;
    if (j < n && layers[j]->type() == std::string("Scale") && InPlaceOn(net, j, blob_id)) {
      const pb::ScaleParameter& s = layers[j]->layer_param().scale_param();
      const auto& params = layers[j]->blobs();
      const bool bias_ok =
          params.size() == 1 || (params.size() == 2 && params[1]->count() == channels);
      if (s.axis() == 1 && s.num_axes() == 1 && !params.empty() && params[0]->count() == channels &&
          bias_ok) {
        chain.scale = layers[j].get();
        chain.last = j++;
      }
    }
    if (j < n && layers[j]->type() == std::string("ReLU") && InPlaceOn(net, j, blob_id)) {
      chain.relu = true;
      chain.negative_slope = layers[j]->layer_param().relu_param().negative_slope();
      chain.last = j;
    }
    if (chain.last == i) continue;  // a BatchNorm alone gains nothing
    chains.push_back(chain);
    i = chain.last;
  }
  return chains;
}

}  // namespace crema
