#include "layers/rnn.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

void RNNLayer::SetUpParams() {
  std::vector<std::vector<int>> shapes = {{H_, D_}, {H_}};
  std::vector<const char*> names = {"W_xh", "b_h"};
  std::vector<bool> bias = {false, true};
  if (static_input_) {
    shapes.push_back({H_, D_static_});
    names.push_back("W_xh_static");
    bias.push_back(false);
  }
  shapes.insert(shapes.end(), {{H_, H_}, {H_, H_}, {H_}});
  names.insert(names.end(), {"W_hh", "W_ho", "b_o"});
  bias.insert(bias.end(), {false, false, true});
  if (!blobs_.empty()) {
    CheckParamShapes(shapes, names);
    return;
  }
  for (size_t i = 0; i < shapes.size(); ++i) AddParam(shapes[i], bias[i]);
  DrawDroppedStepFills(blobs_.size() - 3, T_);  // W_hh, W_ho, b_o
}

void RNNLayer::ReshapeBuffers() {
  h_.Reshape({T_, N_, H_});
  hc_.Reshape({T_, N_, H_});
  do_.Reshape({T_, N_, H_});
  dpre_.Reshape({T_, N_, H_});
  dh_.Reshape({N_, H_});
}

double RNNLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return 2.0 * T_ * N_ * H_ * (D_ + 2.0 * H_) + 2.0 * N_ * H_ * D_static_;
}

void RNNLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, N = N_;
  const int64_t step = static_cast<int64_t>(N) * H;
  float* h_all = h_.mutable_cpu_data();
  ProjectInputs(bottom, *blobs_[0], blobs_[1].get(), static_input_ ? blobs_[2].get() : nullptr,
                h_all);
  const float* w_hh = blobs_[w_hh_id()]->cpu_data();
  const float* cont = bottom[1]->cpu_data();
  float* hc = hc_.mutable_cpu_data();
  const float* h_prev = InitialState(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    float* hc_t = hc + t * step;
    float* h_t = h_all + t * step;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      ScaleRowsByCont(cont_t, h_prev, hc_t, begin, end);
      cpu_gemm(Trans::No, Trans::Yes, static_cast<int>(end - begin), H, H, 1.f, hc_t + begin * H,
               w_hh, 1.f, h_t + begin * H);
      for (int64_t i = begin * H; i < end * H; ++i) h_t[i] = std::tanh(h_t[i]);
    });
    h_prev = h_t;
  }
  StoreFinalState(top, 0, h_all + (T_ - 1) * step);
  // The output transform of all steps at once.
  const int rows = T_ * N;
  float* o = top[0]->mutable_cpu_data();
  cpu_gemm(Trans::No, Trans::Yes, rows, H, H, 1.f, h_all, blobs_[w_ho_id()]->cpu_data(), 0.f, o);
  AddBiasRows(rows, H, blobs_[b_o_id()]->cpu_data(), o);
  parallel_for(static_cast<int64_t>(rows) * H, 16384, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = std::tanh(o[i]);
  });
}

void RNNLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, N = N_, rows = T_ * N_;
  const int64_t step = static_cast<int64_t>(N) * H;
  const int64_t total = static_cast<int64_t>(rows) * H;
  const float* o = top[0]->cpu_data();
  const float* dtop = top[0]->cpu_diff();
  const float* h_all = h_.cpu_data();
  const float* cont = bottom[1]->cpu_data();
  float* dout = do_.mutable_cpu_data();
  float* dpre = dpre_.mutable_cpu_data();
  float* dh = dh_.mutable_cpu_data();
  parallel_for(total, 16384, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dout[i] = dtop[i] * (1.f - o[i] * o[i]);
  });
  if (param_propagate_down(w_ho_id()))
    cpu_gemm(Trans::Yes, Trans::No, H, H, rows, 1.f, dout, h_all, 1.f,
             blobs_[w_ho_id()]->mutable_cpu_diff());
  if (param_propagate_down(b_o_id()))
    cpu_gemv(Trans::Yes, rows, H, 1.f, dout, ones_.cpu_data(), 1.f,
             blobs_[b_o_id()]->mutable_cpu_diff());
  // Gradient reaching each h_t from its output, for all steps at once.
  cpu_gemm(Trans::No, Trans::No, rows, H, H, 1.f, dout, blobs_[w_ho_id()]->cpu_data(), 0.f, dpre);

  if (const float* d = FinalStateDiff(top, 0))
    cpu_copy(step, d, dh);
  else
    cpu_set(step, 0.f, dh);
  const float* w_hh = blobs_[w_hh_id()]->cpu_data();
  for (int t = T_ - 1; t >= 0; --t) {
    const float* h_t = h_all + t * step;
    float* dp_t = dpre + t * step;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      for (int64_t i = begin * H; i < end * H; ++i)
        dp_t[i] = (dp_t[i] + dh[i]) * (1.f - h_t[i] * h_t[i]);
      cpu_gemm(Trans::No, Trans::No, static_cast<int>(end - begin), H, H, 1.f, dp_t + begin * H,
               w_hh, 0.f, dh + begin * H);
      ScaleRowsByCont(cont_t, dh, dh, begin, end);
    });
  }
  if (float* d = InitialStateDiff(bottom, propagate_down, 0)) cpu_copy(step, dh, d);

  if (param_propagate_down(w_hh_id()))
    cpu_gemm(Trans::Yes, Trans::No, H, H, rows, 1.f, dpre, hc_.cpu_data(), 1.f,
             blobs_[w_hh_id()]->mutable_cpu_diff());
  BackpropInputs(bottom, propagate_down, dpre, 0, 1, static_input_ ? 2 : -1);
}

REGISTER_LAYER_CLASS(RNN);

}  // namespace crema
