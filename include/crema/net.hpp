// Net: the layer graph of a NetParameter, filtered by the net state (phase, level, stages),
// with split layers inserted where one blob feeds several layers, and the bookkeeping of
// which layers need backward, loss weights, and learnable parameters (with sharing by
// ParamSpec name, lr_mult and decay_mult).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/layer.hpp"

namespace crema {

struct FusedChain;  // src/inference_fusion.hpp
class NetGraphs;    // src/net_graph.hpp

class Net {
 public:
  // `param` is used as given (its state decides which layers are kept).
  explicit Net(const pb::NetParameter& param);
  // Reads (and upgrades) a prototxt; phase/level/stages override its state.
  Net(const std::string& prototxt_path, Phase phase, int level = 0,
      const std::vector<std::string>& stages = {});
  ~Net();
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;

  // Runs every layer forward; returns the output blobs. `loss` receives the weighted loss.
  // On the GPU, Forward and Backward replay runs of layers as CUDA graphs once their shapes
  // settle (src/net_graph.hpp; CREMA_CUDA_GRAPHS=0 turns that off); the partial passes
  // below always run layer by layer.
  const std::vector<Blob*>& Forward(float* loss = nullptr);
  float ForwardFromTo(int start, int end);
  float ForwardFrom(int start) { return ForwardFromTo(start, num_layers() - 1); }
  float ForwardTo(int end) { return ForwardFromTo(0, end); }
  // Runs layer i, or, in GPU mode, the fused chain that starts at layer i when it ends at or
  // before `end` (BatchNorm [+ Scale] [+ ReLU], Eltwise SUM + ReLU at test time:
  // src/inference_fusion.hpp); adds
  // the loss to *loss; returns the index of the next layer to run.
  int ForwardStep(int i, int end, float* loss);
  // The chains fused on the GPU, as (first layer, last layer) index pairs.
  std::vector<std::pair<int, int>> fused_chains() const;
  void Backward();
  void BackwardFromTo(int start, int end);
  float ForwardBackward() {
    float loss = 0;
    Forward(&loss);
    Backward();
    return loss;
  }
  // Re-runs every layer's Reshape (after an input blob changed shape).
  void Reshape();

  // Calls SeekBatch(index) on every data layer (exact resume).
  void SeekDataBatches(int64_t index);

  // Learnable parameters: data -= diff for every owner.
  void Update();
  void ClearParamDiffs();

  // The test net of a solver uses the train net's parameters (no copy).
  void ShareTrainedLayersWith(const Net& other);
  // Fine-tuning rules (Caffe's): match by layer name, skip source layers the net lacks
  // (logged), require equal blob count and shapes (crema::Error naming the layer and both
  // shapes otherwise).
  void CopyTrainedLayersFrom(const pb::NetParameter& param);
  // A .caffemodel file, or several separated by commas.
  void CopyTrainedLayersFrom(const std::string& weights_paths);
  void ToProto(pb::NetParameter* param, bool write_diff = false) const;

  const std::string& name() const { return name_; }
  // The precision of the net's GPU math and, for FP16, its loss scaler and overflow flag
  // (prototxt `precision { ... }`; FP32 when absent).
  MixedPrecision* mixed_precision() const { return mixed_.get(); }
  Phase phase() const { return phase_; }
  int num_layers() const { return static_cast<int>(layers_.size()); }
  const std::vector<std::string>& layer_names() const { return layer_names_; }
  const std::vector<std::string>& blob_names() const { return blob_names_; }
  const std::vector<std::shared_ptr<Blob>>& blobs() const { return blobs_; }
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }
  const std::vector<std::vector<Blob*>>& bottom_vecs() const { return bottom_vecs_; }
  const std::vector<std::vector<Blob*>>& top_vecs() const { return top_vecs_; }
  const std::vector<int>& top_ids(int layer) const { return top_id_vecs_[layer]; }
  const std::vector<int>& bottom_ids(int layer) const { return bottom_id_vecs_[layer]; }
  const std::vector<std::vector<bool>>& bottom_need_backward() const {
    return bottom_need_backward_;
  }
  const std::vector<bool>& layer_need_backward() const { return layer_need_backward_; }
  const std::vector<float>& blob_loss_weights() const { return blob_loss_weights_; }

  // Every parameter blob of every layer (shared ones appear once per user).
  const std::vector<std::shared_ptr<Blob>>& params() const { return params_; }
  // The owners only: what the solver updates.
  const std::vector<Blob*>& learnable_params() const { return learnable_params_; }
  const std::vector<float>& params_lr() const { return params_lr_; }
  const std::vector<bool>& has_params_lr() const { return has_params_lr_; }
  const std::vector<float>& params_weight_decay() const { return params_weight_decay_; }
  const std::vector<bool>& has_params_decay() const { return has_params_decay_; }
  // For params_[i]: the index of its owner in params_, or -1 if it owns itself.
  const std::vector<int>& param_owners() const { return param_owners_; }
  const std::vector<std::string>& param_display_names() const { return param_display_names_; }
  // For params_[i]: (layer index, blob index within that layer).
  const std::vector<std::pair<int, int>>& param_layer_indices() const {
    return param_layer_indices_;
  }
  // For params_[i]: the index in learnable_params_ of the blob that is updated for it
  // (its own, or its owner's).
  const std::vector<int>& learnable_param_ids() const { return learnable_param_ids_; }

