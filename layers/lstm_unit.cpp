#include "layers/lstm_unit.hpp"

#include <algorithm>
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

void LSTMUnitLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& c_prev = *bottom[0];
  const Blob& gates = *bottom[1];
  const Blob& cont = *bottom[2];
  LAYER_REQUIRE(c_prev.num_axes() == 3 && c_prev.shape(0) == 1,
                "bottom 0 (c_{t-1}) must have shape [1, N, H], got " << c_prev.shape_string());
  N_ = c_prev.shape(1);
  H_ = c_prev.shape(2);
  LAYER_REQUIRE(gates.num_axes() == 3 && gates.shape(0) == 1 && gates.shape(1) == N_ &&
                    gates.shape(2) == 4 * H_,
                "bottom 1 (gate inputs) must have shape [1, N, 4H] = [1, "
                    << N_ << ", " << 4 * H_ << "] for c_{t-1} " << c_prev.shape_string() << ", got "
                    << gates.shape_string());
  LAYER_REQUIRE(cont.num_axes() == 2 && cont.shape(0) == 1 && cont.shape(1) == N_,
                "bottom 2 (cont) must have shape [1, N] = [1, " << N_ << "] for c_{t-1} "
                                                                << c_prev.shape_string() << ", got "
                                                                << cont.shape_string());
  top[0]->ReshapeLike(c_prev);
  top[1]->ReshapeLike(c_prev);
}

void LSTMUnitLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, G = 4 * H_;
  const float* c_prev = bottom[0]->cpu_data();
  const float* x = bottom[1]->cpu_data();
  const float* cont = bottom[2]->cpu_data();
  float* c = top[0]->mutable_cpu_data();
  float* h = top[1]->mutable_cpu_data();
  parallel_for(N_, std::max(1, 16384 / std::max(G, 1)), [=](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* a = x + n * G;
      const float cn = cont[n];
      const int64_t o = n * H;
      for (int d = 0; d < H; ++d) {
        const float i = Sigmoid(a[d]);
        const float f = cn == 0.f ? 0.f : cn * Sigmoid(a[H + d]);
        const float og = Sigmoid(a[2 * H + d]);
        const float g = std::tanh(a[3 * H + d]);
        const float ct = f * c_prev[o + d] + i * g;
        c[o + d] = ct;
        h[o + d] = og * std::tanh(ct);
      }
    }
  });
}

void LSTMUnitLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  LAYER_REQUIRE(!propagate_down[2],
                "cannot backpropagate to the sequence continuation indicators (bottom 2, cont)");
  if (!propagate_down[0] && !propagate_down[1]) return;
  const int H = H_, G = 4 * H_;
  const float* c_prev = bottom[0]->cpu_data();
  const float* x = bottom[1]->cpu_data();
  const float* cont = bottom[2]->cpu_data();
  const float* c = top[0]->cpu_data();
  const float* dc = top[0]->cpu_diff();
  const float* dh = top[1]->cpu_diff();
  // Both bottoms' diffs are written (as Caffe does) when either is asked for.
  float* dc_prev = bottom[0]->mutable_cpu_diff();
  float* dx = bottom[1]->mutable_cpu_diff();
  parallel_for(N_, std::max(1, 16384 / std::max(G, 1)), [=](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* a = x + n * G;
      float* da = dx + n * G;
      const float cn = cont[n];
      const int64_t o = n * H;
      for (int d = 0; d < H; ++d) {
        const float i = Sigmoid(a[d]);
        const float f = cn == 0.f ? 0.f : cn * Sigmoid(a[H + d]);
        const float og = Sigmoid(a[2 * H + d]);
        const float g = std::tanh(a[3 * H + d]);
        const float tc = std::tanh(c[o + d]);
        const float dct = dc[o + d] + dh[o + d] * og * (1.f - tc * tc);
        dc_prev[o + d] = dct * f;
        da[d] = dct * g * i * (1.f - i);
        da[H + d] = dct * c_prev[o + d] * f * (1.f - f);
        da[2 * H + d] = dh[o + d] * tc * og * (1.f - og);
        da[3 * H + d] = dct * i * (1.f - g * g);
      }
    }
  });
}

REGISTER_LAYER_CLASS(LSTMUnit);

}  // namespace crema
