#include "layers/recurrent.hpp"

#include <algorithm>
#include <memory>

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/math_functions.hpp"

namespace crema {

RecurrentLayer::RecurrentLayer(const pb::LayerParameter& param, int num_states)
    : Layer(param),
      num_states_(num_states),
      expose_hidden_(param.recurrent_param().expose_hidden()),
      backprop_exposed_(expose_hidden_ && param.recurrent_param().backprop_exposed_hidden()) {
  H_ = static_cast<int>(param.recurrent_param().num_output());
}

void RecurrentLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(layer_param_->recurrent_param().num_output() > 0,
                "recurrent_param.num_output must be positive, got "
                    << layer_param_->recurrent_param().num_output());
  const Blob& x = *bottom[0];
  LAYER_REQUIRE(x.num_axes() >= 2, "bottom 0 (x) must have at least 2 axes (time steps, "
                                       << "streams, ...), got shape " << x.shape_string());
  static_input_ = static_cast<int>(bottom.size()) > MinBottomBlobs();
  first_state_bottom_ = static_input_ ? 3 : 2;
  D_ = x.count(2);
  T_ = x.shape(0);
  if (static_input_) {
    LAYER_REQUIRE(
        bottom[2]->num_axes() >= 1,
        "bottom 2 (x_static) must have at least 1 axis, got shape " << bottom[2]->shape_string());
    D_static_ = bottom[2]->count(1);
  } else {
    D_static_ = 0;
  }
  SetUpParams();
  param_propagate_down_.assign(blobs_.size(), true);
}

void RecurrentLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const Blob& cont = *bottom[1];
  LAYER_REQUIRE(x.num_axes() >= 2, "bottom 0 (x) must have at least 2 axes (time steps, "
                                       << "streams, ...), got shape " << x.shape_string());
  T_ = x.shape(0);
  const int n = x.shape(1);
  LAYER_REQUIRE(T_ > 0 && n > 0, "bottom 0 (x) needs at least one time step and one stream, "
                                     << "got shape " << x.shape_string());
  LAYER_REQUIRE(x.count(2) == D_, "bottom 0 (x) " << x.shape_string() << " has " << x.count(2)
                                                  << " features per step, the weights expect "
                                                  << D_);
  LAYER_REQUIRE(cont.num_axes() == 2 && cont.shape(0) == T_ && cont.shape(1) == n,
                "bottom 1 (cont) must have shape [T, N] = [" << T_ << ", " << n << "] to match x "
                                                             << x.shape_string() << ", got "
                                                             << cont.shape_string());
  if (static_input_) {
    const Blob& xs = *bottom[2];
    LAYER_REQUIRE(xs.num_axes() >= 1 && xs.shape(0) == n,
                  "bottom 2 (x_static) " << xs.shape_string() << " must have N = " << n
                                         << " rows to match x " << x.shape_string());
    LAYER_REQUIRE(xs.count(1) == D_static_, "bottom 2 (x_static) "
                                                << xs.shape_string() << " has " << xs.count(1)
                                                << " features, the weights expect " << D_static_);
  }
  const std::vector<int> state_shape = {1, n, H_};
  if (expose_hidden_) {
    for (int k = 0; k < num_states_; ++k) {
      const Blob& s = *bottom[first_state_bottom_ + k];
      LAYER_REQUIRE(s.shape() == state_shape,
                    "bottom " << first_state_bottom_ + k << " (initial state "
                              << (k == 0 ? "h_0" : "c_0") << ") must have shape "
                              << shape_string(state_shape) << ", got " << s.shape_string());
    }
  }
  if (n != N_) {
    // A new number of streams: the carried state no longer fits; start from zero.
    N_ = n;
    for (int k = 0; k < num_states_; ++k) {
      carried_[k].Reshape({N_, H_});
      cpu_set(carried_[k].count(), 0.f, carried_[k].mutable_cpu_data());
    }
  }
  if (ones_.count() != T_ * N_) {
    ones_.Reshape({T_ * N_});
    cpu_set(ones_.count(), 1.f, ones_.mutable_cpu_data());
  }
  static_buf_.Reshape({N_, GateWidth()});
  top[0]->Reshape({T_, N_, H_});
  if (expose_hidden_)
    for (int k = 0; k < num_states_; ++k) top[1 + k]->Reshape(state_shape);
  ReshapeBuffers();
}

