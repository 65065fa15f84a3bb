// Split insertion. A blob read by k > 1 consumers (a loss weight on a top counts as one
// consumer) gets a Split layer right after its producer with k outputs; each consumer
// reads its own copy so the gradients flowing back can be summed in one place.
#include <map>
#include <utility>

#include "crema.pb.h"
#include "crema/net.hpp"

namespace crema {
namespace {

using TopIndex = std::pair<int, int>;  // (layer, top position)

std::string split_layer_name(const std::string& layer, const std::string& blob, int index) {
  return blob + "_" + layer + "_" + std::to_string(index) + "_split";
}

std::string split_blob_name(const std::string& layer, const std::string& blob, int index,
                            int copy) {
  return split_layer_name(layer, blob, index) + "_" + std::to_string(copy);
}

void configure_split(const std::string& layer, const std::string& blob, int index, int copies,
                     float loss_weight, pb::LayerParameter* split) {
  split->Clear();
  split->set_name(split_layer_name(layer, blob, index));
  split->set_type("Split");
  split->add_bottom(blob);
  for (int k = 0; k < copies; ++k) {
    split->add_top(split_blob_name(layer, blob, index, k));
    // The loss (if the original top carried one) travels on the first copy only.
    if (loss_weight != 0) split->add_loss_weight(k == 0 ? loss_weight : 0.f);
  }
}

}  // namespace

void InsertSplits(const pb::NetParameter& param, pb::NetParameter* param_split) {
  param_split->CopyFrom(param);
  param_split->clear_layer();

  std::map<std::string, TopIndex> last_producer;
  std::map<TopIndex, TopIndex> source_of_bottom;  // (layer, bottom) -> producing top
  std::map<TopIndex, int> consumers;
  std::map<TopIndex, float> loss_weight_of_top;
  std::map<TopIndex, int> next_copy;

  for (int i = 0; i < param.layer_size(); ++i) {
    const pb::LayerParameter& layer = param.layer(i);
    for (int j = 0; j < layer.bottom_size(); ++j) {
      auto it = last_producer.find(layer.bottom(j));
      CREMA_REQUIRE(it != last_producer.end(), "Layer '" << layer.name() << "' (" << layer.type()
                                                         << "): unknown bottom blob '"
                                                         << layer.bottom(j) << "' (bottom index "
                                                         << j << "): no earlier layer produces it");
      source_of_bottom[{i, j}] = it->second;
      ++consumers[it->second];
    }
    for (int j = 0; j < layer.top_size(); ++j) last_producer[layer.top(j)] = {i, j};
    const int weighted = std::min(layer.loss_weight_size(), layer.top_size());
    for (int j = 0; j < weighted; ++j) {
      loss_weight_of_top[{i, j}] = layer.loss_weight(j);
      if (layer.loss_weight(j) != 0) ++consumers[{i, j}];
    }
  }

  for (int i = 0; i < param.layer_size(); ++i) {
    pb::LayerParameter* layer = param_split->add_layer();
    layer->CopyFrom(param.layer(i));
    for (int j = 0; j < layer->bottom_size(); ++j) {
      const TopIndex source = source_of_bottom[{i, j}];
      if (consumers[source] <= 1) continue;
      const std::string& producer = param.layer(source.first).name();
      layer->set_bottom(
          j, split_blob_name(producer, layer->bottom(j), source.second, next_copy[source]++));
    }
    for (int j = 0; j < layer->top_size(); ++j) {
      const TopIndex top{i, j};
      const int copies = consumers[top];
      if (copies <= 1) continue;
      const float loss_weight = loss_weight_of_top[top];
      configure_split(layer->name(), layer->top(j), j, copies, loss_weight,
                      param_split->add_layer());
      if (loss_weight != 0) {
        // Copy 0 carries the loss; the producer itself no longer does.
        layer->clear_loss_weight();
        ++next_copy[top];
      }
    }
  }
}

}  // namespace crema
