// Upgrades of legacy Caffe net and solver definitions; see upgrade_proto.hpp for the steps.
#include "crema/upgrade_proto.hpp"

#include <map>
#include <string>

#include "crema.pb.h"

namespace crema {

namespace {

const char kNetToolsHint[] =
    "rewrite the file once with `crema upgrade_net_proto_text` (prototxt) or "
    "`crema upgrade_net_proto_binary` (weights) to skip this step in future";
const char kSolverToolHint[] =
    "rewrite the file once with `crema upgrade_solver_proto_text` to skip this step in "
    "future";

// The name a V1 layer goes by in messages: its own name, or the nested V0 layer's.
std::string V1LayerLabel(const pb::V1LayerParameter& layer, int index) {
  std::string name = layer.has_name() ? layer.name() : layer.layer().name();
  if (name.empty()) return "#" + std::to_string(index);
  return "'" + name + "'";
}

// ---- Step 1 helpers: which V0 setting goes where ----

// Reports a V0 setting that means nothing for the layer's type. Caffe drops such
// settings with an error message and carries on; so do we.
void DropV0Setting(const std::string& source_name, const pb::V0LayerParameter& v0,
                   const char* setting, bool* compatible) {
  LOG(ERROR) << source_name << ": V0 layer '" << v0.name() << "' of type \"" << v0.type()
             << "\" has setting " << setting << ", which that type does not use; dropped.";
  *compatible = false;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Step 1: V0 -> V1
// ---------------------------------------------------------------------------------------

bool NetNeedsV0ToV1Upgrade(const pb::NetParameter& net) {
  for (const pb::V1LayerParameter& layer : net.layers()) {
    if (layer.has_layer()) return true;
  }
  return false;
}

void UpgradeV0PaddingLayers(const std::string& source_name, pb::NetParameter* net) {
  const pb::NetParameter original(*net);
  net->clear_layers();

  // For each blob name, the index (in `original`) of the layer that last wrote it, or -1
  // for a net input.
  std::map<std::string, int> producer;
  for (const std::string& input : original.input()) producer[input] = -1;

  for (int i = 0; i < original.layers_size(); ++i) {
    const pb::V1LayerParameter& layer = original.layers(i);
    const pb::V0LayerParameter& v0 = layer.layer();
    const bool is_padding = v0.type() == "padding";
    pb::V1LayerParameter* kept = nullptr;
    if (!is_padding) {
      kept = net->add_layers();
      kept->CopyFrom(layer);
    }
    for (int b = 0; b < layer.bottom_size(); ++b) {
      const std::string& blob = layer.bottom(b);
      auto found = producer.find(blob);
      if (found == producer.end()) {
        CREMA_THROW(source_name << ": V0 layer " << V1LayerLabel(layer, i) << " reads blob '"
                                << blob
                                << "', which is neither a net input nor the output of an "
                                   "earlier layer.");
      }
      if (found->second < 0) continue;
      const pb::V1LayerParameter& source = original.layers(found->second);
      if (source.layer().type() != "padding") continue;

      // A padding layer feeds this one: fold the padding into it. Caffe only ever
      // defined this for a conv or pool layer with a single input fed by a padding
      // layer with one input and one output.
      const std::string where = source_name + ": V0 padding layer " +
                                V1LayerLabel(source, found->second) + " feeding layer " +
                                V1LayerLabel(layer, i);
      if (v0.type() != "conv" && v0.type() != "pool") {
        CREMA_THROW(where << " of type \"" << v0.type()
                          << "\" cannot be upgraded: padding can only be folded into a "
                             "conv or pool layer.");
      }
      if (layer.bottom_size() != 1) {
        CREMA_THROW(where << " cannot be upgraded: the consuming layer has " << layer.bottom_size()
                          << " inputs, and must have exactly one.");
      }
      if (source.bottom_size() != 1 || source.top_size() != 1) {
        CREMA_THROW(where << " cannot be upgraded: the padding layer has " << source.bottom_size()
                          << " inputs and " << source.top_size()
                          << " outputs, and must have one of each.");
      }
      kept->mutable_layer()->set_pad(source.layer().pad());
      kept->set_bottom(b, source.bottom(0));
    }
    for (const std::string& top : layer.top()) producer[top] = i;
  }
}

int UpgradeV0LayerType(const std::string& source_name, const std::string& v0_type) {
  static const std::map<std::string, pb::V1LayerParameter::LayerType> kTypes = {
      {"accuracy", pb::V1LayerParameter::ACCURACY},
      {"bnll", pb::V1LayerParameter::BNLL},
      {"concat", pb::V1LayerParameter::CONCAT},
      {"conv", pb::V1LayerParameter::CONVOLUTION},
      {"data", pb::V1LayerParameter::DATA},
      {"dropout", pb::V1LayerParameter::DROPOUT},
      {"euclidean_loss", pb::V1LayerParameter::EUCLIDEAN_LOSS},
      {"flatten", pb::V1LayerParameter::FLATTEN},
      {"hdf5_data", pb::V1LayerParameter::HDF5_DATA},
      {"hdf5_output", pb::V1LayerParameter::HDF5_OUTPUT},
      {"im2col", pb::V1LayerParameter::IM2COL},
      {"images", pb::V1LayerParameter::IMAGE_DATA},
      {"infogain_loss", pb::V1LayerParameter::INFOGAIN_LOSS},
      {"innerproduct", pb::V1LayerParameter::INNER_PRODUCT},
      {"lrn", pb::V1LayerParameter::LRN},
      {"multinomial_logistic_loss", pb::V1LayerParameter::MULTINOMIAL_LOGISTIC_LOSS},
      {"pool", pb::V1LayerParameter::POOLING},
      {"relu", pb::V1LayerParameter::RELU},
      {"sigmoid", pb::V1LayerParameter::SIGMOID},
      {"softmax", pb::V1LayerParameter::SOFTMAX},
      {"softmax_loss", pb::V1LayerParameter::SOFTMAX_LOSS},
      {"split", pb::V1LayerParameter::SPLIT},
      {"tanh", pb::V1LayerParameter::TANH},
      {"window_data", pb::V1LayerParameter::WINDOW_DATA},
  };
  auto found = kTypes.find(v0_type);
  if (found == kTypes.end()) {
    std::ostringstream known;
    for (const auto& entry : kTypes) known << " " << entry.first;
    CREMA_THROW(source_name << ": unknown V0 layer type \"" << v0_type
                            << "\"; the V0 types are:" << known.str() << ".");
  }
  return found->second;
}

bool UpgradeV0LayerParameter(const std::string& source_name, const pb::V1LayerParameter& v0_holder,
                             pb::V1LayerParameter* out) {
  bool compatible = true;
  out->Clear();
  out->mutable_bottom()->CopyFrom(v0_holder.bottom());
  out->mutable_top()->CopyFrom(v0_holder.top());
  if (!v0_holder.has_layer()) return compatible;

  const pb::V0LayerParameter& v0 = v0_holder.layer();
  const std::string& type = v0.type();
  const bool conv = type == "conv";
  const bool ip = type == "innerproduct";
  const bool pool = type == "pool";
  if (v0.has_name()) out->set_name(v0.name());
  if (v0.has_type()) {
    out->set_type(
        static_cast<pb::V1LayerParameter::LayerType>(UpgradeV0LayerType(source_name, type)));
  }
  out->mutable_blobs()->CopyFrom(v0.blobs());
  out->mutable_blobs_lr()->CopyFrom(v0.blobs_lr());
  out->mutable_weight_decay()->CopyFrom(v0.weight_decay());

  auto drop = [&](const char* setting) { DropV0Setting(source_name, v0, setting, &compatible); };

  // Settings of the learned layers.
  if (v0.has_num_output()) {
    if (conv) {
      out->mutable_convolution_param()->set_num_output(v0.num_output());
    } else if (ip) {
      out->mutable_inner_product_param()->set_num_output(v0.num_output());
    } else {
      drop("num_output");
    }
  }
  if (v0.has_biasterm()) {
    if (conv) {
      out->mutable_convolution_param()->set_bias_term(v0.biasterm());
    } else if (ip) {
      out->mutable_inner_product_param()->set_bias_term(v0.biasterm());
    } else {
      drop("biasterm");
    }
  }
  if (v0.has_weight_filler()) {
    if (conv) {
      out->mutable_convolution_param()->mutable_weight_filler()->CopyFrom(v0.weight_filler());
    } else if (ip) {
      out->mutable_inner_product_param()->mutable_weight_filler()->CopyFrom(v0.weight_filler());
    } else {
      drop("weight_filler");
    }
  }
  if (v0.has_bias_filler()) {
    if (conv) {
      out->mutable_convolution_param()->mutable_bias_filler()->CopyFrom(v0.bias_filler());
    } else if (ip) {
      out->mutable_inner_product_param()->mutable_bias_filler()->CopyFrom(v0.bias_filler());
    } else {
      drop("bias_filler");
    }
  }

  // Window geometry of conv and pool layers.
  if (v0.has_pad()) {
    if (conv) {
      out->mutable_convolution_param()->add_pad(v0.pad());
    } else if (pool) {
      out->mutable_pooling_param()->set_pad(v0.pad());
    } else {
      drop("pad");
    }
  }
  if (v0.has_kernelsize()) {
    if (conv) {
      out->mutable_convolution_param()->add_kernel_size(v0.kernelsize());
    } else if (pool) {
      out->mutable_pooling_param()->set_kernel_size(v0.kernelsize());
    } else {
      drop("kernelsize");
    }
  }
  if (v0.has_group()) {
    if (conv) {
      out->mutable_convolution_param()->set_group(v0.group());
    } else {
      drop("group");
    }
  }
  if (v0.has_stride()) {
    if (conv) {
      out->mutable_convolution_param()->add_stride(v0.stride());
    } else if (pool) {
      out->mutable_pooling_param()->set_stride(v0.stride());
    } else {
      drop("stride");
    }
  }
  if (v0.has_pool()) {
    if (pool) {
      // The two PoolMethod enums share names and numbers.
      switch (v0.pool()) {
        case pb::V0LayerParameter::MAX:
          out->mutable_pooling_param()->set_pool(pb::PoolingParameter::MAX);
          break;
        case pb::V0LayerParameter::AVE:
          out->mutable_pooling_param()->set_pool(pb::PoolingParameter::AVE);
          break;
        case pb::V0LayerParameter::STOCHASTIC:
          out->mutable_pooling_param()->set_pool(pb::PoolingParameter::STOCHASTIC);
          break;
      }
    } else {
      drop("pool");
    }
  }

  if (v0.has_dropout_ratio()) {
    if (type == "dropout") {
      out->mutable_dropout_param()->set_dropout_ratio(v0.dropout_ratio());
    } else {
      drop("dropout_ratio");
    }
  }

  // Local response normalisation.
  const bool lrn = type == "lrn";
  if (v0.has_local_size()) {
    if (lrn) {
      out->mutable_lrn_param()->set_local_size(v0.local_size());
    } else {
      drop("local_size");
    }
  }
  if (v0.has_alpha()) {
    if (lrn) {
      out->mutable_lrn_param()->set_alpha(v0.alpha());
    } else {
      drop("alpha");
    }
  }
  if (v0.has_beta()) {
    if (lrn) {
      out->mutable_lrn_param()->set_beta(v0.beta());
    } else {
      drop("beta");
    }
  }
  if (v0.has_k()) {
    if (lrn) {
      out->mutable_lrn_param()->set_k(v0.k());
    } else {
      drop("k");
    }
  }

  // Data sources.
  const bool data = type == "data";
  const bool hdf5_data = type == "hdf5_data";
  const bool images = type == "images";
  const bool window_data = type == "window_data";
  if (v0.has_source()) {
    if (data) {
      out->mutable_data_param()->set_source(v0.source());
    } else if (hdf5_data) {
      out->mutable_hdf5_data_param()->set_source(v0.source());
    } else if (images) {
      out->mutable_image_data_param()->set_source(v0.source());
    } else if (window_data) {
      out->mutable_window_data_param()->set_source(v0.source());
    } else if (type == "infogain_loss") {
      out->mutable_infogain_loss_param()->set_source(v0.source());
    } else {
      drop("source");
    }
  }
  if (v0.has_batchsize()) {
    if (data) {
      out->mutable_data_param()->set_batch_size(v0.batchsize());
    } else if (hdf5_data) {
      out->mutable_hdf5_data_param()->set_batch_size(v0.batchsize());
    } else if (images) {
      out->mutable_image_data_param()->set_batch_size(v0.batchsize());
    } else if (window_data) {
      out->mutable_window_data_param()->set_batch_size(v0.batchsize());
    } else {
      drop("batchsize");
    }
  }
  if (v0.has_rand_skip()) {
    if (data) {
      out->mutable_data_param()->set_rand_skip(v0.rand_skip());
    } else if (images) {
      out->mutable_image_data_param()->set_rand_skip(v0.rand_skip());
    } else {
      drop("rand_skip");
    }
  }
  if (v0.has_shuffle_images()) {
    if (images) {
      out->mutable_image_data_param()->set_shuffle(v0.shuffle_images());
    } else {
      drop("shuffle_images");
    }
  }
  if (v0.has_new_height()) {
    if (images) {
      out->mutable_image_data_param()->set_new_height(v0.new_height());
    } else {
      drop("new_height");
    }
  }
  if (v0.has_new_width()) {
    if (images) {
      out->mutable_image_data_param()->set_new_width(v0.new_width());
    } else {
      drop("new_width");
    }
  }

  // Preprocessing goes straight to transform_param, whatever the type (as in Caffe).
  if (v0.has_scale()) out->mutable_transform_param()->set_scale(v0.scale());
  if (v0.has_meanfile()) out->mutable_transform_param()->set_mean_file(v0.meanfile());
  if (v0.has_cropsize()) out->mutable_transform_param()->set_crop_size(v0.cropsize());
  if (v0.has_mirror()) out->mutable_transform_param()->set_mirror(v0.mirror());

  if (v0.has_concat_dim()) {
    if (type == "concat") {
      out->mutable_concat_param()->set_concat_dim(v0.concat_dim());
    } else {
      drop("concat_dim");
    }
  }

  // Window sampling.
  if (v0.has_det_fg_threshold()) {
    if (window_data) {
      out->mutable_window_data_param()->set_fg_threshold(v0.det_fg_threshold());
    } else {
      drop("det_fg_threshold");
    }
  }
  if (v0.has_det_bg_threshold()) {
    if (window_data) {
      out->mutable_window_data_param()->set_bg_threshold(v0.det_bg_threshold());
    } else {
      drop("det_bg_threshold");
    }
  }
  if (v0.has_det_fg_fraction()) {
    if (window_data) {
      out->mutable_window_data_param()->set_fg_fraction(v0.det_fg_fraction());
    } else {
      drop("det_fg_fraction");
    }
  }
  if (v0.has_det_context_pad()) {
    if (window_data) {
      out->mutable_window_data_param()->set_context_pad(v0.det_context_pad());
    } else {
      drop("det_context_pad");
    }
  }
  if (v0.has_det_crop_mode()) {
    if (window_data) {
      out->mutable_window_data_param()->set_crop_mode(v0.det_crop_mode());
    } else {
      drop("det_crop_mode");
    }
  }

  if (v0.has_hdf5_output_param()) {
    if (type == "hdf5_output") {
      out->mutable_hdf5_output_param()->CopyFrom(v0.hdf5_output_param());
    } else {
      drop("hdf5_output_param");
    }
  }
  // new_num/new_channels/new_height/new_width of long-gone reshape layers have no V1
  // home except images' new_height/new_width, handled above; Caffe ignores the rest.
  return compatible;
}

bool UpgradeV0Net(const std::string& source_name, pb::NetParameter* net) {
  pb::NetParameter padded(*net);
  UpgradeV0PaddingLayers(source_name, &padded);

  // V0 nets only had a name, inputs, input_dim, force_backward and layers.
  net->Clear();
  if (padded.has_name()) net->set_name(padded.name());
  bool compatible = true;
  for (const pb::V1LayerParameter& layer : padded.layers()) {
    compatible &= UpgradeV0LayerParameter(source_name, layer, net->add_layers());
  }
  net->mutable_input()->CopyFrom(padded.input());
  net->mutable_input_dim()->CopyFrom(padded.input_dim());
  if (padded.has_force_backward()) net->set_force_backward(padded.force_backward());
  return compatible;
}

// ---------------------------------------------------------------------------------------
// Step 2: legacy transformation fields -> transform_param
// ---------------------------------------------------------------------------------------

namespace {

// True when a data-layer parameter message still carries transformation settings.
template <typename DataParam>
bool HasLegacyTransform(const DataParam& param) {
  return param.has_scale() || param.has_mean_file() || param.has_crop_size() || param.has_mirror();
}

// Moves the legacy transformation settings of `param` into `transform`.
template <typename DataParam>
void MoveLegacyTransform(const std::string& where, DataParam* param,
                         pb::TransformationParameter* transform) {
  auto conflict = [&](const char* field, const auto& legacy, const auto& current) {
    CREMA_THROW(where << " sets " << field << " to " << legacy << " in its data parameters and to "
                      << current << " in transform_param; remove one of them.");
  };
  if (param->has_scale()) {
    if (transform->has_scale() && transform->scale() != param->scale()) {
      conflict("scale", param->scale(), transform->scale());
    }
    transform->set_scale(param->scale());
    param->clear_scale();
  }
  if (param->has_mean_file()) {
    if (transform->has_mean_file() && transform->mean_file() != param->mean_file()) {
      conflict("mean_file", "'" + param->mean_file() + "'", "'" + transform->mean_file() + "'");
    }
    transform->set_mean_file(param->mean_file());
    param->clear_mean_file();
  }
  if (param->has_crop_size()) {
    if (transform->has_crop_size() && transform->crop_size() != param->crop_size()) {
      conflict("crop_size", param->crop_size(), transform->crop_size());
    }
    transform->set_crop_size(param->crop_size());
    param->clear_crop_size();
  }
  if (param->has_mirror()) {
    if (transform->has_mirror() && transform->mirror() != param->mirror()) {
      conflict("mirror", param->mirror() ? "true" : "false",
               transform->mirror() ? "true" : "false");
    }
    transform->set_mirror(param->mirror());
    param->clear_mirror();
  }
}

}  // namespace

bool NetNeedsDataUpgrade(const pb::NetParameter& net) {
  for (const pb::V1LayerParameter& layer : net.layers()) {
    switch (layer.type()) {
      case pb::V1LayerParameter::DATA:
        if (HasLegacyTransform(layer.data_param())) return true;
        break;
      case pb::V1LayerParameter::IMAGE_DATA:
        if (HasLegacyTransform(layer.image_data_param())) return true;
        break;
      case pb::V1LayerParameter::WINDOW_DATA:
        if (HasLegacyTransform(layer.window_data_param())) return true;
        break;
      default:
        break;
    }
  }
  for (const pb::LayerParameter& layer : net.layer()) {
    if (layer.type() == "Data" && HasLegacyTransform(layer.data_param())) return true;
    if (layer.type() == "ImageData" && HasLegacyTransform(layer.image_data_param())) return true;
    if (layer.type() == "WindowData" && HasLegacyTransform(layer.window_data_param())) {
      return true;
    }
  }
  return false;
}

void UpgradeNetDataTransformation(const std::string& source_name, pb::NetParameter* net) {
  for (int i = 0; i < net->layers_size(); ++i) {
    pb::V1LayerParameter* layer = net->mutable_layers(i);
    const std::string where = source_name + ": layer " + V1LayerLabel(*layer, i);
    switch (layer->type()) {
      case pb::V1LayerParameter::DATA:
        if (HasLegacyTransform(layer->data_param())) {
          MoveLegacyTransform(where, layer->mutable_data_param(), layer->mutable_transform_param());
        }
        break;
      case pb::V1LayerParameter::IMAGE_DATA:
        if (HasLegacyTransform(layer->image_data_param())) {
          MoveLegacyTransform(where, layer->mutable_image_data_param(),
                              layer->mutable_transform_param());
        }
        break;
      case pb::V1LayerParameter::WINDOW_DATA:
        if (HasLegacyTransform(layer->window_data_param())) {
          MoveLegacyTransform(where, layer->mutable_window_data_param(),
                              layer->mutable_transform_param());
        }
        break;
      default:
        break;
    }
  }
  for (int i = 0; i < net->layer_size(); ++i) {
    pb::LayerParameter* layer = net->mutable_layer(i);
    const std::string where = source_name + ": layer '" + layer->name() + "'";
    if (layer->type() == "Data" && HasLegacyTransform(layer->data_param())) {
      MoveLegacyTransform(where, layer->mutable_data_param(), layer->mutable_transform_param());
    } else if (layer->type() == "ImageData" && HasLegacyTransform(layer->image_data_param())) {
      MoveLegacyTransform(where, layer->mutable_image_data_param(),
                          layer->mutable_transform_param());
    } else if (layer->type() == "WindowData" && HasLegacyTransform(layer->window_data_param())) {
      MoveLegacyTransform(where, layer->mutable_window_data_param(),
                          layer->mutable_transform_param());
    }
  }
}

// ---------------------------------------------------------------------------------------
// Step 3: V1 -> V2
// ---------------------------------------------------------------------------------------

bool NetNeedsV1ToV2Upgrade(const pb::NetParameter& net) {
  return net.layers_size() > 0;
}

std::string UpgradeV1LayerType(int v1_type) {
  using T = pb::V1LayerParameter;
  // V1 enum value -> the registered type name the current format uses.
  static const std::map<int, const char*> kNames = {
      {T::NONE, ""},
      {T::ABSVAL, "AbsVal"},
      {T::ACCURACY, "Accuracy"},
      {T::ARGMAX, "ArgMax"},
      {T::BNLL, "BNLL"},
      {T::CONCAT, "Concat"},
      {T::CONTRASTIVE_LOSS, "ContrastiveLoss"},
      {T::CONVOLUTION, "Convolution"},
      {T::DATA, "Data"},
      {T::DECONVOLUTION, "Deconvolution"},
      {T::DROPOUT, "Dropout"},
      {T::DUMMY_DATA, "DummyData"},
      {T::EUCLIDEAN_LOSS, "EuclideanLoss"},
      {T::ELTWISE, "Eltwise"},
      {T::EXP, "Exp"},
      {T::FLATTEN, "Flatten"},
      {T::HDF5_DATA, "HDF5Data"},
      {T::HDF5_OUTPUT, "HDF5Output"},
      {T::HINGE_LOSS, "HingeLoss"},
      {T::IM2COL, "Im2col"},
      {T::IMAGE_DATA, "ImageData"},
      {T::INFOGAIN_LOSS, "InfogainLoss"},
      {T::INNER_PRODUCT, "InnerProduct"},
      {T::LRN, "LRN"},
      {T::MEMORY_DATA, "MemoryData"},
      {T::MULTINOMIAL_LOGISTIC_LOSS, "MultinomialLogisticLoss"},
      {T::MVN, "MVN"},
      {T::POOLING, "Pooling"},
      {T::POWER, "Power"},
      {T::RELU, "ReLU"},
      {T::SIGMOID, "Sigmoid"},
      {T::SIGMOID_CROSS_ENTROPY_LOSS, "SigmoidCrossEntropyLoss"},
      {T::SILENCE, "Silence"},
      {T::SOFTMAX, "Softmax"},
      {T::SOFTMAX_LOSS, "SoftmaxWithLoss"},
      {T::SPLIT, "Split"},
      {T::SLICE, "Slice"},
      {T::TANH, "TanH"},
      {T::WINDOW_DATA, "WindowData"},
      {T::THRESHOLD, "Threshold"},
  };
  auto found = kNames.find(v1_type);
  if (found == kNames.end()) CREMA_THROW("Unknown V1 layer type number " << v1_type << ".");
  return found->second;
}

namespace {

// Converts one V1 layer. Returns false when a nested V0 layer had to be dropped.
bool UpgradeV1LayerParameter(const std::string& source_name, int index,
                             const pb::V1LayerParameter& v1, pb::LayerParameter* out) {
  bool compatible = true;
  out->Clear();
  out->mutable_bottom()->CopyFrom(v1.bottom());
  out->mutable_top()->CopyFrom(v1.top());
  if (v1.has_name()) out->set_name(v1.name());
  out->mutable_include()->CopyFrom(v1.include());
  out->mutable_exclude()->CopyFrom(v1.exclude());
  if (v1.has_type()) out->set_type(UpgradeV1LayerType(v1.type()));
  out->mutable_blobs()->CopyFrom(v1.blobs());

  // The four per-blob lists become one ParamSpec per blob; the longest list decides
  // how many entries there are.
  auto spec = [out](int i) {
    while (out->param_size() <= i) out->add_param();
    return out->mutable_param(i);
  };
  for (int i = 0; i < v1.param_size(); ++i) spec(i)->set_name(v1.param(i));
  for (int i = 0; i < v1.blob_share_mode_size(); ++i) {
    switch (v1.blob_share_mode(i)) {
      case pb::V1LayerParameter::STRICT:
        spec(i)->set_share_mode(pb::ParamSpec::STRICT);
        break;
      case pb::V1LayerParameter::PERMISSIVE:
        spec(i)->set_share_mode(pb::ParamSpec::PERMISSIVE);
        break;
    }
  }
  for (int i = 0; i < v1.blobs_lr_size(); ++i) spec(i)->set_lr_mult(v1.blobs_lr(i));
  for (int i = 0; i < v1.weight_decay_size(); ++i) spec(i)->set_decay_mult(v1.weight_decay(i));
  out->mutable_loss_weight()->CopyFrom(v1.loss_weight());

  // The type-specific messages are the same messages in both versions.
#define CREMA_COPY_V1_PARAM(field)                                      \
  do {                                                                  \
    if (v1.has_##field()) out->mutable_##field()->CopyFrom(v1.field()); \
  } while (0)
  CREMA_COPY_V1_PARAM(accuracy_param);
  CREMA_COPY_V1_PARAM(argmax_param);
  CREMA_COPY_V1_PARAM(concat_param);
  CREMA_COPY_V1_PARAM(contrastive_loss_param);
  CREMA_COPY_V1_PARAM(convolution_param);
  CREMA_COPY_V1_PARAM(data_param);
  CREMA_COPY_V1_PARAM(dropout_param);
  CREMA_COPY_V1_PARAM(dummy_data_param);
  CREMA_COPY_V1_PARAM(eltwise_param);
  CREMA_COPY_V1_PARAM(exp_param);
  CREMA_COPY_V1_PARAM(hdf5_data_param);
  CREMA_COPY_V1_PARAM(hdf5_output_param);
  CREMA_COPY_V1_PARAM(hinge_loss_param);
  CREMA_COPY_V1_PARAM(image_data_param);
  CREMA_COPY_V1_PARAM(infogain_loss_param);
  CREMA_COPY_V1_PARAM(inner_product_param);
  CREMA_COPY_V1_PARAM(lrn_param);
  CREMA_COPY_V1_PARAM(memory_data_param);
  CREMA_COPY_V1_PARAM(mvn_param);
  CREMA_COPY_V1_PARAM(pooling_param);
  CREMA_COPY_V1_PARAM(power_param);
  CREMA_COPY_V1_PARAM(relu_param);
  CREMA_COPY_V1_PARAM(sigmoid_param);
  CREMA_COPY_V1_PARAM(softmax_param);
  CREMA_COPY_V1_PARAM(slice_param);
  CREMA_COPY_V1_PARAM(tanh_param);
  CREMA_COPY_V1_PARAM(threshold_param);
  CREMA_COPY_V1_PARAM(window_data_param);
  CREMA_COPY_V1_PARAM(transform_param);
  CREMA_COPY_V1_PARAM(loss_param);
#undef CREMA_COPY_V1_PARAM

  if (v1.has_layer()) {
    LOG(ERROR) << source_name << ": layer " << V1LayerLabel(v1, index)
               << " still holds a V0 layer definition; it is ignored.";
    compatible = false;
  }
  return compatible;
}

}  // namespace

bool UpgradeV1Net(const std::string& source_name, pb::NetParameter* net) {
  if (net->layer_size() > 0) {
    CREMA_THROW(source_name << " mixes the current `layer { type: \"...\" }` format with the "
                               "legacy `layers { type: ENUM }` format; convert the `layers` "
                               "entries by hand (or remove the `layer` entries and let crema "
                               "upgrade the rest).");
  }
  const pb::NetParameter original(*net);
  net->clear_layers();
  bool compatible = true;
  for (int i = 0; i < original.layers_size(); ++i) {
    compatible &= UpgradeV1LayerParameter(source_name, i, original.layers(i), net->add_layer());
  }
  return compatible;
}

// ---------------------------------------------------------------------------------------
// Step 4: net inputs -> Input layer
// ---------------------------------------------------------------------------------------

bool NetNeedsInputUpgrade(const pb::NetParameter& net) {
  return net.input_size() > 0;
}

void UpgradeNetInput(const std::string& source_name, pb::NetParameter* net) {
  const bool has_shape = net->input_shape_size() > 0;
  const bool has_dim = net->input_dim_size() > 0;
  const int inputs = net->input_size();
  if (has_shape && has_dim) {
    CREMA_THROW(source_name << " gives the net inputs both input_shape and input_dim; "
                               "give only one of them.");
  }
  if (has_shape && net->input_shape_size() != inputs) {
    CREMA_THROW(source_name << " declares " << inputs << " net input(s) but "
                            << net->input_shape_size()
                            << " input_shape entries; give one input_shape per input.");
  }
  if (has_dim && net->input_dim_size() != 4 * inputs) {
    CREMA_THROW(source_name << " declares " << inputs << " net input(s) but "
                            << net->input_dim_size() << " input_dim values; give four (num, "
                            << "channels, height, width) per input.");
  }
  if (has_shape || has_dim) {
    pb::LayerParameter input_layer;
    input_layer.set_name("input");
    input_layer.set_type("Input");
    pb::InputParameter* param = input_layer.mutable_input_param();
    for (int i = 0; i < inputs; ++i) {
      input_layer.add_top(net->input(i));
      pb::BlobShape* shape = param->add_shape();
      if (has_shape) {
        shape->CopyFrom(net->input_shape(i));
      } else {
        for (int d = 0; d < 4; ++d) shape->add_dim(net->input_dim(4 * i + d));
      }
    }
    // The Input layer goes first so that every consumer comes after it.
    net->add_layer()->Swap(&input_layer);
    for (int i = net->layer_size() - 1; i > 0; --i) net->mutable_layer()->SwapElements(i, i - 1);
  }
  // Without shapes (as in old .caffemodel files) the inputs carried nothing a weights file
  // needs; they are simply dropped.
  net->clear_input();
  net->clear_input_shape();
  net->clear_input_dim();
}

// ---------------------------------------------------------------------------------------
// Step 5: BatchNorm parameter multipliers
// ---------------------------------------------------------------------------------------

namespace {

bool IsOldStyleBatchNorm(const pb::LayerParameter& layer) {
  return layer.type() == "BatchNorm" && layer.param_size() == 3;
}

bool IsFrozen(const pb::ParamSpec& spec) {
  return spec.has_lr_mult() && spec.lr_mult() == 0.f && spec.has_decay_mult() &&
         spec.decay_mult() == 0.f;
}

}  // namespace

bool NetNeedsBatchNormUpgrade(const pb::NetParameter& net) {
  for (const pb::LayerParameter& layer : net.layer()) {
    if (!IsOldStyleBatchNorm(layer)) continue;
    for (const pb::ParamSpec& spec : layer.param()) {
      if (!IsFrozen(spec)) return true;
    }
  }
  return false;
}

void UpgradeNetBatchNorm(pb::NetParameter* net) {
  for (pb::LayerParameter& layer : *net->mutable_layer()) {
    if (!IsOldStyleBatchNorm(layer)) continue;
    for (pb::ParamSpec& spec : *layer.mutable_param()) {
      spec.set_lr_mult(0.f);
      spec.set_decay_mult(0.f);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Whole nets
// ---------------------------------------------------------------------------------------

bool NetNeedsUpgrade(const pb::NetParameter& net) {
  return NetNeedsV0ToV1Upgrade(net) || NetNeedsDataUpgrade(net) || NetNeedsV1ToV2Upgrade(net) ||
         NetNeedsInputUpgrade(net) || NetNeedsBatchNormUpgrade(net);
}

bool UpgradeNetAsNeeded(const std::string& source_name, pb::NetParameter* net) {
  bool changed = false;
  if (NetNeedsV0ToV1Upgrade(*net)) {
    const bool complete = UpgradeV0Net(source_name, net);
    changed = true;
    LOG(WARNING) << source_name << ": upgraded V0 layer definitions (the oldest Caffe format)"
                 << (complete ? ""
                              : "; some settings had no equivalent and were dropped (see "
                                "the errors above)")
                 << "; " << kNetToolsHint << ".";
  }
  if (NetNeedsDataUpgrade(*net)) {
    UpgradeNetDataTransformation(source_name, net);
    changed = true;
    LOG(WARNING) << source_name << ": moved scale/mean_file/crop_size/mirror from data layer "
                 << "parameters into transform_param; " << kNetToolsHint << ".";
  }
  if (NetNeedsV1ToV2Upgrade(*net)) {
    const bool complete = UpgradeV1Net(source_name, net);
    changed = true;
    LOG(WARNING) << source_name << ": upgraded V1 `layers` definitions to `layer`"
                 << (complete ? ""
                              : "; some content had no equivalent and was dropped (see the "
                                "errors above)")
                 << "; " << kNetToolsHint << ".";
  }
  if (NetNeedsInputUpgrade(*net)) {
    UpgradeNetInput(source_name, net);
    changed = true;
    LOG(WARNING) << source_name << ": replaced the net's input/input_dim/input_shape fields "
                 << "by an Input layer; " << kNetToolsHint << ".";
  }
  if (NetNeedsBatchNormUpgrade(*net)) {
    UpgradeNetBatchNorm(net);
    changed = true;
    LOG(WARNING) << source_name << ": set lr_mult and decay_mult to 0 in the param entries of "
                 << "BatchNorm layers (their blobs are statistics, not learned); " << kNetToolsHint
                 << ".";
  }
  return changed;
}

// ---------------------------------------------------------------------------------------
// Solvers
// ---------------------------------------------------------------------------------------

bool SolverNeedsTypeUpgrade(const pb::SolverParameter& solver) {
  return solver.has_solver_type();
}

void UpgradeSolverType(const std::string& source_name, pb::SolverParameter* solver) {
  if (!solver->has_solver_type()) return;
  if (solver->has_type()) {
    CREMA_THROW(source_name << " gives both the legacy solver_type ("
                            << pb::SolverParameter::SolverType_Name(solver->solver_type())
                            << ") and type (\"" << solver->type() << "\"); keep only type.");
  }
  std::string type;
  switch (solver->solver_type()) {
    case pb::SolverParameter::SGD:
      type = "SGD";
      break;
    case pb::SolverParameter::NESTEROV:
      type = "Nesterov";
      break;
    case pb::SolverParameter::ADAGRAD:
      type = "AdaGrad";
      break;
    case pb::SolverParameter::RMSPROP:
      type = "RMSProp";
      break;
    case pb::SolverParameter::ADADELTA:
      type = "AdaDelta";
      break;
    case pb::SolverParameter::ADAM:
      type = "Adam";
      break;
  }
  CHECK(!type.empty()) << "unhandled SolverType " << solver->solver_type();
  solver->set_type(type);
  solver->clear_solver_type();
}

bool UpgradeSolverAsNeeded(const std::string& source_name, pb::SolverParameter* solver) {
  if (!SolverNeedsTypeUpgrade(*solver)) return false;
  UpgradeSolverType(source_name, solver);
  LOG(WARNING) << source_name << ": replaced the legacy enum solver_type by type: \""
               << solver->type() << "\"; " << kSolverToolHint << ".";
  return true;
}

}  // namespace crema
