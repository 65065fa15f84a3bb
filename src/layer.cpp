#include "crema/layer.hpp"

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/math_functions.hpp"
#ifdef CREMA_WITH_CUDA
#include "src/cuda_util.hpp"
#endif

namespace crema {

Layer::Layer(const pb::LayerParameter& param)
    : layer_param_(std::make_unique<pb::LayerParameter>(param)),
      phase_(static_cast<Phase>(param.phase())) {
  // Parameters stored in the LayerParameter itself (a .caffemodel read as a net).
  for (int i = 0; i < param.blobs_size(); ++i) {
    blobs_.push_back(std::make_shared<Blob>());
    blobs_.back()->FromProto(param.blobs(i));
  }
}

Layer::~Layer() = default;

const std::string& Layer::name() const {
  return layer_param_->name();
}

std::string Layer::error_prefix() const {
  return "Layer '" + name() + "' (" + type() + "): ";
}

void Layer::SetUp(const BlobVec& bottom, const BlobVec& top) {
  CheckBlobCounts(bottom, top);
  LayerSetUp(bottom, top);
  Reshape(bottom, top);
  SetLossWeights(top);
}

// A layer without GPU code runs on the CPU in GPU mode only when the user allowed it
// (Context::allow_cpu_fallback; Net refuses to build otherwise and logs each such layer).
// SyncedMemory moves its blobs between host and device as they are read.
bool Layer::RunsOnCpu() const {
  return Context::mode() == Mode::CPU || (!HasGpuImplementation() && Context::allow_cpu_fallback());
}

float Layer::Forward(const BlobVec& bottom, const BlobVec& top) {
  Reshape(bottom, top);
  float total_loss = 0;
  if (RunsOnCpu()) {
    Forward_cpu(bottom, top);
    for (size_t t = 0; t < top.size(); ++t) {
      if (this->loss(static_cast<int>(t)) == 0) continue;
      total_loss += cpu_dot(top[t]->count(), top[t]->cpu_data(), top[t]->cpu_diff());
    }
  } else {
    Forward_gpu(bottom, top);
#ifdef CREMA_WITH_CUDA
    if (!Context::loss_readback()) return 0.f;  // nobody reads it: no wait for the GPU
    for (size_t t = 0; t < top.size(); ++t) {
      if (this->loss(static_cast<int>(t)) == 0) continue;
      total_loss += gpu_dot(top[t]->count(), top[t]->gpu_data(), top[t]->gpu_diff());
    }
#endif
  }
  return total_loss;
}

void Layer::Backward(const BlobVec& top, const std::vector<bool>& propagate_down,
                     const BlobVec& bottom) {
  if (RunsOnCpu())
    Backward_cpu(top, propagate_down, bottom);
  else
    Backward_gpu(top, propagate_down, bottom);
}

void Layer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_THROW(
      "has no GPU implementation; run this net on the CPU (omit --gpu / set "
      "solver_mode: CPU), or allow this layer to run on the CPU with --allow_cpu_fallback");
}

void Layer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                         const BlobVec& bottom) {
  LAYER_THROW(
      "has no GPU implementation; run this net on the CPU (omit --gpu / set "
      "solver_mode: CPU), or allow this layer to run on the CPU with --allow_cpu_fallback");
}

void Layer::set_loss(int top_index, float value) {
  if (static_cast<int>(loss_.size()) <= top_index) loss_.resize(top_index + 1, 0.f);
  loss_[top_index] = value;
}

void Layer::set_param_propagate_down(int param_id, bool value) {
  if (static_cast<int>(param_propagate_down_.size()) <= param_id)
    param_propagate_down_.resize(param_id + 1, true);
  param_propagate_down_[param_id] = value;
}

void Layer::ToProto(pb::LayerParameter* param, bool write_diff) const {
  param->CopyFrom(*layer_param_);
  param->clear_blobs();
  for (const auto& blob : blobs_) blob->ToProto(param->add_blobs(), write_diff);
}

namespace {
std::string count_rule(int exact, int min, int max) {
  std::ostringstream out;
  if (exact >= 0)
    out << "exactly " << exact;
  else if (min >= 0 && max >= 0)
    out << "between " << min << " and " << max;
  else if (min >= 0)
    out << "at least " << min;
  else
    out << "at most " << max;
  return out.str();
}

bool violates(int n, int exact, int min, int max) {
  return (exact >= 0 && n != exact) || (min >= 0 && n < min) || (max >= 0 && n > max);
}
}  // namespace

void Layer::CheckBlobCounts(const BlobVec& bottom, const BlobVec& top) const {
  const int nb = static_cast<int>(bottom.size()), nt = static_cast<int>(top.size());
  if (violates(nb, ExactNumBottomBlobs(), MinBottomBlobs(), MaxBottomBlobs()))
    LAYER_THROW("takes " << count_rule(ExactNumBottomBlobs(), MinBottomBlobs(), MaxBottomBlobs())
                         << " bottom blob(s), but " << nb << " were given");
  if (violates(nt, ExactNumTopBlobs(), MinTopBlobs(), MaxTopBlobs()))
    LAYER_THROW("produces " << count_rule(ExactNumTopBlobs(), MinTopBlobs(), MaxTopBlobs())
                            << " top blob(s), but " << nt << " were given");
  if (EqualNumBottomTopBlobs() && nb != nt)
    LAYER_THROW("needs as many tops as bottoms, but has " << nb << " bottom(s) and " << nt
                                                          << " top(s)");
}

void Layer::SetUpWeightAndBias(const std::vector<int>& weight_shape,
                               const pb::FillerParameter& weight_filler, bool bias_term,
                               const std::vector<int>& bias_shape,
                               const pb::FillerParameter& bias_filler,
                               const std::string& weight_hint) {
  const size_t expected_blobs = bias_term ? 2 : 1;
  if (blobs_.empty()) {
    blobs_.push_back(std::make_shared<Blob>(weight_shape));
    CreateFiller(weight_filler)->Fill(blobs_[0].get());
    if (bias_term) {
      blobs_.push_back(std::make_shared<Blob>(bias_shape));
      CreateFiller(bias_filler)->Fill(blobs_[1].get());
    }
    return;
  }
  LAYER_REQUIRE(blobs_.size() == expected_blobs,
                "expected " << expected_blobs << " parameter blobs (bias_term "
                            << (bias_term ? "true" : "false") << "), got " << blobs_.size());
  LAYER_REQUIRE(blobs_[0]->shape() == weight_shape, "incorrect weight shape: expected "
                                                        << shape_string(weight_shape) << weight_hint
                                                        << ", got " << blobs_[0]->shape_string());
  if (bias_term)
    LAYER_REQUIRE(blobs_[1]->shape() == bias_shape, "incorrect bias shape: expected "
                                                        << shape_string(bias_shape) << ", got "
                                                        << blobs_[1]->shape_string());
}

void Layer::SetLossWeights(const BlobVec& top) {
  const int num_weights = layer_param_->loss_weight_size();
  if (num_weights == 0) return;
  LAYER_REQUIRE(num_weights == static_cast<int>(top.size()),
                "has " << top.size() << " top(s) but " << num_weights
                       << " loss_weight value(s); give one per top");
  for (int t = 0; t < num_weights; ++t) {
    const float weight = layer_param_->loss_weight(t);
    if (weight == 0) continue;
    set_loss(t, weight);
    cpu_set(top[t]->count(), weight, top[t]->mutable_cpu_diff());
  }
}

}  // namespace crema
