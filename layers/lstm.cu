// LSTMLayer on the GPU (formulas in lstm.hpp): step for step the CPU path of lstm.cpp, with
// cuBLAS for the products and one kernel per step for the gate math, one thread per
// (stream n, unit d) doing exactly the CPU's arithmetic for that unit.
#include "layers/lstm.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__device__ inline float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// Step t forward, over the n = N * H units. gates [N, 4H] holds the pre-activations
// i', f', o', g' on entry and the activations i, f (times cont), o, g on exit; c_prev is
// c_{t-1} [N, H]; c, tanh_c and h receive c_t, tanh(c_t) and h_t.
__global__ void lstm_step_forward(int64_t n, int H, const float* __restrict__ cont,
                                  const float* __restrict__ c_prev, float* __restrict__ gates,
                                  float* __restrict__ c, float* __restrict__ tanh_c,
                                  float* __restrict__ h) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;  // stream
    const int d = static_cast<int>(k % H);
    float* a = gates + s * 4 * H;
    const float cn = cont[s];
    const float i = sigmoid(a[d]);
    const float f = cn == 0.f ? 0.f : cn * sigmoid(a[H + d]);
    const float og = sigmoid(a[2 * H + d]);
    const float g = tanhf(a[3 * H + d]);
    a[d] = i;
    a[H + d] = f;
    a[2 * H + d] = og;
    a[3 * H + d] = g;
    const float ct = f * c_prev[k] + i * g;
    c[k] = ct;
    const float tc = tanhf(ct);
    tanh_c[k] = tc;
    h[k] = og * tc;
  }
}

// Step t backward, over the n = N * H units. dh is the gradient reaching h_t from step
// t + 1 (dtop the one from the top), dc the one reaching c_t, replaced here by the one
// reaching c_{t-1}; dgates [N, 4H] receives the gradients w.r.t. the pre-activations.
__global__ void lstm_step_backward(int64_t n, int H, const float* __restrict__ gates,
                                   const float* __restrict__ c_prev,
                                   const float* __restrict__ tanh_c, const float* __restrict__ dtop,
                                   const float* __restrict__ dh, float* __restrict__ dc,
                                   float* __restrict__ dgates) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;
    const int d = static_cast<int>(k % H);
    const float* a = gates + s * 4 * H;
    float* da = dgates + s * 4 * H;
    const float i = a[d], f = a[H + d], og = a[2 * H + d], g = a[3 * H + d];
    const float tc = tanh_c[k];
    const float dh_total = dtop[k] + dh[k];
    const float dct = dc[k] + dh_total * og * (1.f - tc * tc);
    dc[k] = dct * f;
    da[d] = dct * g * i * (1.f - i);
    da[H + d] = dct * c_prev[k] * f * (1.f - f);
    da[2 * H + d] = dh_total * tc * og * (1.f - og);
    da[3 * H + d] = dct * i * (1.f - g * g);
  }
}

}  // namespace

void LSTMLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, G = 4 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  float* gates = gates_.mutable_gpu_data();
  ProjectInputs_gpu(bottom, *blobs_[0], blobs_[1].get(), static_input_ ? blobs_[2].get() : nullptr,
                    gates);
  const float* w_hc = blobs_[w_hc_id()]->gpu_data();
  const float* cont = bottom[1]->gpu_data();
  float* c_all = c_.mutable_gpu_data();
  float* tanh_c = tanh_c_.mutable_gpu_data();
  float* hc = hc_.mutable_gpu_data();
  float* h_all = top[0]->mutable_gpu_data();
  gpu_copy(step_h, InitialState_gpu(bottom, 1), c_all);
  const float* h_prev = InitialState_gpu(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    float* hc_t = hc + t * step_h;
    float* g_t = gates + t * step_g;
    const float* c_prev = c_all + t * step_h;
    float* c_t = c_all + (t + 1) * step_h;
    float* tc_t = tanh_c + t * step_h;
    float* h_t = h_all + t * step_h;
    ScaleRowsByCont_gpu(cont_t, h_prev, hc_t);
    gpu_gemm(Trans::No, Trans::Yes, N, G, H, 1.f, hc_t, w_hc, 1.f, g_t);
    CUDA_LAUNCH(lstm_step_forward, step_h, H, cont_t, c_prev, g_t, c_t, tc_t, h_t);
    h_prev = h_t;
  }
  StoreFinalState_gpu(top, 0, h_all + (T_ - 1) * step_h);
  StoreFinalState_gpu(top, 1, c_all + T_ * step_h);
}

void LSTMLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, G = 4 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  const float* gates = gates_.gpu_data();
  const float* c_all = c_.gpu_data();
  const float* tanh_c = tanh_c_.gpu_data();
  const float* cont = bottom[1]->gpu_data();
  const float* top_diff = top[0]->gpu_diff();
  const float* w_hc = blobs_[w_hc_id()]->gpu_data();
  float* dgates = dgates_.mutable_gpu_data();
  float* dh = dh_.mutable_gpu_data();
  float* dc = dc_.mutable_gpu_data();
  // Gradients flowing in from the exposed final-state tops (zero otherwise).
  if (const float* d = FinalStateDiff_gpu(top, 0))
    gpu_copy(step_h, d, dh);
  else
    gpu_set(step_h, 0.f, dh);
  if (const float* d = FinalStateDiff_gpu(top, 1))
    gpu_copy(step_h, d, dc);
  else
    gpu_set(step_h, 0.f, dc);

  for (int t = T_ - 1; t >= 0; --t) {
    const float* a_t = gates + t * step_g;
    const float* c_prev = c_all + t * step_h;
    const float* tc_t = tanh_c + t * step_h;
    const float* dtop_t = top_diff + t * step_h;
    float* dg_t = dgates + t * step_g;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    CUDA_LAUNCH(lstm_step_backward, step_h, H, a_t, c_prev, tc_t, dtop_t, dh, dc, dg_t);
    // dh_{t-1} = cont_t * (dgates_t W_hc)
    gpu_gemm(Trans::No, Trans::No, N, H, G, 1.f, dg_t, w_hc, 0.f, dh);
    ScaleRowsByCont_gpu(cont_t, dh, dh);
  }
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 0)) gpu_copy(step_h, dh, d);
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 1)) gpu_copy(step_h, dc, d);

  const int rows = T_ * N;
  if (param_propagate_down(w_hc_id()))
    gpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgates, hc_.gpu_data(), 1.f,
             blobs_[w_hc_id()]->mutable_gpu_diff());
  BackpropInputs_gpu(bottom, propagate_down, dgates, 0, 1, static_input_ ? 2 : -1);
}

}  // namespace crema
