// RNNLayer on the GPU (formulas in rnn.hpp): step for step the CPU path of rnn.cpp, with
// cuBLAS for the products and one small kernel for each elementwise pass.
#include "layers/rnn.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// y = tanh(y)
__global__ void tanh_in_place(int64_t n, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] = tanhf(y[i]);
  }
}

// dout = dtop (1 - o^2): the gradient w.r.t. the output pre-activation.
__global__ void output_backward(int64_t n, const float* __restrict__ o,
                                const float* __restrict__ dtop, float* __restrict__ dout) {
  CUDA_KERNEL_LOOP(i, n) {
    dout[i] = dtop[i] * (1.f - o[i] * o[i]);
  }
}

// dp = (dp + dh) (1 - h^2): dp holds the gradient reaching h_t from its output; dh the one
// from step t + 1. The result is the gradient w.r.t. h_t's pre-activation.
__global__ void hidden_backward(int64_t n, const float* __restrict__ h,
                                const float* __restrict__ dh, float* __restrict__ dp) {
  CUDA_KERNEL_LOOP(i, n) {
    dp[i] = (dp[i] + dh[i]) * (1.f - h[i] * h[i]);
  }
}

}  // namespace

void RNNLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int H = H_, N = N_;
  const int64_t step = static_cast<int64_t>(N) * H;
  float* h_all = h_.mutable_gpu_data();
  ProjectInputs_gpu(bottom, *blobs_[0], blobs_[1].get(), static_input_ ? blobs_[2].get() : nullptr,
                    h_all);
  const float* w_hh = blobs_[w_hh_id()]->gpu_data();
  const float* cont = bottom[1]->gpu_data();
  float* hc = hc_.mutable_gpu_data();
  const float* h_prev = InitialState_gpu(bottom, 0);
  for (int t = 0; t < T_; ++t) {
    float* hc_t = hc + t * step;
    float* h_t = h_all + t * step;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    ScaleRowsByCont_gpu(cont_t, h_prev, hc_t);
    gpu_gemm(Trans::No, Trans::Yes, N, H, H, 1.f, hc_t, w_hh, 1.f, h_t);
    CUDA_LAUNCH(tanh_in_place, step, h_t);
    h_prev = h_t;
  }
  StoreFinalState_gpu(top, 0, h_all + (T_ - 1) * step);
  // The output transform of all steps at once.
  const int rows = T_ * N;
  float* o = top[0]->mutable_gpu_data();
  gpu_gemm(Trans::No, Trans::Yes, rows, H, H, 1.f, h_all, blobs_[w_ho_id()]->gpu_data(), 0.f, o);
  AddBiasRows_gpu(rows, H, blobs_[b_o_id()]->gpu_data(), o);
  CUDA_LAUNCH(tanh_in_place, static_cast<int64_t>(rows) * H, o);
}

void RNNLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  CheckNoContGradient(propagate_down);
  if (!NeedsBackward(propagate_down)) return;
  const int H = H_, N = N_, rows = T_ * N_;
  const int64_t step = static_cast<int64_t>(N) * H;
  const int64_t total = static_cast<int64_t>(rows) * H;
  const float* o = top[0]->gpu_data();
  const float* dtop = top[0]->gpu_diff();
  const float* h_all = h_.gpu_data();
  const float* cont = bottom[1]->gpu_data();
  float* dout = do_.mutable_gpu_data();
  float* dpre = dpre_.mutable_gpu_data();
  float* dh = dh_.mutable_gpu_data();
  CUDA_LAUNCH(output_backward, total, o, dtop, dout);
  if (param_propagate_down(w_ho_id()))
    gpu_gemm(Trans::Yes, Trans::No, H, H, rows, 1.f, dout, h_all, 1.f,
             blobs_[w_ho_id()]->mutable_gpu_diff());
  if (param_propagate_down(b_o_id()))
    gpu_gemv(Trans::Yes, rows, H, 1.f, dout, ones_.gpu_data(), 1.f,
             blobs_[b_o_id()]->mutable_gpu_diff());
  // Gradient reaching each h_t from its output, for all steps at once.
  gpu_gemm(Trans::No, Trans::No, rows, H, H, 1.f, dout, blobs_[w_ho_id()]->gpu_data(), 0.f, dpre);

  if (const float* d = FinalStateDiff_gpu(top, 0))
    gpu_copy(step, d, dh);
  else
    gpu_set(step, 0.f, dh);
  const float* w_hh = blobs_[w_hh_id()]->gpu_data();
  for (int t = T_ - 1; t >= 0; --t) {
    const float* h_t = h_all + t * step;
    float* dp_t = dpre + t * step;
    const float* cont_t = cont + static_cast<int64_t>(t) * N;
    CUDA_LAUNCH(hidden_backward, step, h_t, dh, dp_t);
    // dh_{t-1} = cont_t * (dpre_t W_hh)
    gpu_gemm(Trans::No, Trans::No, N, H, H, 1.f, dp_t, w_hh, 0.f, dh);
    ScaleRowsByCont_gpu(cont_t, dh, dh);
  }
  if (float* d = InitialStateDiff_gpu(bottom, propagate_down, 0)) gpu_copy(step, dh, d);

  if (param_propagate_down(w_hh_id()))
    gpu_gemm(Trans::Yes, Trans::No, H, H, rows, 1.f, dpre, hc_.gpu_data(), 1.f,
             blobs_[w_hh_id()]->mutable_gpu_diff());
  BackpropInputs_gpu(bottom, propagate_down, dpre, 0, 1, static_input_ ? 2 : -1);
}

}  // namespace crema
