#include "crema/net.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#ifdef CREMA_WITH_CUDA
#include "src/cuda_util.hpp"
#endif
#include "src/inference_fusion.hpp"
#include "src/net_graph.hpp"

namespace crema {

Net::Net(const pb::NetParameter& param) {
  Init(param);
}

Net::Net(const std::string& prototxt_path, Phase phase, int level,
         const std::vector<std::string>& stages) {
  pb::NetParameter param;
  ReadNetParamsFromTextFile(prototxt_path, &param);
  pb::NetState* state = param.mutable_state();
  state->set_phase(static_cast<pb::Phase>(phase));
  state->set_level(level);
  state->clear_stage();
  for (const auto& stage : stages) state->add_stage(stage);
  Init(param);
}

Net::~Net() = default;

bool Net::StateMeetsRule(const pb::NetState& state, const pb::NetStateRule& rule,
                         const std::string& layer_name) {
  if (rule.has_phase() && rule.phase() != state.phase()) return false;
  if (rule.has_min_level() && state.level() < rule.min_level()) return false;
  if (rule.has_max_level() && state.level() > rule.max_level()) return false;
  auto in_state = [&](const std::string& stage) {
    return std::find(state.stage().begin(), state.stage().end(), stage) != state.stage().end();
  };
  for (const auto& stage : rule.stage())
    if (!in_state(stage)) return false;
  for (const auto& stage : rule.not_stage())
    if (in_state(stage)) return false;
  return true;
}

void Net::FilterNet(const pb::NetParameter& param, pb::NetParameter* filtered) {
  const pb::NetState& state = param.state();
  filtered->CopyFrom(param);
  filtered->clear_layer();
  for (const auto& layer : param.layer()) {
    CREMA_REQUIRE(
        layer.include_size() == 0 || layer.exclude_size() == 0,
        "Layer '" << layer.name() << "': give either include rules or exclude rules, not both");
    bool included = layer.include_size() == 0;
    for (const auto& rule : layer.exclude())
      if (StateMeetsRule(state, rule, layer.name())) included = false;
    for (const auto& rule : layer.include())
      if (StateMeetsRule(state, rule, layer.name())) included = true;
    if (included) filtered->add_layer()->CopyFrom(layer);
  }
}

// GPU mode: every layer must have GPU code, or the user must have allowed CPU fallback;
// either way the net says which layers would leave the device.
void Net::CheckGpuSupport() const {
  if (Context::mode() != Mode::GPU) return;
  std::ostringstream missing;
  int count = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i]->HasGpuImplementation()) continue;
    missing << (count++ ? ", " : "") << "'" << layer_names_[i] << "' (" << layers_[i]->type()
            << ")";
  }
  if (count == 0) return;
  CREMA_REQUIRE(Context::allow_cpu_fallback(),
                "Net '" << name_ << "' runs in GPU mode, but " << count
                        << " layer(s) have no GPU code: " << missing.str()
                        << ". Run the net on the CPU, or pass --allow_cpu_fallback to run "
                           "these layers on the CPU (their blobs are copied between host and "
                           "device every iteration).");
  LOG(WARNING) << "Net '" << name_ << "': " << count
               << " layer(s) without GPU code run on the CPU (--allow_cpu_fallback): "
               << missing.str();
}