  const std::vector<Blob*>& input_blobs() const { return net_input_blobs_; }
  const std::vector<Blob*>& output_blobs() const { return net_output_blobs_; }
  const std::vector<int>& input_blob_indices() const { return net_input_blob_indices_; }
  const std::vector<int>& output_blob_indices() const { return net_output_blob_indices_; }

  bool has_blob(const std::string& name) const;
  std::shared_ptr<Blob> blob_by_name(const std::string& name) const;  // nullptr if absent
  bool has_layer(const std::string& name) const;
  std::shared_ptr<Layer> layer_by_name(const std::string& name) const;  // nullptr if absent

  void set_debug_info(bool value) { debug_info_ = value; }
  bool debug_info() const { return debug_info_; }
  // What the CUDA graphs of Forward/Backward cover and did so far (empty before the first
  // GPU pass with graphs, and in builds without CUDA).
  std::string graph_summary() const;
  // Allows (the default, unless CREMA_CUDA_GRAPHS=0) or forbids those graphs for this net.
  void set_cuda_graphs(bool allowed) { cuda_graphs_ = allowed; }
  const NetGraphs* cuda_graphs() const { return graphs_.get(); }

  // Hooks for data-parallel training: called after layer i's backward (gradients of its
  // parameters are final then).
  void add_after_backward(std::function<void(int layer)> hook) {
    after_backward_.push_back(std::move(hook));
  }
  void clear_after_backward() { after_backward_.clear(); }

  // Net-state filtering (Caffe's rules): a layer is kept when it meets at least one include
  // rule (or has none) and meets no exclude rule.
  static void FilterNet(const pb::NetParameter& param, pb::NetParameter* filtered);
  static bool StateMeetsRule(const pb::NetState& state, const pb::NetStateRule& rule,
                             const std::string& layer_name);

 private:
  void Init(const pb::NetParameter& param);
  void CheckGpuSupport() const;
  void AppendTop(const pb::NetParameter& param, int layer_id, int top_id,
                 std::set<std::string>* available_blobs,
                 std::map<std::string, int>* blob_name_to_idx);
  int AppendBottom(const pb::NetParameter& param, int layer_id, int bottom_id,
                   std::set<std::string>* available_blobs,
                   std::map<std::string, int>* blob_name_to_idx);
  void AppendParam(const pb::NetParameter& param, int layer_id, int param_id);
  void ForwardDebugInfo(int layer_id);
  void BackwardDebugInfo(int layer_id);

  std::shared_ptr<MixedPrecision> mixed_;
  std::string name_;
  Phase phase_ = Phase::TRAIN;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<std::string> layer_names_;
  std::map<std::string, int> layer_names_index_;
  std::vector<bool> layer_need_backward_;
  std::vector<std::shared_ptr<Blob>> blobs_;
  std::vector<std::string> blob_names_;
  std::map<std::string, int> blob_names_index_;
  std::vector<bool> blob_need_backward_;
  std::vector<std::vector<Blob*>> bottom_vecs_;
  std::vector<std::vector<int>> bottom_id_vecs_;
  std::vector<std::vector<bool>> bottom_need_backward_;
  std::vector<std::vector<Blob*>> top_vecs_;
  std::vector<std::vector<int>> top_id_vecs_;
  std::vector<std::vector<int>> param_id_vecs_;
  std::vector<float> blob_loss_weights_;
  std::vector<int> param_owners_;
  std::vector<std::string> param_display_names_;
  std::vector<std::pair<int, int>> param_layer_indices_;
  std::map<std::string, int> param_names_index_;
  std::vector<int> net_input_blob_indices_;
  std::vector<int> net_output_blob_indices_;
  std::vector<Blob*> net_input_blobs_;
  std::vector<Blob*> net_output_blobs_;
  std::vector<std::shared_ptr<Blob>> params_;
  std::vector<Blob*> learnable_params_;
  std::vector<int> learnable_param_ids_;
  std::vector<float> params_lr_;
  std::vector<bool> has_params_lr_;
  std::vector<float> params_weight_decay_;
  std::vector<bool> has_params_decay_;
  bool debug_info_ = false;
  std::vector<std::function<void(int)>> after_backward_;
  std::vector<std::shared_ptr<const FusedChain>> fused_at_;  // per layer; set at chain starts
  // The CUDA graphs of Forward/Backward, made on the first GPU pass that may use them.
  bool UseGraphs() const;
  NetGraphs* graphs();
  std::shared_ptr<NetGraphs> graphs_;
  bool cuda_graphs_ = true;
};

// Inserts Split layers so that every blob consumed by several layers is produced once and
// copied per consumer ("<blob>_<layer>_<i>_split_<j>"), as Caffe names them; gradients of the
// copies are summed in the Split layer's backward.
void InsertSplits(const pb::NetParameter& param, pb::NetParameter* param_split);

}  // namespace crema
