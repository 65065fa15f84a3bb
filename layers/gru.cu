// GRULayer on the GPU (formulas in gru.hpp): step for step the CPU path of gru.cpp, with
// cuBLAS for the products and one kernel per step for the gate math, one thread per
// (stream n, unit d) doing exactly the CPU's arithmetic for that unit.
#include "layers/gru.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__device__ inline float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// y[i] = b[i % width] over the n = rows * width elements: b copied into every row.
__global__ void copy_into_rows(int64_t n, int width, const float* __restrict__ b,
                               float* __restrict__ y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = b[i % width];
  }
}

// Step t forward, over the n = N * H units. act [N, 3H] holds the x-side pre-activations
// on entry and the activations r, z, n on exit; gh [N, 3H] = W_hh hc + b_hh; hc [N, H] =
// cont_t * h_{t-1}; h receives h_t.
__global__ void gru_step_forward(int64_t n, int H, const float* __restrict__ gh,
                                 const float* __restrict__ hc, float* __restrict__ act,
                                 float* __restrict__ h) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;  // stream
    const int d = static_cast<int>(k % H);
    float* a = act + s * 3 * H;
    const float* b = gh + s * 3 * H;
    const float r = sigmoid(a[d] + b[d]);
    const float z = sigmoid(a[H + d] + b[H + d]);
    const float nn = tanhf(a[2 * H + d] + r * b[2 * H + d]);
    a[d] = r;
    a[H + d] = z;
    a[2 * H + d] = nn;
    h[k] = (1.f - z) * nn + z * hc[k];
  }
}

// Step t backward, over the n = N * H units. dh holds the gradient reaching h_t from step
// t + 1 (dtop the one from the top) and is replaced by the direct part of the gradient
// reaching hc (dh_t z); dgx and dgh [N, 3H] receive the gradients w.r.t. the x-side and
// h-side gate inputs.
__global__ void gru_step_backward(int64_t n, int H, const float* __restrict__ act,
                                  const float* __restrict__ gh, const float* __restrict__ hc,
                                  const float* __restrict__ dtop, float* __restrict__ dh,
                                  float* __restrict__ dgx, float* __restrict__ dgh) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;
    const int d = static_cast<int>(k % H);
    const float* a = act + s * 3 * H;
    const float* b = gh + s * 3 * H;
    float* dx = dgx + s * 3 * H;
    float* dhh = dgh + s * 3 * H;
    const float r = a[d], z = a[H + d], nn = a[2 * H + d];
    const float dht = dtop[k] + dh[k];
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
  const float* h_prev = InitialState_gpu(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    float* hc_t = hc + t * step_h;
    float* gh_t = gh + t * step_g;
    float* a_t = act + t * step_g;
    float* h_t = h_all + t * step_h;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    ScaleRowsByCont_gpu(cont_t, h_prev, hc_t);
    CUDA_LAUNCH(copy_into_rows, step_g, G, b_hh, gh_t);
    gpu_gemm(Trans::No, Trans::Yes, N, G, H, 1.f, hc_t, w_hh, 1.f, gh_t);
    CUDA_LAUNCH(gru_step_forward, step_h, H, gh_t, hc_t, a_t, h_t);
    h_prev = h_t;
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
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    CUDA_LAUNCH(gru_step_backward, step_h, H, a_t, gh_t, hc_t, dtop_t, dh, dgx_t, dgh_t);
    // dh_{t-1} = cont_t * (dh_t z + dgh_t W_hh)
    gpu_gemm(Trans::No, Trans::No, N, H, G, 1.f, dgh_t, w_hh, 1.f, dh);
    ScaleRowsByCont_gpu(cont_t, dh, dh);
  }
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 0)) gpu_copy(step_h, dh, d);

  const int rows = T_ * N;
  if (param_propagate_down(1))
    gpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgh, hc, 1.f, blobs_[1]->mutable_gpu_diff());
  if (param_propagate_down(3))
    gpu_gemv(Trans::Yes, rows, G, 1.f, dgh, ones_.gpu_data(), 1.f, blobs_[3]->mutable_gpu_diff());
  BackpropInputs_gpu(bottom, propagate_down, dgx, 0, 2, static_input_ ? 4 : -1);
}

}  // namespace crema