void Net::Init(const pb::NetParameter& in_param) {
  pb::NetParameter filtered, param;
  FilterNet(in_param, &filtered);
  InsertSplits(filtered, &param);
  name_ = param.name();
  phase_ = static_cast<Phase>(param.state().phase());
  mixed_ = MakeMixedPrecision(param);
  LOG_IF(INFO, Context::root_solver()) << "Initializing net '" << name_ << "' for phase "
                                       << (phase_ == Phase::TRAIN ? "TRAIN" : "TEST");

  std::set<std::string> available_blobs;
  std::map<std::string, int> blob_name_to_idx;
  const int num_layers = param.layer_size();
  bottom_vecs_.resize(num_layers);
  top_vecs_.resize(num_layers);
  bottom_id_vecs_.resize(num_layers);
  top_id_vecs_.resize(num_layers);
  param_id_vecs_.resize(num_layers);
  bottom_need_backward_.resize(num_layers);
  size_t activation_floats = 0;

  for (int layer_id = 0; layer_id < num_layers; ++layer_id) {
    pb::LayerParameter* layer_param = param.mutable_layer(layer_id);
    if (!layer_param->has_phase()) layer_param->set_phase(param.state().phase());
    CREMA_REQUIRE(layer_param->propagate_down_size() == 0 ||
                      layer_param->propagate_down_size() == layer_param->bottom_size(),
                  "Layer '" << layer_param->name() << "': propagate_down has "
                            << layer_param->propagate_down_size()
                            << " values; give none or one per bottom ("
                            << layer_param->bottom_size() << ")");
    layers_.push_back(LayerRegistry::Create(*layer_param));
    layer_names_.push_back(layer_param->name());
    Layer& layer = *layers_.back();

    bool need_backward = false;
    for (int b = 0; b < layer_param->bottom_size(); ++b) {
      const int blob_id = AppendBottom(param, layer_id, b, &available_blobs, &blob_name_to_idx);
      need_backward |= blob_need_backward_[blob_id];
    }
    for (int t = 0; t < layer_param->top_size(); ++t)
      AppendTop(param, layer_id, t, &available_blobs, &blob_name_to_idx);
    // Losses and similar layers may be declared without tops: create anonymous ones.
    if (layer.AutoTopBlobs()) {
      const int needed = std::max(layer.MinTopBlobs(), layer.ExactNumTopBlobs());
      for (int t = layer_param->top_size(); t < needed; ++t)
        AppendTop(param, layer_id, t, nullptr, nullptr);
    }

    layer.set_mixed_precision(mixed_);
    try {
      layer.SetUp(bottom_vecs_[layer_id], top_vecs_[layer_id]);
    } catch (const Error& e) {
      // Errors from shared code (fillers, math) do not know the layer: name it.
      const std::string prefix = layer.error_prefix(), what = e.what();
      if (what.compare(0, prefix.size(), prefix) == 0) throw;
      CREMA_THROW(prefix << what);
    }
    for (size_t t = 0; t < top_vecs_[layer_id].size(); ++t) {
      const int blob_id = top_id_vecs_[layer_id][t];
      if (static_cast<int>(blob_loss_weights_.size()) <= blob_id)
        blob_loss_weights_.resize(blob_id + 1, 0.f);
      blob_loss_weights_[blob_id] = layer.loss(static_cast<int>(t));
      VLOG(1) << "Top shape of " << layer_param->name() << ": "
              << top_vecs_[layer_id][t]->shape_string();
      if (layer.loss(static_cast<int>(t)) != 0)
        VLOG(1) << "    with loss weight " << layer.loss(static_cast<int>(t));
      activation_floats += top_vecs_[layer_id][t]->count();
    }

    // Parameter specs come from the layer's own copy: a layer may add specs at setup
    // (BatchNorm freezes its statistics with lr_mult 0, as in Caffe).
    const pb::LayerParameter& own_param = layer.layer_param();
    const int num_param_blobs = static_cast<int>(layer.blobs().size());
    CREMA_REQUIRE(own_param.param_size() <= num_param_blobs,
                  layer.error_prefix()
                      << "has " << own_param.param_size() << " param {} specs but only "
                      << num_param_blobs << " parameter blob(s)");
    for (int p = 0; p < num_param_blobs; ++p) {
      const bool learn = p < own_param.param_size() ? own_param.param(p).lr_mult() != 0 : true;
      need_backward |= learn;
      layer.set_param_propagate_down(p, learn);
    }
    for (int p = 0; p < num_param_blobs; ++p) AppendParam(param, layer_id, p);

    layer_need_backward_.push_back(need_backward);
    if (need_backward)
      for (int blob_id : top_id_vecs_[layer_id]) blob_need_backward_[blob_id] = true;
  }

  // Walk backwards: a layer needs backward only if something downstream of it reaches a
  // loss and some bottom or parameter of it wants a gradient.
  std::set<std::string> blobs_under_loss, blobs_skip_backprop;
  for (int layer_id = num_layers - 1; layer_id >= 0; --layer_id) {
    bool contributes_to_loss = false;
    bool skip_propagate_down = true;
    for (size_t t = 0; t < top_vecs_[layer_id].size(); ++t) {
      const std::string& blob_name = blob_names_[top_id_vecs_[layer_id][t]];
      if (layers_[layer_id]->loss(static_cast<int>(t)) != 0 || blobs_under_loss.count(blob_name))
        contributes_to_loss = true;
      if (!blobs_skip_backprop.count(blob_name)) skip_propagate_down = false;
      if (contributes_to_loss && !skip_propagate_down) break;
    }
    if (layer_need_backward_[layer_id] && skip_propagate_down) {
      layer_need_backward_[layer_id] = false;
      std::fill(bottom_need_backward_[layer_id].begin(), bottom_need_backward_[layer_id].end(),
                false);
    }
    if (!contributes_to_loss) layer_need_backward_[layer_id] = false;
    VLOG(1) << layer_names_[layer_id]
            << (layer_need_backward_[layer_id] ? " needs backward computation."
                                               : " does not need backward computation.");
    for (size_t b = 0; b < bottom_vecs_[layer_id].size(); ++b) {
      const std::string& blob_name = blob_names_[bottom_id_vecs_[layer_id][b]];
      if (contributes_to_loss)
        blobs_under_loss.insert(blob_name);
      else
        bottom_need_backward_[layer_id][b] = false;
      if (!bottom_need_backward_[layer_id][b]) blobs_skip_backprop.insert(blob_name);
    }
  }

  if (param.force_backward()) {
    for (int layer_id = 0; layer_id < num_layers; ++layer_id) {
      layer_need_backward_[layer_id] = true;
      for (size_t b = 0; b < bottom_need_backward_[layer_id].size(); ++b) {
        const bool allowed = layers_[layer_id]->AllowForceBackward(static_cast<int>(b));
        bottom_need_backward_[layer_id][b] = bottom_need_backward_[layer_id][b] || allowed;
        blob_need_backward_[bottom_id_vecs_[layer_id][b]] =
            blob_need_backward_[bottom_id_vecs_[layer_id][b]] || bottom_need_backward_[layer_id][b];
      }
      for (size_t p = 0; p < layers_[layer_id]->blobs().size(); ++p)
        layers_[layer_id]->set_param_propagate_down(static_cast<int>(p), true);
    }
  }

  CheckGpuSupport();
  if (mixed_->precision != Precision::FP32)
    LOG_IF(INFO, Context::root_solver())
        << "Net '" << name_ << "': Convolution and InnerProduct compute in "
        << PrecisionName(mixed_->precision) << " on the GPU"
        << (mixed_->precision == Precision::FP16
                ? (mixed_->scaler.dynamic() ? " (dynamic loss scale, from "
                                            : " (fixed loss scale ") +
                      std::to_string(mixed_->scaler.scale()) + ")"
                : std::string());

  // What nobody consumed is an output of the net (sorted by name, as Caffe lists them).
  for (const auto& blob_name : available_blobs) {
    const int blob_id = blob_name_to_idx[blob_name];
    net_output_blobs_.push_back(blobs_[blob_id].get());
    net_output_blob_indices_.push_back(blob_id);
  }
  for (size_t i = 0; i < blob_names_.size(); ++i) blob_names_index_[blob_names_[i]] = i;
  for (size_t i = 0; i < layer_names_.size(); ++i) layer_names_index_[layer_names_[i]] = i;

  // Shared parameters use their owner's storage.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (param_owners_[i] < 0) continue;
    params_[i]->ShareData(*params_[param_owners_[i]]);
    params_[i]->ShareDiff(*params_[param_owners_[i]]);
  }
  debug_info_ = param.debug_info();
  fused_at_.assign(num_layers, nullptr);
  const std::vector<FusedChain> chains = FindFusedChains(*this);
  for (const FusedChain& chain : chains)
    fused_at_[chain.first] = std::make_shared<const FusedChain>(chain);
  int convolution_chains = 0;
  for (const FusedChain& chain : chains)
    convolution_chains += chain.kind == FusedChain::Kind::kConvolution;
  LOG_IF(INFO, Context::root_solver() && !chains.empty())
      << "Net '" << name_ << "': " << chains.size() << " layer chain(s) fused on the GPU, "
      << convolution_chains
      << " of them convolutions that apply the BatchNorm, Scale, ReLU or Eltwise SUM after "
         "them as they write their output (test-time fusion, src/inference_fusion.hpp; "
         "CREMA_FUSION=0 turns it off)";
  LOG_IF(INFO, Context::root_solver())
      << "Network '" << name_ << "' ready: " << num_layers << " layers, "
      << learnable_params_.size() << " learnable blobs, activations "
      << activation_floats * sizeof(float) / (1 << 20) << " MiB";
}

