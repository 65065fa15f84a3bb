// HingeLossLayer on the GPU (formulas in hinge_loss.hpp). The labels are checked on the
// host, as the CPU path does (free when they are there already, as a data layer leaves
// them). One pass writes h = max(0, 1 + t) per element and sums h (L1) or h^2 (L2) per block
// in double; one block adds the block sums and writes the loss to the top on the device.
// The backward reads the loss weight from the top's diff on the device.
#include <algorithm>

#include "layers/hinge_loss.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the reduction blocks (a multiple of 32)
constexpr int kMaxPartials = 1024;   // blocks of a first reduction stage, at most

// Blocks of kReduceThreads for a first reduction stage over n elements.
int partial_blocks(int64_t n) {
  return static_cast<int>(std::min<int64_t>(
      kMaxPartials, std::max<int64_t>(1, (n + kReduceThreads - 1) / kReduceThreads)));
}

// h = max(0, 1 + t), t = -x at the label and x elsewhere; partial[block] = the block's sum
// of h (L1) or h^2 (L2). Labels are in range (checked on the host).
__global__ void hinge_forward(int64_t n, const float* __restrict__ x,
                              const float* __restrict__ label, int dim, bool square,
                              float* __restrict__ h, float* __restrict__ partial) {
  double sum = 0;
  CUDA_KERNEL_LOOP(i, n) {
    const int l = static_cast<int>(label[i / dim]);
    const float t = i % dim == l ? -x[i] : x[i];
    const float v = fmaxf(0.f, 1.f + t);
    h[i] = v;
    sum += square ? static_cast<double>(v) * v : v;
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) partial[blockIdx.x] = static_cast<float>(sum);
}

// One block: top[0] = (the sum of partial[0, blocks)) / divisor.
__global__ void finish_loss(int blocks, const float* __restrict__ partial, double divisor,
                            float* __restrict__ top) {
  double loss = 0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) loss += partial[b];
  loss = block_sum(loss);
  if (threadIdx.x == 0) top[0] = static_cast<float>(loss / divisor);
}

// dx = s * g * scale, s = -1 at the label and 1 elsewhere, g = sign(h) (L1) or h (L2),
// scale = w / N (L1) or 2 w / N (L2), w = the loss weight in the top's diff.
__global__ void hinge_backward(int64_t n, const float* __restrict__ h,
                               const float* __restrict__ label, int dim, bool l1,
                               const float* __restrict__ top_diff, float num,
                               float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float w = top_diff[0];
    const float scale = (l1 ? w : 2.f * w) / num;
    const float g = l1 ? (h[i] > 0.f ? 1.f : 0.f) : h[i];
    const int l = static_cast<int>(label[i / dim]);
    dx[i] = (i % dim == l ? -g : g) * scale;
  }
}

}  // namespace

void HingeLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* label = bottom[1]->cpu_data();
  for (int n = 0; n < num_; ++n) {
    const int l = static_cast<int>(label[n]);
    LAYER_REQUIRE(l >= 0 && l < dim_, "label " << label[n] << " of example " << n
                                               << " is out of range [0, " << dim_ << ")");
  }
  const int64_t count = bottom[0]->count();
  const int blocks = partial_blocks(count);
  gpu_loss_.Reshape({kMaxPartials});
  float* partial = gpu_loss_.mutable_gpu_data();
  hinge_forward<<<blocks, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), dim_, norm_ == 2,
      margin_.mutable_gpu_data(), partial);
  cuda_check_launch("hinge_forward");
  finish_loss<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      blocks, partial, static_cast<double>(num_), top[0]->mutable_gpu_data());
  cuda_check_launch("finish_loss");
}

void HingeLossLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  CUDA_LAUNCH(hinge_backward, bottom[0]->count(), margin_.gpu_data(), bottom[1]->gpu_data(), dim_,
              norm_ == 1, top[0]->gpu_diff(), static_cast<float>(num_),
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
