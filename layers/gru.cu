// GRULayer on the GPU (formulas in gru.hpp). The x-side products of all steps are one
// GEMM before the recurrence (forward) and after it (backward), as on the CPU. The
// recurrence itself runs one of two ways:
//  - sequence kernels (the usual case): one launch per direction runs all T steps, one
//    block per stream. The streams of a batch are independent, so a block never waits for
//    another; it keeps W_hh in shared memory for the whole sequence (3H * H floats, plus
//    7H of step values: H up to 138 within the 227 KiB an H100 block may opt into) and per
//    step computes the h-side product (forward W_hh hc, a thread per gate row; backward
//    dgh W_hh, a thread per unit and gate) and the gate math (a thread per unit), with a
//    barrier after each. Used when the weights fit and the N blocks fit on the device at
//    once (N <= multiprocessors).
//  - step kernels: per step a cuBLAS product over all streams and a gate kernel, two
//    launches each way. For wide layers or many streams.
// CREMA_GRU_KERNEL=step or =sequence forces one (sequence only where the weights fit).
// Either way each thread does the CPU's arithmetic for its unit; the products sum in
// another order than OpenBLAS's.
#include <cstdlib>
#include <cstring>

#include "layers/gru.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"

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

// Shared memory of either sequence kernel: the 3H x H weights, H state values, 3H gate
// values and (backward) 3H partial sums.
size_t SequenceSharedBytes(int H) {
  return (size_t{3} * H * H + size_t{7} * H) * sizeof(float);
}

// sum_k a[k * a_stride] * b[k] for k < K, in four interleaved partial sums (four
// independent multiply-add chains instead of one long one).
__device__ __forceinline__ float strided_dot(int K, const float* a, int a_stride, const float* b) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    s0 = fmaf(a[k * a_stride], b[k], s0);
    s1 = fmaf(a[(k + 1) * a_stride], b[k + 1], s1);
    s2 = fmaf(a[(k + 2) * a_stride], b[k + 2], s2);
    s3 = fmaf(a[(k + 3) * a_stride], b[k + 3], s3);
  }
  for (; k < K; ++k) s0 = fmaf(a[k * a_stride], b[k], s0);
  return (s0 + s1) + (s2 + s3);
}

int SequenceThreads(int H) {
  return (3 * H + 31) / 32 * 32;  // a thread per gate row
}

// Forward over all T steps, stream n = blockIdx.x. Shared memory: W_hh transposed, [H][3H]
// (the 32 threads of a warp take 32 consecutive gate rows, so at one k they read 32
// consecutive words), then hc [H] and gh [3H] of the step. On entry hc holds hc_0 (set by
// the caller); act [T, N, 3H] holds the x-side pre-activations. On exit act holds r, z, n,
// gh = W_hh hc + b_hh, hc = cont_t * h_{t-1} and h = h_t, for every t, as the step kernels
// leave them.
__global__ void gru_sequence_forward(int T, int N, int H, const float* __restrict__ w_hh,
                                     const float* __restrict__ b_hh, const float* __restrict__ cont,
                                     float* __restrict__ act, float* __restrict__ gh,
                                     float* __restrict__ hc, float* __restrict__ h) {
  extern __shared__ float shared[];
  const int G = 3 * H;
  float* w_t = shared;        // [H][G]
  float* hc_s = w_t + G * H;  // [H]
  float* gh_s = hc_s + H;     // [G]
  const int64_t n = blockIdx.x;
  for (int i = threadIdx.x; i < G * H; i += blockDim.x) w_t[(i % H) * G + i / H] = w_hh[i];
  for (int k = threadIdx.x; k < H; k += blockDim.x) hc_s[k] = hc[n * H + k];
  __syncthreads();
  for (int t = 0; t < T; ++t) {
    const int64_t row_h = (static_cast<int64_t>(t) * N + n) * H;
    const int64_t row_g = (static_cast<int64_t>(t) * N + n) * G;
    for (int g = threadIdx.x; g < G; g += blockDim.x) {
      const float v = strided_dot(H, w_t + g, G, hc_s) + b_hh[g];
      gh_s[g] = v;
      gh[row_g + g] = v;
    }
    __syncthreads();
    const bool last = t + 1 == T;
    const float cont_next = last ? 0.f : cont[static_cast<int64_t>(t + 1) * N + n];
    float* a = act + row_g;
    for (int d = threadIdx.x; d < H; d += blockDim.x) {
      const float r = sigmoid(a[d] + gh_s[d]);
      const float z = sigmoid(a[H + d] + gh_s[H + d]);
      const float nn = tanhf(a[2 * H + d] + r * gh_s[2 * H + d]);
      a[d] = r;
      a[H + d] = z;
      a[2 * H + d] = nn;
      const float h_t = (1.f - z) * nn + z * hc_s[d];  // only this thread touches hc_s[d]
      h[row_h + d] = h_t;
      if (!last) {
        hc_s[d] = cont_next * h_t;
        hc[row_h + static_cast<int64_t>(N) * H + d] = hc_s[d];
      }
    }
    __syncthreads();
  }
}