void Net::AppendTop(const pb::NetParameter& param, int layer_id, int top_id,
                    std::set<std::string>* available_blobs,
                    std::map<std::string, int>* blob_name_to_idx) {
  const pb::LayerParameter& layer_param = param.layer(layer_id);
  const std::string blob_name =
      top_id < layer_param.top_size() ? layer_param.top(top_id) : "(automatic)";
  if (blob_name_to_idx && top_id < layer_param.bottom_size() &&
      layer_param.bottom(top_id) == blob_name) {
    // In-place: the top is the bottom at the same position.
    VLOG(1) << layer_param.name() << " -> " << blob_name << " (in-place)";
    const int blob_id = (*blob_name_to_idx)[blob_name];
    top_vecs_[layer_id].push_back(blobs_[blob_id].get());
    top_id_vecs_[layer_id].push_back(blob_id);
  } else {
    CREMA_REQUIRE(!blob_name_to_idx || !blob_name_to_idx->count(blob_name),
                  "Layer '" << layer_param.name() << "': top blob '" << blob_name
                            << "' is produced by more than one layer (in-place use must "
                               "name the blob as both bottom and top at the same position)");
    const int blob_id = static_cast<int>(blobs_.size());
    blobs_.push_back(std::make_shared<Blob>());
    blob_names_.push_back(blob_name);
    blob_need_backward_.push_back(false);
    if (blob_name_to_idx) (*blob_name_to_idx)[blob_name] = blob_id;
    top_vecs_[layer_id].push_back(blobs_.back().get());
    top_id_vecs_[layer_id].push_back(blob_id);
    if (layer_param.type() == "Input") {
      net_input_blob_indices_.push_back(blob_id);
      net_input_blobs_.push_back(blobs_.back().get());
    }
  }
  if (available_blobs) available_blobs->insert(blob_name);
}