std::vector<const Blob*> RecurrentLayer::buffers() const {
  std::vector<const Blob*> list = {&ones_, &static_buf_};
  for (int k = 0; k < num_states_; ++k) list.push_back(&carried_[k]);
  AppendBuffers(&list);
  return list;
}

std::vector<Blob*> RecurrentLayer::GraphStateBlobs() {
  std::vector<Blob*> state;
  if (!expose_hidden_)
    for (int k = 0; k < num_states_; ++k) state.push_back(&carried_[k]);
  return state;
}

void RecurrentLayer::ResetState() {
  for (int k = 0; k < num_states_; ++k)
    if (carried_[k].count() > 0) cpu_set(carried_[k].count(), 0.f, carried_[k].mutable_cpu_data());
}

void RecurrentLayer::CheckParamShapes(const std::vector<std::vector<int>>& shapes,
                                      const std::vector<const char*>& names) const {
  LAYER_REQUIRE(blobs_.size() == shapes.size(),
                "expected " << shapes.size() << " parameter blobs"
                            << (static_input_ ? " (with the static input)" : "") << ", got "
                            << blobs_.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    LAYER_REQUIRE(blobs_[i]->shape() == shapes[i],
                  "parameter blob " << i << " (" << names[i] << ") must have shape "
                                    << shape_string(shapes[i]) << ", got "
                                    << blobs_[i]->shape_string());
  }
}

void RecurrentLayer::AddParam(const std::vector<int>& shape, bool is_bias) {
  const pb::RecurrentParameter& p = layer_param_->recurrent_param();
  blobs_.push_back(std::make_shared<Blob>(shape));
  param_is_bias_.push_back(is_bias);
  CreateFiller(is_bias ? p.bias_filler() : p.weight_filler())->Fill(blobs_.back().get());
}

void RecurrentLayer::DrawDroppedStepFills(size_t first_step_param, int steps) {
  if (Context::random_seed() < 0) return;  // nothing to reproduce
  const pb::RecurrentParameter& p = layer_param_->recurrent_param();
  const std::unique_ptr<Filler> weight = CreateFiller(p.weight_filler());
  const std::unique_ptr<Filler> bias = CreateFiller(p.bias_filler());
  Blob dropped;
  for (int t = 1; t < steps; ++t)
    for (size_t i = first_step_param; i < blobs_.size(); ++i) {
      dropped.Reshape(blobs_[i]->shape());
      (param_is_bias_[i] ? bias : weight)->Fill(&dropped);
    }
}

int64_t RecurrentLayer::StepGrain() const {
  const int64_t per_row = static_cast<int64_t>(GateWidth()) * H_;  // multiply-adds
  return std::max<int64_t>(1, 131072 / std::max<int64_t>(per_row, 1));
}

void RecurrentLayer::AddBiasRows(int rows, int width, const float* b, float* y) {
  parallel_for(rows, std::max(1, 32768 / std::max(width, 1)), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = y + r * width;
      for (int j = 0; j < width; ++j) row[j] += b[j];
    }
  });
}

void RecurrentLayer::ScaleRowsByCont(const float* cont, const float* src, float* dst, int64_t begin,
                                     int64_t end) const {
  const int h = H_;
  for (int64_t n = begin; n < end; ++n) {
    const float c = cont[n];
    const float* s = src + static_cast<int64_t>(n) * h;
    float* d = dst + static_cast<int64_t>(n) * h;
    for (int j = 0; j < h; ++j) d[j] = c * s[j];
  }
}

