// ContrastiveLossLayer on the GPU (formulas in contrastive_loss.hpp). diff = a - b; one
// warp per pair reduces ||a_n - b_n||^2 into dist_sq_; one block sums the N pair terms in
// double and writes the loss to the top on the device. The backward is one thread per
// element and reads the loss weight from the top's diff on the device.
#include "layers/contrastive_loss.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the reduction blocks (a multiple of 32)

// One warp per pair n: dist_sq[n] = sum of diff[n, :]^2.
__global__ void pair_distances(int num, int dim, const float* __restrict__ diff,
                               float* __restrict__ dist_sq) {
  const int64_t pair = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (pair >= num) return;  // the whole warp leaves together
  const float* d = diff + pair * dim;
  double sum = 0;
  for (int k = lane; k < dim; k += 32) sum += d[k] * d[k];
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) dist_sq[pair] = static_cast<float>(sum);
}

// One block: top[0] = sum_n term_n / N / 2, term = d^2 (similar), max(m - d, 0)^2
// (dissimilar) or max(m - d^2, 0) (dissimilar, legacy).
__global__ void contrastive_forward(int num, const float* __restrict__ dist_sq,
                                    const float* __restrict__ sim, float margin, bool legacy,
                                    float* __restrict__ top) {
  double loss = 0;
  for (int n = threadIdx.x; n < num; n += blockDim.x) {
    if (static_cast<int>(sim[n])) {
      loss += dist_sq[n];
    } else if (legacy) {
      loss += fmaxf(margin - dist_sq[n], 0.f);
    } else {
      const float gap = fmaxf(margin - sqrtf(dist_sq[n]), 0.f);
      loss += gap * gap;
    }
  }
  loss = block_sum(loss);
  if (threadIdx.x == 0) top[0] = static_cast<float>(loss / num / 2.0);
}

// out[n, :] = scale_n * diff[n, :], alpha = sign * w / N (w = the loss weight in the top's
// diff): scale_n = alpha (similar); -alpha when m - d^2 > 0 (legacy) or
// -alpha (m - d) / (d + 1e-4) when m - d > 0 (dissimilar); 0 otherwise.
__global__ void contrastive_backward(int64_t n, int dim, const float* __restrict__ diff,
                                     const float* __restrict__ dist_sq,
                                     const float* __restrict__ sim, float margin, bool legacy,
                                     float sign, const float* __restrict__ top_diff, float num,
                                     float* __restrict__ out) {
  CUDA_KERNEL_LOOP(i, n) {
    const int64_t pair = i / dim;
    const float alpha = sign * top_diff[0] / num;
    float scale = 0.f;
    if (static_cast<int>(sim[pair])) {
      scale = alpha;
    } else if (legacy) {
      if (margin - dist_sq[pair] > 0.f) scale = -alpha;
    } else {
      const float dist = sqrtf(dist_sq[pair]);
      const float gap = margin - dist;
      if (gap > 0.f) scale = -alpha * gap / (dist + 1e-4f);
    }
    out[i] = scale * diff[i];
  }
}

}  // namespace

void ContrastiveLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  gpu_sub(count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), diff_.mutable_gpu_data());
  float* dist_sq = dist_sq_.mutable_gpu_data();
  if (num_ > 0) {
    const int64_t threads = static_cast<int64_t>(num_) * 32;
    pair_distances<<<static_cast<int>((threads + kReduceThreads - 1) / kReduceThreads),
                     kReduceThreads, 0, ::crema::cuda_stream()>>>(num_, dim_, diff_.gpu_data(),
                                                                  dist_sq);
    cuda_check_launch("pair_distances");
  }
  contrastive_forward<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      num_, dist_sq, bottom[2]->gpu_data(), margin_, legacy_, top[0]->mutable_gpu_data());
  cuda_check_launch("contrastive_forward");
}

void ContrastiveLossLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  for (int i = 0; i < 2; ++i) {
    if (!propagate_down[i]) continue;
    CUDA_LAUNCH(contrastive_backward, bottom[i]->count(), dim_, diff_.gpu_data(),
                dist_sq_.gpu_data(), bottom[2]->gpu_data(), margin_, legacy_, i == 0 ? 1.f : -1.f,
                top[0]->gpu_diff(), static_cast<float>(num_), bottom[i]->mutable_gpu_diff());
  }
}

}  // namespace crema