int Net::AppendBottom(const pb::NetParameter& param, int layer_id, int bottom_id,
                      std::set<std::string>* available_blobs,
                      std::map<std::string, int>* blob_name_to_idx) {
  const pb::LayerParameter& layer_param = param.layer(layer_id);
  const std::string& blob_name = layer_param.bottom(bottom_id);
  CREMA_REQUIRE(available_blobs->count(blob_name),
                "Layer '" << layer_param.name() << "' (" << layer_param.type()
                          << "): unknown bottom blob '" << blob_name << "' (bottom index "
                          << bottom_id << "): no earlier layer produces it");
  const int blob_id = (*blob_name_to_idx)[blob_name];
  bottom_vecs_[layer_id].push_back(blobs_[blob_id].get());
  bottom_id_vecs_[layer_id].push_back(blob_id);
  available_blobs->erase(blob_name);
  bool need_backward = blob_need_backward_[blob_id];
  if (layer_param.propagate_down_size() > 0) need_backward = layer_param.propagate_down(bottom_id);
  bottom_need_backward_[layer_id].push_back(need_backward);
  return blob_id;
}

void Net::AppendParam(const pb::NetParameter& param, int layer_id, int param_id) {
  const pb::LayerParameter& layer_param = layers_[layer_id]->layer_param();
  static const pb::ParamSpec kDefaultSpec;
  const pb::ParamSpec& spec =
      param_id < layer_param.param_size() ? layer_param.param(param_id) : kDefaultSpec;
  const std::string& param_name = spec.name();
  const int net_param_id = static_cast<int>(params_.size());
  params_.push_back(layers_[layer_id]->blobs()[param_id]);
  param_id_vecs_[layer_id].push_back(net_param_id);
  param_layer_indices_.emplace_back(layer_id, param_id);
  param_display_names_.push_back(param_name.empty() ? std::to_string(param_id) : param_name);

  if (param_name.empty() || !param_names_index_.count(param_name)) {
    // This layer owns the parameter.
    param_owners_.push_back(-1);
    if (!param_name.empty()) param_names_index_[param_name] = net_param_id;
    learnable_param_ids_.push_back(static_cast<int>(learnable_params_.size()));
    learnable_params_.push_back(params_.back().get());
    has_params_lr_.push_back(spec.has_lr_mult());
    has_params_decay_.push_back(spec.has_decay_mult());
    params_lr_.push_back(spec.lr_mult());
    params_weight_decay_.push_back(spec.decay_mult());
    return;
  }

  // Shared with an earlier owner of the same name.
  const int owner_id = param_names_index_[param_name];
  param_owners_.push_back(owner_id);
  const auto [owner_layer, owner_blob_index] = param_layer_indices_[owner_id];
  const Blob& owner_blob = *layers_[owner_layer]->blobs()[owner_blob_index];
  const Blob& this_blob = *layers_[layer_id]->blobs()[param_id];
  LOG_IF(INFO, Context::root_solver())
      << "Sharing parameter '" << param_name << "' owned by layer '" << layer_names_[owner_layer]
      << "', param index " << owner_blob_index;
  if (spec.share_mode() == pb::ParamSpec::PERMISSIVE) {
    CREMA_REQUIRE(this_blob.count() == owner_blob.count(),
                  "Layer '" << layer_param.name() << "': cannot share parameter '" << param_name
                            << "' owned by layer '" << layer_names_[owner_layer]
                            << "': count mismatch (owner shape " << owner_blob.shape_string()
                            << ", this shape " << this_blob.shape_string() << ")");
  } else {
    CREMA_REQUIRE(this_blob.shape() == owner_blob.shape(),
                  "Layer '" << layer_param.name() << "': cannot share parameter '" << param_name
                            << "' owned by layer '" << layer_names_[owner_layer]
                            << "': shape mismatch (owner shape " << owner_blob.shape_string()
                            << ", this shape " << this_blob.shape_string()
                            << "); use share_mode: PERMISSIVE to share by count only");
  }
  const int learnable_id = learnable_param_ids_[owner_id];
  learnable_param_ids_.push_back(learnable_id);
  if (spec.has_lr_mult()) {
    if (has_params_lr_[learnable_id]) {
      CREMA_REQUIRE(spec.lr_mult() == params_lr_[learnable_id],
                    "Layer '" << layer_param.name() << "': shared parameter '" << param_name
                              << "' has lr_mult " << spec.lr_mult() << " but its owner has "
                              << params_lr_[learnable_id]);
    } else {
      has_params_lr_[learnable_id] = true;
      params_lr_[learnable_id] = spec.lr_mult();
    }
  }
  if (spec.has_decay_mult()) {
    if (has_params_decay_[learnable_id]) {
      CREMA_REQUIRE(spec.decay_mult() == params_weight_decay_[learnable_id],
                    "Layer '" << layer_param.name() << "': shared parameter '" << param_name
                              << "' has decay_mult " << spec.decay_mult() << " but its owner has "
                              << params_weight_decay_[learnable_id]);
    } else {
      has_params_decay_[learnable_id] = true;
      params_weight_decay_[learnable_id] = spec.decay_mult();
    }
  }
}

