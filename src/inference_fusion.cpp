// Finding the BatchNorm [+ Scale] [+ ReLU] chains that the GPU runs as one kernel
// (src/inference_fusion.hpp states the rules and the formula).
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

// Layer `i` works in place on blob `blob_id` alone, needs no backward pass, carries no loss
// weight and has GPU code.
bool InPlaceOn(const Net& net, int i, int blob_id) {
  const auto& bottoms = net.bottom_ids(i);
  const auto& tops = net.top_ids(i);
  const Layer& layer = *net.layers()[i];
  return bottoms.size() == 1 && tops.size() == 1 && bottoms[0] == blob_id && tops[0] == blob_id &&
         !net.layer_need_backward()[i] && layer.loss(0) == 0 && layer.HasGpuImplementation();
}

bool UsesGlobalStats(const pb::LayerParameter& p) {
  const pb::BatchNormParameter& bn = p.batch_norm_param();
  return bn.has_use_global_stats() ? bn.use_global_stats() : p.phase() == pb::TEST;
}

}  // namespace

std::vector<AffineChain> FindAffineChains(const Net& net) {
  std::vector<AffineChain> chains;
  if (FusionDisabled()) return chains;
  const auto& layers = net.layers();
  const int n = net.num_layers();
  for (int i = 0; i < n; ++i) {
    const pb::LayerParameter& p = layers[i]->layer_param();
    if (p.type() != "BatchNorm" || net.top_ids(i).size() != 1) continue;
    const int blob_id = net.top_ids(i)[0];
    const Blob& blob = *net.blobs()[blob_id];
    if (!InPlaceOn(net, i, blob_id) || !UsesGlobalStats(p) || layers[i]->blobs().size() != 3 ||
        blob.num_axes() < 2)
      continue;
    const int channels = blob.shape(1);
    AffineChain chain;
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
