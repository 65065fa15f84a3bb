// PReLULayer on the GPU (formulas in prelu.hpp). Forward and the input gradient: one
// thread per element, slope a[c] with c = (i / inner) % channels (a[0] when shared). The
// slope gradient: one block per channel sums (x <= 0 ? x : 0) * dy over n and the spatial
// positions and adds it to da[c]; with channel_shared the per-channel sums go to
// gpu_channel_sums_ and one more block adds their total to da[0]. In place, the forward
// saves x in bottom_copy_, and the slope gradient is computed before dx overwrites dy.
#include <algorithm>

#include "layers/prelu.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // a multiple of 32

// x and y may be the same array (in place); `saved` (null when not in place) gets x.
__global__ void prelu_forward(int64_t n, const float* x, const float* slope, int channels,
                              int inner, bool shared, float* saved, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    if (saved) saved[i] = v;
    const float a = slope[shared ? 0 : (i / inner) % channels];
    // The CPU's two selects, so that both paths round identically.
    y[i] = (v > 0.f ? v : 0.f) + a * (v > 0.f ? 0.f : v);
  }
}

// dy and dx may be the same array (in place; x is then the saved copy).
__global__ void prelu_backward(int64_t n, const float* x, const float* dy, const float* slope,
                               int channels, int inner, bool shared, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float a = slope[shared ? 0 : (i / inner) % channels];
    const float g = dy[i];
    dx[i] = (x[i] > 0.f ? g : 0.f) + a * (x[i] > 0.f ? 0.f : g);
  }
}

// One block per channel c: s = sum over n < outer, j < inner of (x <= 0 ? x : 0) * dy at
// (n, c, j); out[c] += s (accumulate) or out[c] = s.
__global__ void prelu_slope_sums(int outer, int channels, int inner, const float* x,
                                 const float* dy, bool accumulate, float* out) {
  const int64_t per_channel = static_cast<int64_t>(outer) * inner;
  for (int c = blockIdx.x; c < channels; c += gridDim.x) {
    float part = 0.f;
    for (int64_t k = threadIdx.x; k < per_channel; k += blockDim.x) {
      const int64_t at = ((k / inner) * channels + c) * inner + k % inner;
      const float v = x[at];
      part += (v <= 0.f ? v : 0.f) * dy[at];
    }
    part = block_sum(part);
    if (threadIdx.x == 0) out[c] = accumulate ? out[c] + part : part;
  }
}

// One block: out[0] += sum of v[0, n).
__global__ void add_total(int n, const float* v, float* out) {
  float part = 0.f;
  for (int k = threadIdx.x; k < n; k += blockDim.x) part += v[k];
  part = block_sum(part);
  if (threadIdx.x == 0) out[0] += part;
}

}  // namespace

void PReLULayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  float* saved = top[0] == bottom[0] ? bottom_copy_.mutable_gpu_data() : nullptr;
  CUDA_LAUNCH(prelu_forward, bottom[0]->count(), bottom[0]->gpu_data(), blobs_[0]->gpu_data(),
              channels_, std::max(inner_, 1), channel_shared_, saved, top[0]->mutable_gpu_data());
}

void PReLULayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const float* x = top[0] == bottom[0] ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
  const float* dy = top[0]->gpu_diff();
  // Slope gradient first: in place, dx overwrites dy.
  if (param_propagate_down(0) && channels_ > 0) {
    float* da = blobs_[0]->mutable_gpu_diff();
    const int blocks = std::min(channels_, 65535);
    if (channel_shared_) {
      gpu_channel_sums_.Reshape({channels_});
      float* sums = gpu_channel_sums_.mutable_gpu_data();
      prelu_slope_sums<<<blocks, kReduceThreads, 0, ::crema::cuda_stream()>>>(
          outer_, channels_, inner_, x, dy, false, sums);
      cuda_check_launch("prelu_slope_sums");
      add_total<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(channels_, sums, da);
      cuda_check_launch("prelu add_total");
    } else {
      prelu_slope_sums<<<blocks, kReduceThreads, 0, ::crema::cuda_stream()>>>(
          outer_, channels_, inner_, x, dy, true, da);
      cuda_check_launch("prelu_slope_sums");
    }
  }
  if (propagate_down[0]) {
    CUDA_LAUNCH(prelu_backward, bottom[0]->count(), x, dy, blobs_[0]->gpu_data(), channels_,
                std::max(inner_, 1), channel_shared_, bottom[0]->mutable_gpu_diff());
  }
}

}  // namespace crema