float Net::ForwardFromTo(int start, int end) {
  CHECK_GE(start, 0);
  CHECK_LT(end, num_layers());
  float loss = 0;
  for (int i = start; i <= end;) i = ForwardStep(i, end, &loss);
  return loss;
}

int Net::ForwardStep(int i, int end, float* loss) {
#ifdef CREMA_WITH_CUDA
  const FusedChain* chain = fused_at_.empty() ? nullptr : fused_at_[i].get();
  if (chain && chain->last <= end && !debug_info_ && Context::mode() == Mode::GPU) {
    for (int k = chain->first; k <= chain->last; ++k)
      layers_[k]->Reshape(bottom_vecs_[k], top_vecs_[k]);
    ForwardFusedChainGpu(*chain, bottom_vecs_[i], top_vecs_[chain->last][0]);
    return chain->last + 1;
  }
#endif
  *loss += layers_[i]->Forward(bottom_vecs_[i], top_vecs_[i]);
  if (debug_info_) ForwardDebugInfo(i);
  return i + 1;
}

std::vector<std::pair<int, int>> Net::fused_chains() const {
  std::vector<std::pair<int, int>> chains;
  for (const auto& chain : fused_at_)
    if (chain) chains.emplace_back(chain->first, chain->last);
  return chains;
}

