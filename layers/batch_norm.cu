// BatchNormLayer on the GPU (formulas in batch_norm.hpp). The per-channel reductions (the
// batch mean and variance, the backward's sum(dy) and sum(dy * y)) run one block per
// channel with sums in double, as the CPU's; the same blocks update Caffe's running sums on
// the device. Normalisation and the backward map are one thread per element. Nothing is
// read back to the host. gpu_stats_ holds the statistics between the kernels.
#include "layers/batch_norm.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the per-channel blocks (a multiple of 32)

// Index of element e (0 <= e < num * spatial) of channel c in an [N, C, spatial] array.
__device__ __forceinline__ int64_t channel_element(int64_t e, int c, int channels, int spatial) {
  return (e / spatial * channels + c) * spatial + e % spatial;
}

// One block per channel: the batch mean and (biased) variance over the m = N * spatial
// values, in two passes as the CPU; then the running sums and 1 / sqrt(var + eps). Block 0
// also advances the scale factor (read by no other block in TRAIN statistics).
__global__ void bn_batch_stats(int channels, int spatial, int64_t m, const float* __restrict__ x,
                               float fraction, float correction, float eps, float* mean_sum,
                               float* var_sum, float* factor, float* mean, float* inv_std) {
  const int c = blockIdx.x;
  double sum = 0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x)
    sum += x[channel_element(e, c, channels, spatial)];
  const float mu = static_cast<float>(block_sum(sum) / static_cast<double>(m));
  double sq = 0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const float d = x[channel_element(e, c, channels, spatial)] - mu;
    sq += d * d;
  }
  const float var = static_cast<float>(block_sum(sq) / static_cast<double>(m));
  if (threadIdx.x == 0) {
    mean[c] = mu;
    inv_std[c] = 1.f / sqrtf(var + eps);
    mean_sum[c] = mu + fraction * mean_sum[c];
    var_sum[c] = correction * var + fraction * var_sum[c];
    if (c == 0) factor[0] = factor[0] * fraction + 1.f;
  }
}

// Global statistics: mean = mean_sum / factor, var = var_sum / factor (0 when factor is 0).
__global__ void bn_global_stats(int64_t n, const float* mean_sum, const float* var_sum,
                                const float* factor, float eps, float* mean, float* inv_std) {
  CUDA_KERNEL_LOOP(c, n) {
    const float stored = factor[0];
    const float scale = stored == 0.f ? 0.f : 1.f / stored;
    mean[c] = scale * mean_sum[c];
    inv_std[c] = 1.f / sqrtf(scale * var_sum[c] + eps);
  }
}

// y = (x - mean[c]) * inv_std[c]; also into `saved` (x_norm_) when given. x may be y.
__global__ void bn_normalize(int64_t n, const float* x, const float* __restrict__ mean,
                             const float* __restrict__ inv_std, int channels, int spatial, float* y,
                             float* saved) {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = static_cast<int>(i / spatial % channels);
    const float v = (x[i] - mean[c]) * inv_std[c];
    y[i] = v;
    if (saved) saved[i] = v;
  }
}

// One block per channel: mean_dy[c] = sum dy / m, mean_dyy[c] = sum dy * y / m.
__global__ void bn_backward_sums(int channels, int spatial, int64_t m, const float* __restrict__ dy,
                                 const float* __restrict__ y, float* mean_dy, float* mean_dyy) {
  const int c = blockIdx.x;
  double a = 0, b = 0;
  for (int64_t e = threadIdx.x; e < m; e += blockDim.x) {
    const int64_t i = channel_element(e, c, channels, spatial);
    a += dy[i];
    b += dy[i] * y[i];
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    mean_dy[c] = static_cast<float>(a / static_cast<double>(m));
    mean_dyy[c] = static_cast<float>(b / static_cast<double>(m));
  }
}

// TRAIN statistics: dx = (dy - mean_dy - y * mean_dyy) * inv_std. dx may be dy.
__global__ void bn_backward_train(int64_t n, const float* dy, const float* __restrict__ y,
                                  const float* __restrict__ mean_dy,
                                  const float* __restrict__ mean_dyy,
                                  const float* __restrict__ inv_std, int channels, int spatial,
                                  float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const int c = static_cast<int>(i / spatial % channels);
    dx[i] = (dy[i] - mean_dy[c] - y[i] * mean_dyy[c]) * inv_std[c];
  }
}

// Global statistics: dx = dy * inv_std. dx may be dy.
__global__ void bn_backward_global(int64_t n, const float* dy, const float* __restrict__ inv_std,
                                   int channels, int spatial, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * inv_std[i / spatial % channels];
  }
}

}  // namespace

void BatchNormLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int channels = channels_, spatial = spatial_;
  const int64_t m = static_cast<int64_t>(num_) * spatial;  // elements per channel
  gpu_stats_.Reshape({4, channels});
  float* mean = gpu_stats_.mutable_gpu_data();
  float* inv_std = mean + channels;
  if (use_global_stats_) {
    CUDA_LAUNCH(bn_global_stats, channels, blobs_[0]->gpu_data(), blobs_[1]->gpu_data(),
                blobs_[2]->gpu_data(), eps_, mean, inv_std);
  } else {
    LAYER_REQUIRE(
        m > 0, "cannot compute batch statistics of an empty bottom " << bottom[0]->shape_string());
    const float correction = m > 1 ? static_cast<float>(m) / static_cast<float>(m - 1) : 1.f;
    bn_batch_stats<<<channels, kReduceThreads>>>(
        channels, spatial, m, bottom[0]->gpu_data(), moving_average_fraction_, correction, eps_,
        blobs_[0]->mutable_gpu_data(), blobs_[1]->mutable_gpu_data(), blobs_[2]->mutable_gpu_data(),
        mean, inv_std);
    cuda_check_launch("bn_batch_stats");
  }
  float* saved = use_global_stats_ ? nullptr : x_norm_.mutable_gpu_data();
  CUDA_LAUNCH(bn_normalize, bottom[0]->count(), bottom[0]->gpu_data(), mean, inv_std, channels,
              spatial, top[0]->mutable_gpu_data(), saved);
}

void BatchNormLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int channels = channels_, spatial = spatial_;
  const int64_t count = bottom[0]->count();
  const float* dy = top[0]->gpu_diff();
  float* dx = bottom[0]->mutable_gpu_diff();  // may be dy itself (in place)
  float* mean_dy = gpu_stats_.mutable_gpu_data() + 2 * channels;
  float* mean_dyy = mean_dy + channels;
  const float* inv_std = gpu_stats_.gpu_data() + channels;
  if (use_global_stats_) {
    CUDA_LAUNCH(bn_backward_global, count, dy, inv_std, channels, spatial, dx);
    return;
  }
  const int64_t m = static_cast<int64_t>(num_) * spatial;
  const float* y = x_norm_.gpu_data();
  // Every channel's sums are complete before dx (possibly dy's memory) is written.
  bn_backward_sums<<<channels, kReduceThreads>>>(channels, spatial, m, dy, y, mean_dy, mean_dyy);
  cuda_check_launch("bn_backward_sums");
  CUDA_LAUNCH(bn_backward_train, count, dy, y, mean_dy, mean_dyy, inv_std, channels, spatial, dx);
}

}  // namespace crema
