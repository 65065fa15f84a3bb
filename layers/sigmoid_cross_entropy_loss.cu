// SigmoidCrossEntropyLossLayer on the GPU (formulas in sigmoid_cross_entropy_loss.hpp).
// One pass sums the loss terms and the valid count per block in double; one block adds the
// block sums and writes the loss and the normaliser Z on the device. The backward is one
// thread per element and reads the loss weight (the top's diff) and Z on the device.
// Nothing is read back to the host.
#include <algorithm>

#include "layers/sigmoid_cross_entropy_loss.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_loss.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the reduction blocks (a multiple of 32)
constexpr int kMaxPartials = 1024;   // blocks of a first reduction stage, at most

// Blocks of kReduceThreads for a first reduction stage over n elements.
int partial_blocks(int64_t n) {
  return static_cast<int>(std::min<int64_t>(
      kMaxPartials, std::max<int64_t>(1, (n + kReduceThreads - 1) / kReduceThreads)));
}

__device__ __forceinline__ bool ignored(float t, bool has_ignore, int ignore) {
  return has_ignore && static_cast<int>(t) == ignore;
}

// Per element not ignored: loss += log(1 + exp(-|x|)) + max(x, 0) - x t, valid += 1.
// partial_loss/partial_valid[block] = the block's sums.
__global__ void sce_forward(int64_t n, const float* __restrict__ x, const float* __restrict__ t,
                            bool has_ignore, int ignore, float* __restrict__ partial_loss,
                            float* __restrict__ partial_valid) {
  double loss = 0, valid = 0;
  CUDA_KERNEL_LOOP(i, n) {
    if (ignored(t[i], has_ignore, ignore)) continue;
    const float v = x[i];
    loss += log1pf(expf(-fabsf(v))) + fmaxf(v, 0.f) - v * t[i];
    valid += 1;
  }
  loss = block_sum(loss);
  valid = block_sum(valid);
  if (threadIdx.x == 0) {
    partial_loss[blockIdx.x] = static_cast<float>(loss);
    partial_valid[blockIdx.x] = static_cast<float>(valid);
  }
}

// dx = w / Z * (sigmoid(x) - t), 0 where ignored (w = the loss weight in the top's diff,
// Z = norm[0]).
__global__ void sce_backward(int64_t n, const float* __restrict__ x, const float* __restrict__ t,
                             bool has_ignore, int ignore, const float* __restrict__ top_diff,
                             const float* __restrict__ norm, float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    if (ignored(t[i], has_ignore, ignore)) {
      dx[i] = 0.f;
      continue;
    }
    const float scale = top_diff[0] / norm[0];
    const float s = 1.f / (1.f + expf(-x[i]));
    dx[i] = scale * (s - t[i]);
  }
}

}  // namespace

void SigmoidCrossEntropyLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int64_t count = bottom[0]->count();
  const int blocks = partial_blocks(count);
  gpu_loss_.Reshape({2 * kMaxPartials + 1});
  float* partial_loss = gpu_loss_.mutable_gpu_data();
  float* partial_valid = partial_loss + kMaxPartials;
  float* norm = partial_loss + 2 * kMaxPartials;
  sce_forward<<<blocks, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), has_ignore_label_, ignore_label_,
      partial_loss, partial_valid);
  cuda_check_launch("sce_forward");
  // normalization_ 1 is VALID; the other normalisers do not depend on the targets.
  finish_loss<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(blocks, partial_loss, partial_valid,
                                                                normalization_ == 1, Normalizer(0),
                                                                top[0]->mutable_gpu_data(), norm);
  cuda_check_launch("finish_loss");
}

void SigmoidCrossEntropyLossLayer::Backward_gpu(const BlobVec& top,
                                                const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the targets (bottom 1)");
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(sce_backward, bottom[0]->count(), bottom[0]->gpu_data(), bottom[1]->gpu_data(),
              has_ignore_label_, ignore_label_, top[0]->gpu_diff(),
              gpu_loss_.gpu_data() + 2 * kMaxPartials, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