const std::vector<Blob*>& Net::Forward(float* loss) {
  float total = 0;
#ifdef CREMA_WITH_CUDA
  if (UseGraphs())
    total = graphs()->Forward();
  else
#endif
    total = num_layers() > 0 ? ForwardFromTo(0, num_layers() - 1) : 0.f;
  if (loss) *loss = total;
  return net_output_blobs_;
}

bool Net::UseGraphs() const {
#ifdef CREMA_WITH_CUDA
  return cuda_graphs_ && num_layers() > 0 && Context::mode() == Mode::GPU && !debug_info_ &&
         CudaGraphsEnabled();
#else
  return false;
#endif
}

NetGraphs* Net::graphs() {
#ifdef CREMA_WITH_CUDA
  if (!graphs_) graphs_ = std::make_shared<NetGraphs>(this);
#endif
  return graphs_.get();
}

std::string Net::graph_summary() const {
#ifdef CREMA_WITH_CUDA
  if (graphs_) return graphs_->Describe();
#endif
  return "";
}

void Net::BackwardFromTo(int start, int end) {
  CHECK_GE(end, 0);
  CHECK_LT(start, num_layers());
  for (int i = start; i >= end; --i) {
    if (!layer_need_backward_[i]) continue;
    layers_[i]->Backward(top_vecs_[i], bottom_need_backward_[i], bottom_vecs_[i]);
    if (debug_info_) BackwardDebugInfo(i);
    for (auto& hook : after_backward_) hook(i);
  }
}

void Net::Backward() {
#ifdef CREMA_WITH_CUDA
  if (UseGraphs() && after_backward_.empty()) {
    graphs()->Backward();
    return;
  }
#endif
  if (num_layers() > 0) BackwardFromTo(num_layers() - 1, 0);
  if (!debug_info_) return;
  double asum_data = 0, asum_diff = 0, sumsq_data = 0, sumsq_diff = 0;
  for (const Blob* blob : learnable_params_) {
    asum_data += blob->asum_data();
    asum_diff += blob->asum_diff();
    sumsq_data += blob->sumsq_data();
    sumsq_diff += blob->sumsq_diff();
  }
  LOG(INFO) << "    [Backward] All net params (data, diff): L1 norm = (" << asum_data << ", "
            << asum_diff << "); L2 norm = (" << std::sqrt(sumsq_data) << ", "
            << std::sqrt(sumsq_diff) << ")";
}

void Net::Reshape() {
  for (int i = 0; i < num_layers(); ++i) layers_[i]->Reshape(bottom_vecs_[i], top_vecs_[i]);
}

void Net::SeekDataBatches(int64_t index) {
  for (auto& layer : layers_) layer->SeekBatch(index);
}

void Net::Update() {
  for (Blob* blob : learnable_params_) blob->Update();
}

void Net::ClearParamDiffs() {
  for (Blob* blob : learnable_params_) {
#ifdef CREMA_WITH_CUDA
    if (Context::mode() == Mode::GPU) {
      CudaMemsetZero(blob->mutable_gpu_diff(), blob->count() * sizeof(float));
      continue;
    }
#endif
    cpu_set(blob->count(), 0.f, blob->mutable_cpu_diff());
  }
}

void Net::ForwardDebugInfo(int layer_id) {
  for (size_t t = 0; t < top_vecs_[layer_id].size(); ++t) {
    const Blob& blob = *top_vecs_[layer_id][t];
    LOG(INFO) << "    [Forward] Layer " << layer_names_[layer_id] << ", top blob "
              << blob_names_[top_id_vecs_[layer_id][t]]
              << " data: " << blob.asum_data() / std::max(1, blob.count());
  }
  for (size_t p = 0; p < layers_[layer_id]->blobs().size(); ++p) {
    const Blob& blob = *layers_[layer_id]->blobs()[p];
    LOG(INFO) << "    [Forward] Layer " << layer_names_[layer_id] << ", param blob " << p
              << " data: " << blob.asum_data() / std::max(1, blob.count());
  }
}