// Backward over all T steps, t = T-1 down to 0, stream n = blockIdx.x. Shared memory: W_hh
// as stored, [3H][H] (32 consecutive units k at one gate row g), the running dh [H], the
// step's h-side gate gradients dgh [3H], and partial sums [3][H] of dgh W_hh: thread
// (part, k) sums over the gate rows of one gate, so all 3H threads work on the product.
// dh [N, H] holds the final state's gradient on entry and, on exit, the gradient reaching
// hc_0, not yet masked by cont_0 (as the step kernels leave it); dgx and dgh [T, N, 3H]
// receive the gate-input gradients.
__global__ void gru_sequence_backward(int T, int N, int H, const float* __restrict__ w_hh,
                                      const float* __restrict__ act, const float* __restrict__ gh,
                                      const float* __restrict__ hc, const float* __restrict__ dtop,
                                      const float* __restrict__ cont, float* __restrict__ dh,
                                      float* __restrict__ dgx, float* __restrict__ dgh) {
  extern __shared__ float shared[];
  const int G = 3 * H;
  float* w_s = shared;        // [G][H]
  float* dh_s = w_s + G * H;  // [H]
  float* dgh_s = dh_s + H;    // [G]
  float* part_s = dgh_s + G;  // [3][H]
  const int64_t n = blockIdx.x;
  for (int i = threadIdx.x; i < G * H; i += blockDim.x) w_s[i] = w_hh[i];
  for (int k = threadIdx.x; k < H; k += blockDim.x) dh_s[k] = dh[n * H + k];
  for (int i = threadIdx.x; i < G; i += blockDim.x) part_s[i] = 0.f;
  __syncthreads();
  for (int t = T - 1; t >= 0; --t) {
    const int64_t row_h = (static_cast<int64_t>(t) * N + n) * H;
    const int64_t row_g = (static_cast<int64_t>(t) * N + n) * G;
    // The last step's dh is the final state's gradient, unmasked (times 1 exactly).
    const float cont_next = t + 1 == T ? 1.f : cont[static_cast<int64_t>(t + 1) * N + n];
    const float* a = act + row_g;
    const float* b = gh + row_g;
    for (int d = threadIdx.x; d < H; d += blockDim.x) {
      // dh_t (unmasked) = the direct part + the product of step t + 1 (zeros at first).
      const float dh_t = dh_s[d] + ((part_s[d] + part_s[H + d]) + part_s[2 * H + d]);
      const float r = a[d], z = a[H + d], nn = a[2 * H + d];
      const float dht = dtop[row_h + d] + cont_next * dh_t;
      const float dn = dht * (1.f - z) * (1.f - nn * nn);
      const float dz = dht * (hc[row_h + d] - nn) * z * (1.f - z);
      const float dr = dn * b[2 * H + d] * r * (1.f - r);
      dgx[row_g + d] = dr;
      dgx[row_g + H + d] = dz;
      dgx[row_g + 2 * H + d] = dn;
      dgh[row_g + d] = dgh_s[d] = dr;
      dgh[row_g + H + d] = dgh_s[H + d] = dz;
      dgh[row_g + 2 * H + d] = dgh_s[2 * H + d] = dn * r;
      dh_s[d] = dht * z;  // the direct path h_t <- z * hc
    }
    __syncthreads();
    // dh_{t-1} before its cont_t mask = dh_t z + dgh_t W_hh, the product in three parts.
    for (int i = threadIdx.x; i < G; i += blockDim.x) {
      const int part = i / H, k = i % H;
      part_s[i] = strided_dot(H, w_s + static_cast<int64_t>(part) * H * H + k, H, dgh_s + part * H);
    }
    __syncthreads();
  }
  for (int k = threadIdx.x; k < H; k += blockDim.x)
    dh[n * H + k] = dh_s[k] + ((part_s[k] + part_s[H + k]) + part_s[2 * H + k]);
}

