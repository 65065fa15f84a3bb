// GRULayer on the GPU (formulas in gru.hpp): step for step the CPU path of gru.cpp, with
// cuBLAS for the products and one kernel per step for the gate math, one thread per
// (stream n, unit d) doing exactly the CPU's arithmetic for that unit. Each step is two
// launches in either direction, a product and a kernel: the kernel also does the work the
// CPU path does around the product (adding b_hh, masking the state by cont), which gives
// the same numbers: W_hh hc + b_hh is one rounding either way, and cont is applied to the
// same values.
#include "layers/gru.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__device__ inline float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// Step t forward, over the n = N * H units. act [N, 3H] holds the x-side pre-activations
// on entry and the activations r, z, n on exit; gh [N, 3H] holds W_hh hc on entry and
// W_hh hc + b_hh on exit (backward reads it); hc [N, H] = cont_t * h_{t-1}; h receives h_t
// and, unless t is the last step, hc_next receives cont_{t+1} * h_t, the next step's hc.
__global__ void gru_step_forward(int64_t n, int H, const float* __restrict__ b_hh,
                                 float* __restrict__ gh, const float* __restrict__ hc,
                                 float* __restrict__ act, float* __restrict__ h,
                                 const float* __restrict__ cont_next, float* __restrict__ hc_next) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;  // stream
    const int d = static_cast<int>(k % H);
    float* a = act + s * 3 * H;
    float* b = gh + s * 3 * H;
    b[d] += b_hh[d];
    b[H + d] += b_hh[H + d];
    b[2 * H + d] += b_hh[2 * H + d];
    const float r = sigmoid(a[d] + b[d]);
    const float z = sigmoid(a[H + d] + b[H + d]);
    const float nn = tanhf(a[2 * H + d] + r * b[2 * H + d]);
    a[d] = r;
    a[H + d] = z;
    a[2 * H + d] = nn;
    const float h_t = (1.f - z) * nn + z * hc[k];
    h[k] = h_t;
    if (cont_next) hc_next[k] = cont_next[s] * h_t;
  }
}

// Step t backward, over the n = N * H units. dh holds the gradient reaching h_t from step
// t + 1, still to be masked by cont_{t+1} (cont_next; null for the last step, whose dh is
// the final state's gradient), dtop the one from the top; dh is replaced by the direct part
// of the gradient reaching hc (dh_t z); dgx and dgh [N, 3H] receive the gradients w.r.t.
// the x-side and h-side gate inputs.
__global__ void gru_step_backward(int64_t n, int H, const float* __restrict__ act,
                                  const float* __restrict__ gh, const float* __restrict__ hc,
                                  const float* __restrict__ dtop,
                                  const float* __restrict__ cont_next, float* __restrict__ dh,
                                  float* __restrict__ dgx, float* __restrict__ dgh) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;
    const int d = static_cast<int>(k % H);
    const float* a = act + s * 3 * H;
    const float* b = gh + s * 3 * H;
    float* dx = dgx + s * 3 * H;
    float* dhh = dgh + s * 3 * H;
    const float r = a[d], z = a[H + d], nn = a[2 * H + d];
    const float dh_next = cont_next ? cont_next[s] * dh[k] : dh[k];
    const float dht = dtop[k] + dh_next;
    const float dn = dht * (1.f - z) * (1.f - nn * nn);
    const float dz = dht * (hc[k] - nn) * z * (1.f - z);
    const float dr = dn * b[2 * H + d] * r * (1.f - r);
    dx[d] = dr;
    dx[H + d] = dz;
    dx[2 * H + d] = dn;
    dhh[d] = dr;
    dhh[H + d] = dz;
    dhh[2 * H + d] = dn * r;
    dh[k] = dht * z;  // the direct path h_t <- z * hc
  }
}

}  // namespace

void GRULayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, G = 3 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  float* act = act_.mutable_gpu_data();
  ProjectInputs_gpu(bottom, *blobs_[0], blobs_[2].get(), static_input_ ? blobs_[4].get() : nullptr,
                    act);
  const float* w_hh = blobs_[1]->gpu_data();
  const float* b_hh = blobs_[3]->gpu_data();
  const float* cont = bottom[1]->gpu_data();
  float* gh = gh_.mutable_gpu_data();
  float* hc = hc_.mutable_gpu_data();
  float* h_all = top[0]->mutable_gpu_data();
  ScaleRowsByCont_gpu(cont, InitialState_gpu(bottom, 0), hc);  // hc_0 = cont_0 * h_0
  for (int t = 0; t < T_; ++t) {
    float* hc_t = hc + t * step_h;
    float* gh_t = gh + t * step_g;
    const bool last = t + 1 == T_;
    const float* cont_next = last ? nullptr : cont + static_cast<int64_t>(t + 1) * N;
    gpu_gemm(Trans::No, Trans::Yes, N, G, H, 1.f, hc_t, w_hh, 0.f, gh_t);
    CUDA_LAUNCH(gru_step_forward, step_h, H, b_hh, gh_t, hc_t, act + t * step_g, h_all + t * step_h,
                cont_next, last ? nullptr : hc_t + step_h);
  }
  StoreFinalState_gpu(top, 0, h_all + (T_ - 1) * step_h);
}

void GRULayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, G = 3 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
  const float* act = act_.gpu_data();
  const float* gh = gh_.gpu_data();
  const float* hc = hc_.gpu_data();
  const float* cont = bottom[1]->gpu_data();
  const float* dtop = top[0]->gpu_diff();
  const float* w_hh = blobs_[1]->gpu_data();
  float* dgx = dgx_.mutable_gpu_data();
  float* dgh = dgh_.mutable_gpu_data();
  float* dh = dh_.mutable_gpu_data();
  if (const float* d = FinalStateDiff_gpu(top, 0))
    gpu_copy(step_h, d, dh);
  else
    gpu_set(step_h, 0.f, dh);

  for (int t = T_ - 1; t >= 0; --t) {
    const float* a_t = act + t * step_g;
    const float* gh_t = gh + t * step_g;
    const float* hc_t = hc + t * step_h;
    const float* dtop_t = dtop + t * step_h;
    float* dgx_t = dgx + t * step_g;
    float* dgh_t = dgh + t * step_g;
    const float* cont_next = t + 1 == T_ ? nullptr : cont + static_cast<int64_t>(t + 1) * N;
    CUDA_LAUNCH(gru_step_backward, step_h, H, a_t, gh_t, hc_t, dtop_t, cont_next, dh, dgx_t, dgh_t);
    // dh_{t-1} = cont_t * (dh_t z + dgh_t W_hh): the product here, the mask in the next
    // step's kernel (or below, for h_0).
    gpu_gemm(Trans::No, Trans::No, N, H, G, 1.f, dgh_t, w_hh, 1.f, dh);
  }
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 0)) ScaleRowsByCont_gpu(cont, dh, d);

  const int rows = T_ * N;
  if (param_propagate_down(1))
    gpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgh, hc, 1.f, blobs_[1]->mutable_gpu_diff());
  if (param_propagate_down(3))
    gpu_gemv(Trans::Yes, rows, G, 1.f, dgh, ones_.gpu_data(), 1.f, blobs_[3]->mutable_gpu_diff());
  BackpropInputs_gpu(bottom, propagate_down, dgx, 0, 2, static_input_ ? 4 : -1);
}

}  // namespace crema