void Net::BackwardDebugInfo(int layer_id) {
  for (size_t b = 0; b < bottom_vecs_[layer_id].size(); ++b) {
    if (!bottom_need_backward_[layer_id][b]) continue;
    const Blob& blob = *bottom_vecs_[layer_id][b];
    LOG(INFO) << "    [Backward] Layer " << layer_names_[layer_id] << ", bottom blob "
              << blob_names_[bottom_id_vecs_[layer_id][b]]
              << " diff: " << blob.asum_diff() / std::max(1, blob.count());
  }
  for (size_t p = 0; p < layers_[layer_id]->blobs().size(); ++p) {
    if (!layers_[layer_id]->param_propagate_down(static_cast<int>(p))) continue;
    const Blob& blob = *layers_[layer_id]->blobs()[p];
    LOG(INFO) << "    [Backward] Layer " << layer_names_[layer_id] << ", param blob " << p
              << " diff: " << blob.asum_diff() / std::max(1, blob.count());
  }
}

void Net::ShareTrainedLayersWith(const Net& other) {
  for (int i = 0; i < other.num_layers(); ++i) {
    auto target = layer_by_name(other.layer_names()[i]);
    if (!target) continue;
    const auto& source_blobs = other.layers()[i]->blobs();
    auto& target_blobs = target->blobs();
    CREMA_REQUIRE(source_blobs.size() == target_blobs.size(),
                  "Layer '" << other.layer_names()[i] << "': " << target_blobs.size()
                            << " parameter blobs here but " << source_blobs.size()
                            << " in the net whose weights are shared");
    for (size_t j = 0; j < source_blobs.size(); ++j) {
      CREMA_REQUIRE(source_blobs[j]->shape() == target_blobs[j]->shape(),
                    "Layer '" << other.layer_names()[i] << "': parameter " << j << " has shape "
                              << target_blobs[j]->shape_string() << " here but "
                              << source_blobs[j]->shape_string()
                              << " in the net whose weights are shared");
      target_blobs[j]->ShareData(*source_blobs[j]);
    }
  }
}

void Net::CopyTrainedLayersFrom(const pb::NetParameter& param) {
  for (const auto& source : param.layer()) {
    auto target = layer_by_name(source.name());
    if (!target) {
      LOG_IF(INFO, Context::root_solver()) << "Ignoring source layer " << source.name();
      continue;
    }
    auto& target_blobs = target->blobs();
    CREMA_REQUIRE(static_cast<int>(target_blobs.size()) == source.blobs_size(),
                  "Layer '" << source.name() << "': the net has " << target_blobs.size()
                            << " parameter blob(s) but the weights have " << source.blobs_size());
    for (int j = 0; j < source.blobs_size(); ++j) {
      if (!target_blobs[j]->ShapeEquals(source.blobs(j))) {
        Blob stored;
        stored.FromProto(source.blobs(j), true);
        CREMA_THROW("Layer '" << source.name() << "': cannot copy parameter " << j
                              << ": shape mismatch (weights " << stored.shape_string() << ", net "
                              << target_blobs[j]->shape_string()
                              << "). To learn this layer's parameters from scratch instead of "
                                 "copying them, rename the layer.");
      }
      target_blobs[j]->FromProto(source.blobs(j), false);
    }
  }
}

void Net::CopyTrainedLayersFrom(const std::string& weights_paths) {
  std::stringstream list(weights_paths);
  std::string path;
  while (std::getline(list, path, ',')) {
    if (path.empty()) continue;
    pb::NetParameter param;
    ReadNetParamsFromBinaryFile(path, &param);
    try {
      CopyTrainedLayersFrom(param);
    } catch (const Error& e) {
      CREMA_THROW("weights file " << path << ": " << e.what());
    }
    LOG_IF(INFO, Context::root_solver()) << "Copied weights from " << path;
  }
}

void Net::ToProto(pb::NetParameter* param, bool write_diff) const {
  param->Clear();
  param->set_name(name_);
  for (const auto& layer : layers_) layer->ToProto(param->add_layer(), write_diff);
}

bool Net::has_blob(const std::string& name) const {
  return blob_names_index_.count(name) > 0;
}

std::shared_ptr<Blob> Net::blob_by_name(const std::string& name) const {
  auto it = blob_names_index_.find(name);
  return it == blob_names_index_.end() ? nullptr : blobs_[it->second];
}

bool Net::has_layer(const std::string& name) const {
  return layer_names_index_.count(name) > 0;
}

std::shared_ptr<Layer> Net::layer_by_name(const std::string& name) const {
  auto it = layer_names_index_.find(name);
  return it == layer_names_index_.end() ? nullptr : layers_[it->second];
}

}  // namespace crema
