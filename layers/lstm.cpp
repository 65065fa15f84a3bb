#include "layers/lstm.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
inline float Sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}
}  // namespace

void LSTMLayer::SetUpParams() {
  const int G = 4 * H_;
  std::vector<std::vector<int>> shapes = {{G, D_}, {G}};
  std::vector<const char*> names = {"W_xc", "b_c"};
  if (static_input_) {
    shapes.push_back({G, D_static_});
    names.push_back("W_xc_static");
  }
  shapes.push_back({G, H_});
  names.push_back("W_hc");
  if (!blobs_.empty()) {
    CheckParamShapes(shapes, names);
    return;
  }
  for (size_t i = 0; i < shapes.size(); ++i) AddParam(shapes[i], i == 1);
  DrawDroppedStepFills(blobs_.size() - 1, T_);  // W_hc
}

void LSTMLayer::ReshapeBuffers() {
  gates_.Reshape({T_, N_, 4 * H_});
  dgates_.Reshape({T_, N_, 4 * H_});
  c_.Reshape({T_ + 1, N_, H_});
  tanh_c_.Reshape({T_, N_, H_});
  hc_.Reshape({T_, N_, H_});
  dh_.Reshape({N_, H_});
  dc_.Reshape({N_, H_});
}

double LSTMLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  const double G = 4.0 * H_;
  return 2.0 * T_ * N_ * G * (D_ + H_) + 2.0 * N_ * G * D_static_;
}

void LSTMLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, G = 4 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  float* gates = gates_.mutable_cpu_data();
  ProjectInputs(bottom, *blobs_[0], blobs_[1].get(), static_input_ ? blobs_[2].get() : nullptr,
                gates);
  const float* w_hc = blobs_[w_hc_id()]->cpu_data();
  const float* cont = bottom[1]->cpu_data();
  float* c_all = c_.mutable_cpu_data();
  float* tanh_c = tanh_c_.mutable_cpu_data();
  float* hc = hc_.mutable_cpu_data();
  float* h_all = top[0]->mutable_cpu_data();
  cpu_copy(step_h, InitialState(bottom, 1), c_all);
  const float* h_prev = InitialState(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    float* hc_t = hc + t * step_h;
    float* g_t = gates + t * step_g;
    const float* c_prev = c_all + t * step_h;
    float* c_t = c_all + (t + 1) * step_h;
    float* tc_t = tanh_c + t * step_h;
    float* h_t = h_all + t * step_h;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      ScaleRowsByCont(cont_t, h_prev, hc_t, begin, end);
      cpu_gemm(Trans::No, Trans::Yes, static_cast<int>(end - begin), G, H, 1.f, hc_t + begin * H,
               w_hc, 1.f, g_t + begin * G);
      for (int64_t n = begin; n < end; ++n) {
        float* a = g_t + n * G;
        const float cn = cont_t[n];
        const int64_t o = n * H;
        for (int d = 0; d < H; ++d) {
          const float i = Sigmoid(a[d]);
          const float f = cn == 0.f ? 0.f : cn * Sigmoid(a[H + d]);
          const float og = Sigmoid(a[2 * H + d]);
          const float g = std::tanh(a[3 * H + d]);
          a[d] = i;
          a[H + d] = f;
          a[2 * H + d] = og;
          a[3 * H + d] = g;
          const float c = f * c_prev[o + d] + i * g;
          c_t[o + d] = c;
          const float tc = std::tanh(c);
          tc_t[o + d] = tc;
          h_t[o + d] = og * tc;
        }
      }
    });
    h_prev = h_t;
  }
  StoreFinalState(top, 0, h_all + (T_ - 1) * step_h);
  StoreFinalState(top, 1, c_all + T_ * step_h);
}

void LSTMLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, G = 4 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  const float* gates = gates_.cpu_data();
  const float* c_all = c_.cpu_data();
  const float* tanh_c = tanh_c_.cpu_data();
  const float* cont = bottom[1]->cpu_data();
  const float* top_diff = top[0]->cpu_diff();
  const float* w_hc = blobs_[w_hc_id()]->cpu_data();
  float* dgates = dgates_.mutable_cpu_data();
  float* dh = dh_.mutable_cpu_data();
  float* dc = dc_.mutable_cpu_data();
  // Gradients flowing in from the exposed final-state tops (zero otherwise).
  if (const float* d = FinalStateDiff(top, 0))
    cpu_copy(step_h, d, dh);
  else
    cpu_set(step_h, 0.f, dh);
  if (const float* d = FinalStateDiff(top, 1))
    cpu_copy(step_h, d, dc);
  else
    cpu_set(step_h, 0.f, dc);

  for (int t = T_ - 1; t >= 0; --t) {
    const float* a_t = gates + t * step_g;
    const float* c_prev = c_all + t * step_h;
    const float* tc_t = tanh_c + t * step_h;
    const float* dtop_t = top_diff + t * step_h;
    float* dg_t = dgates + t * step_g;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const float* a = a_t + n * G;
        float* da = dg_t + n * G;
        const int64_t o = n * H;
        for (int d = 0; d < H; ++d) {
          const float i = a[d], f = a[H + d], og = a[2 * H + d], g = a[3 * H + d];
          const float tc = tc_t[o + d];
          const float dh_total = dtop_t[o + d] + dh[o + d];
          const float dct = dc[o + d] + dh_total * og * (1.f - tc * tc);
          dc[o + d] = dct * f;
          da[d] = dct * g * i * (1.f - i);
          da[H + d] = dct * c_prev[o + d] * f * (1.f - f);
          da[2 * H + d] = dh_total * tc * og * (1.f - og);
          da[3 * H + d] = dct * i * (1.f - g * g);
        }
      }
      // dh_{t-1} = cont_t * (dgates_t W_hc), for these rows
      cpu_gemm(Trans::No, Trans::No, static_cast<int>(end - begin), H, G, 1.f, dg_t + begin * G,
               w_hc, 0.f, dh + begin * H);
      ScaleRowsByCont(cont_t, dh, dh, begin, end);
    });
  }
  if (float* d = InitialStateDiff(bottom, propagate_down, 0)) cpu_copy(step_h, dh, d);
  if (float* d = InitialStateDiff(bottom, propagate_down, 1)) cpu_copy(step_h, dc, d);

  const int rows = T_ * N;
  if (param_propagate_down(w_hc_id()))
    cpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgates, hc_.cpu_data(), 1.f,
             blobs_[w_hc_id()]->mutable_cpu_diff());
  BackpropInputs(bottom, propagate_down, dgates, 0, 1, static_input_ ? 2 : -1);
}

REGISTER_LAYER_CLASS(LSTM);

}  // namespace crema