// Lets `kernel` use `bytes` of dynamic shared memory (above the default 48 KiB an opt-in
// per kernel and device; set once, outside any graph capture: the first pass is eager).
template <typename Kernel>
void AllowSharedBytes(Kernel* kernel, size_t bytes, bool* done_for_device) {
  if (*done_for_device || bytes <= 48 * 1024) return;
  const cudaError_t status =
      cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status != cudaSuccess)
    CREMA_THROW("GRU: cudaFuncSetAttribute ("
                << bytes << " bytes of shared memory): " << cudaGetErrorString(status));
  *done_for_device = true;
}

constexpr int kMaxDevices = 64;

}  // namespace

bool GRULayer::UseSequenceKernels() const {
  const char* forced = std::getenv("CREMA_GRU_KERNEL");
  if (forced && std::strcmp(forced, "step") == 0) return false;
  if (CudaCurrentDevice() >= kMaxDevices) return false;
  const bool fits =
      SequenceSharedBytes(H_) <= CudaMaxSharedBytesPerBlockOptin() && SequenceThreads(H_) <= 1024;
  if (forced && std::strcmp(forced, "sequence") == 0) return fits;
  return fits && N_ <= CudaMultiprocessorCount();
}

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
  if (UseSequenceKernels()) {
    static bool shared_allowed[kMaxDevices] = {};
    const size_t bytes = SequenceSharedBytes(H);
    AllowSharedBytes(gru_sequence_forward, bytes, &shared_allowed[CudaCurrentDevice()]);
    gru_sequence_forward<<<N, SequenceThreads(H), bytes, cuda_stream()>>>(T_, N, H, w_hh, b_hh,
                                                                          cont, act, gh, hc, h_all);
    cuda_check_launch("gru_sequence_forward");
    StoreFinalState_gpu(top, 0, h_all + (T_ - 1) * step_h);
    return;
  }
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
  const int H = H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H;
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

  if (UseSequenceKernels()) {
    static bool shared_allowed[kMaxDevices] = {};
    const size_t bytes = SequenceSharedBytes(H);
    AllowSharedBytes(gru_sequence_backward, bytes, &shared_allowed[CudaCurrentDevice()]);
    gru_sequence_backward<<<N, SequenceThreads(H), bytes, cuda_stream()>>>(
        T_, N, H, w_hh, act, gh, hc, dtop, cont, dh, dgx, dgh);
    cuda_check_launch("gru_sequence_backward");
  } else {
    BackwardSteps_gpu(act, gh, hc, dtop, cont, w_hh, dgx, dgh, dh);
  }
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 0)) ScaleRowsByCont_gpu(cont, dh, d);
  ParamAndInputGradients_gpu(bottom, propagate_down, dgx, dgh, hc);
}

void GRULayer::BackwardSteps_gpu(const float* act, const float* gh, const float* hc,
                                 const float* dtop, const float* cont, const float* w_hh,
                                 float* dgx, float* dgh, float* dh) {
  const int H = H_, G = 3 * H_, N = N_;
  const int64_t step_h = static_cast<int64_t>(N) * H, step_g = static_cast<int64_t>(N) * G;
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
}

void GRULayer::ParamAndInputGradients_gpu(const BlobVec& bottom,
                                          const std::vector<bool>& propagate_down, const float* dgx,
                                          const float* dgh, const float* hc) {
  const int G = 3 * H_, H = H_;
  const int rows = T_ * N_;
  if (param_propagate_down(1))
    gpu_gemm(Trans::Yes, Trans::No, G, H, rows, 1.f, dgh, hc, 1.f, blobs_[1]->mutable_gpu_diff());
  if (param_propagate_down(3))
    gpu_gemv(Trans::Yes, rows, G, 1.f, dgh, ones_.gpu_data(), 1.f, blobs_[3]->mutable_gpu_diff());
  BackpropInputs_gpu(bottom, propagate_down, dgx, 0, 2, static_input_ ? 4 : -1);
}

}  // namespace crema
