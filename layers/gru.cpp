#include "layers/gru.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "src/fast_math.hpp"

namespace crema {

void GRULayer::SetUpParams() {
  const int G = 3 * H_;
  std::vector<std::vector<int>> shapes = {{G, D_}, {G, H_}, {G}, {G}};
  std::vector<const char*> names = {"W_ih", "W_hh", "b_ih", "b_hh"};
  if (static_input_) {
    shapes.push_back({G, D_static_});
    names.push_back("W_ih_static");
  }
  if (!blobs_.empty()) {
    CheckParamShapes(shapes, names);
    return;
  }
  for (size_t i = 0; i < shapes.size(); ++i) AddParam(shapes[i], i == 2 || i == 3);
}

void GRULayer::ReshapeBuffers() {
  act_.Reshape({T_, N_, 3 * H_});
  gh_.Reshape({T_, N_, 3 * H_});
  hc_.Reshape({T_, N_, H_});
  dgx_.Reshape({T_, N_, 3 * H_});
  dgh_.Reshape({T_, N_, 3 * H_});
  dh_.Reshape({N_, H_});
}

double GRULayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  const double G = 3.0 * H_;
  return 2.0 * T_ * N_ * G * (D_ + H_) + 2.0 * N_ * G * D_static_;
}

void GRULayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, G = 3 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  float* act = act_.mutable_cpu_data();
  ProjectInputs(bottom, *blobs_[0], blobs_[2].get(), static_input_ ? blobs_[4].get() : nullptr,
                act);
  const float* w_hh = blobs_[1]->cpu_data();
  const float* b_hh = blobs_[3]->cpu_data();
  const float* cont = bottom[1]->cpu_data();
  float* gh = gh_.mutable_cpu_data();
  float* hc = hc_.mutable_cpu_data();
  float* h_all = top[0]->mutable_cpu_data();
  const float* h_prev = InitialState(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    float* hc_t = hc + t * step_h;
    float* gh_t = gh + t * step_g;
    float* a_t = act + t * step_g;
    float* h_t = h_all + t * step_h;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      ScaleRowsByCont(cont_t, h_prev, hc_t, begin, end);
      for (int64_t n = begin; n < end; ++n) cpu_copy(G, b_hh, gh_t + n * G);
      cpu_gemm(Trans::No, Trans::Yes, static_cast<int>(end - begin), G, H, 1.f, hc_t + begin * H,
               w_hh, 1.f, gh_t + begin * G);
      for (int64_t n = begin; n < end; ++n) {
        float* a = a_t + n * G;
        const float* b = gh_t + n * G;
        const float* hp = hc_t + n * H;
        float* out = h_t + n * H;
        // Vectorised gate math (src/fast_math.hpp; this file is built with
        // -fno-trapping-math so the clamps and selects there become vector min/max/blend).
#pragma omp simd
        for (int d = 0; d < H; ++d) {
          const float r = fast::Sigmoid(a[d] + b[d]);
          const float z = fast::Sigmoid(a[H + d] + b[H + d]);
          const float nn = fast::Tanh(a[2 * H + d] + r * b[2 * H + d]);
          a[d] = r;
          a[H + d] = z;
          a[2 * H + d] = nn;
          out[d] = (1.f - z) * nn + z * hp[d];
        }
      }
    });
    h_prev = h_t;
  }
  StoreFinalState(top, 0, h_all + (T_ - 1) * step_h);
}

void GRULayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, G = 3 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  const float* act = act_.cpu_data();
  const float* gh = gh_.cpu_data();
  const float* hc = hc_.cpu_data();
  const float* cont = bottom[1]->cpu_data();
  const float* dtop = top[0]->cpu_diff();
  const float* w_hh = blobs_[1]->cpu_data();
  float* dgx = dgx_.mutable_cpu_data();
  float* dgh = dgh_.mutable_cpu_data();
  float* dh = dh_.mutable_cpu_data();
  if (const float* d = FinalStateDiff(top, 0))
    cpu_copy(step_h, d, dh);
  else
    cpu_set(step_h, 0.f, dh);

  for (int t = T_ - 1; t >= 0; --t) {
    const float* a_t = act + t * step_g;
    const float* gh_t = gh + t * step_g;
    const float* hc_t = hc + t * step_h;
    const float* dtop_t = dtop + t * step_h;
    float* dgx_t = dgx + t * step_g;
    float* dgh_t = dgh + t * step_g;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    parallel_for(N, StepGrain(), [=](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        const float* a = a_t + n * G;
        const float* b = gh_t + n * G;
        const float* hp = hc_t + n * H;
        float* dx = dgx_t + n * G;
        float* dhh = dgh_t + n * G;
        const int64_t o = n * H;
#pragma omp simd
        for (int d = 0; d < H; ++d) {
          const float r = a[d], z = a[H + d], nn = a[2 * H + d];
          const float dht = dtop_t[o + d] + dh[o + d];
          const float dn = dht * (1.f - z) * (1.f - nn * nn);
          const float dz = dht * (hp[d] - nn) * z * (1.f - z);
          const float dr = dn * b[2 * H + d] * r * (1.f - r);
          dx[d] = dr;
          dx[H + d] = dz;
          dx[2 * H + d] = dn;
          dhh[d] = dr;
          dhh[H + d] = dz;
          dhh[2 * H + d] = dn * r;
          dh[o + d] = dht * z;  // the direct path h_t <- z * hc
        }
      }
      cpu_gemm(Trans::No, Trans::No, static_cast<int>(end - begin), H, G, 1.f, dgh_t + begin * G,
               w_hh, 1.f, dh + begin * H);
      ScaleRowsByCont(cont_t, dh, dh, begin, end);
    });
  }
  if (float* d = InitialStateDiff(bottom, propagate_down, 0)) cpu_copy(step_h, dh, d);

  const int rows = T_ * N;
  if (param_propagate_down(1))
    cpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgh, hc, 1.f, blobs_[1]->mutable_cpu_diff());
  if (param_propagate_down(3))
    cpu_gemv(Trans::Yes, rows, G, 1.f, dgh, ones_.cpu_data(), 1.f, blobs_[3]->mutable_cpu_diff());
  BackpropInputs(bottom, propagate_down, dgx, 0, 2, static_input_ ? 4 : -1);
}

REGISTER_LAYER_CLASS(GRU);

}  // namespace crema
