// Layers register a creator under their type string ("Convolution", "ReLU", ...) from a
// static object in their own .cpp, so adding a layer touches no central list:
//
//   REGISTER_LAYER_CLASS(ReLU);                  // type "ReLU" -> new ReLULayer(param)
//   REGISTER_LAYER_CREATOR(Convolution, fn);     // when several engines exist
//
// Engine choice (CAFFE vs cuDNN) happens in the creators of layers/engines.cpp only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

using LayerCreator = std::function<std::shared_ptr<Layer>(const pb::LayerParameter&)>;

class LayerRegistry {
 public:
  // Registering a type twice is a programming error (CHECK).
  static void Add(const std::string& type, LayerCreator creator);
  // Throws crema::Error naming the layer and listing every registered type when the type
  // is unknown.
  static std::shared_ptr<Layer> Create(const pb::LayerParameter& param);
  static bool Has(const std::string& type);
  static std::vector<std::string> TypeList();  // sorted
};

struct LayerRegisterer {
  LayerRegisterer(const std::string& type, LayerCreator creator) {
    LayerRegistry::Add(type, std::move(creator));
  }
};

#define REGISTER_LAYER_CREATOR(type, creator) \
  static ::crema::LayerRegisterer g_crema_layer_registerer_##type(#type, creator)

#define REGISTER_LAYER_CLASS(type)                                                        \
  REGISTER_LAYER_CREATOR(                                                                 \
      type, [](const ::crema::pb::LayerParameter& p) -> std::shared_ptr<::crema::Layer> { \
        return std::make_shared<type##Layer>(p);                                          \
      })

}  // namespace crema