void RecurrentLayer::ProjectInputs(const BlobVec& bottom, const Blob& w, const Blob* b,
                                   const Blob* w_static, float* out) {
  const int G = GateWidth();
  const int rows = T_ * N_;
  cpu_gemm(Trans::No, Trans::Yes, rows, G, D_, 1.f, bottom[0]->cpu_data(), w.cpu_data(), 0.f, out);
  if (b) AddBiasRows(rows, G, b->cpu_data(), out);
  if (static_input_ && w_static) {
    float* s = static_buf_.mutable_cpu_data();
    cpu_gemm(Trans::No, Trans::Yes, N_, G, D_static_, 1.f, bottom[2]->cpu_data(),
             w_static->cpu_data(), 0.f, s);
    const int64_t step = static_cast<int64_t>(N_) * G;
    for (int t = 0; t < T_; ++t) cpu_axpy(static_cast<int>(step), 1.f, s, out + t * step);
  }
}

void RecurrentLayer::BackpropInputs(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                                    const float* dg, int w_id, int b_id, int w_static_id) {
  const int G = GateWidth();
  const int rows = T_ * N_;
  if (w_id >= 0 && param_propagate_down(w_id))
    cpu_gemm(Trans::Yes, Trans::No, G, D_, rows, 1.f, dg, bottom[0]->cpu_data(), 1.f,
             blobs_[w_id]->mutable_cpu_diff());
  if (b_id >= 0 && param_propagate_down(b_id))
    cpu_gemv(Trans::Yes, rows, G, 1.f, dg, ones_.cpu_data(), 1.f, blobs_[b_id]->mutable_cpu_diff());
  if (propagate_down[0])
    cpu_gemm(Trans::No, Trans::No, rows, D_, G, 1.f, dg, blobs_[w_id]->cpu_data(), 0.f,
             bottom[0]->mutable_cpu_diff());
  if (!static_input_ || w_static_id < 0) return;
  const bool want_w = param_propagate_down(w_static_id);
  const bool want_x = propagate_down.size() > 2 && propagate_down[2];
  if (!want_w && !want_x) return;
  // The static projection is added to every step: its gradient is the sum over steps.
  float* sum = static_buf_.mutable_cpu_data();
  cpu_gemv(Trans::Yes, T_, N_ * G, 1.f, dg, ones_.cpu_data(), 0.f, sum);
  if (want_w)
    cpu_gemm(Trans::Yes, Trans::No, G, D_static_, N_, 1.f, sum, bottom[2]->cpu_data(), 1.f,
             blobs_[w_static_id]->mutable_cpu_diff());
  if (want_x)
    cpu_gemm(Trans::No, Trans::No, N_, D_static_, G, 1.f, sum, blobs_[w_static_id]->cpu_data(), 0.f,
             bottom[2]->mutable_cpu_diff());
}

const float* RecurrentLayer::InitialState(const BlobVec& bottom, int k) const {
  return expose_hidden_ ? bottom[first_state_bottom_ + k]->cpu_data() : carried_[k].cpu_data();
}

void RecurrentLayer::StoreFinalState(const BlobVec& top, int k, const float* final_state) {
  float* dst = expose_hidden_ ? top[1 + k]->mutable_cpu_data() : carried_[k].mutable_cpu_data();
  cpu_copy(static_cast<size_t>(N_) * H_, final_state, dst);
}

const float* RecurrentLayer::FinalStateDiff(const BlobVec& top, int k) const {
  return backprop_exposed_ ? top[1 + k]->cpu_diff() : nullptr;
}

float* RecurrentLayer::InitialStateDiff(const BlobVec& bottom,
                                        const std::vector<bool>& propagate_down, int k) const {
  if (!backprop_exposed_) return nullptr;
  const size_t index = static_cast<size_t>(first_state_bottom_ + k);
  if (index >= propagate_down.size() || !propagate_down[index]) return nullptr;
  return bottom[index]->mutable_cpu_diff();
}

void RecurrentLayer::CheckNoContGradient(const std::vector<bool>& propagate_down) const {
  LAYER_REQUIRE(propagate_down.size() < 2 || !propagate_down[1],
                "cannot backpropagate to the sequence continuation indicators (bottom 1, cont)");
}

bool RecurrentLayer::NeedsBackward(const std::vector<bool>& propagate_down) const {
  for (bool p : propagate_down)
    if (p) return true;
  for (size_t i = 0; i < blobs_.size(); ++i)
    if (param_propagate_down(static_cast<int>(i))) return true;
  return false;
}

}  // namespace crema
