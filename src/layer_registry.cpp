#include "crema/layer_registry.hpp"

#include <algorithm>
#include <map>

#include "crema.pb.h"

namespace crema {
namespace {
std::map<std::string, LayerCreator>& registry() {
  static std::map<std::string, LayerCreator> creators;
  return creators;
}
}  // namespace

void LayerRegistry::Add(const std::string& type, LayerCreator creator) {
  CHECK(registry().count(type) == 0) << "layer type " << type << " registered twice";
  registry()[type] = std::move(creator);
}

bool LayerRegistry::Has(const std::string& type) {
  return registry().count(type) > 0;
}

std::vector<std::string> LayerRegistry::TypeList() {
  std::vector<std::string> types;
  for (const auto& entry : registry()) types.push_back(entry.first);
  return types;
}

std::shared_ptr<Layer> LayerRegistry::Create(const pb::LayerParameter& param) {
  auto it = registry().find(param.type());
  if (it == registry().end()) {
    std::ostringstream known;
    for (const auto& type : TypeList()) known << (known.tellp() > 0 ? ", " : "") << type;
    CREMA_THROW("Layer '" << param.name() << "': unknown layer type '" << param.type()
                          << "'. Known types: " << known.str() << ".");
  }
  return it->second(param);
}

}  // namespace crema
