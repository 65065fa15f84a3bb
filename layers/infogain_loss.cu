// InfogainLossLayer on the GPU (formulas in infogain_loss.hpp). The softmax is
// SoftmaxForwardGpu; the labels are checked on the host, as the CPU path does (free when
// they are there already, as a data layer leaves them). One pass over the positions sums
// the loss and the valid count per block in double; one block adds the block sums and
// writes the loss and the normaliser Z on the device. The backward reads the loss weight
// (the top's diff) and Z on the device.
#include <algorithm>

#include "layers/infogain_loss.hpp"
#include "layers/softmax.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_loss.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the reduction blocks (a multiple of 32)
constexpr int kMaxPartials = 1024;   // blocks of a first reduction stage, at most
constexpr float kLogThreshold = 1e-20f;

// Blocks of kReduceThreads for a first reduction stage over n elements.
int partial_blocks(int64_t n) {
  return static_cast<int>(std::min<int64_t>(
      kMaxPartials, std::max<int64_t>(1, (n + kReduceThreads - 1) / kReduceThreads)));
}

// Per position p = (o, i) not ignored: loss -= sum_k H[l, k] log(max(prob[o, k, i], 1e-20)),
// valid += 1. partial_loss/partial_valid[block] = the block's sums. Labels are in range
// (checked on the host).
__global__ void infogain_forward(int64_t n, const float* __restrict__ prob,
                                 const float* __restrict__ label, const float* __restrict__ H,
                                 int channels, int inner, bool has_ignore, int ignore,
                                 float* __restrict__ partial_loss,
                                 float* __restrict__ partial_valid) {
  double loss = 0, valid = 0;
  CUDA_KERNEL_LOOP(p, n) {
    const int l = static_cast<int>(label[p]);
    if (has_ignore && l == ignore) continue;
    const float* q = prob + p / inner * channels * inner + p % inner;
    const float* hrow = H + static_cast<int64_t>(l) * channels;
    for (int k = 0; k < channels; ++k)
      loss -= hrow[k] * logf(fmaxf(q[static_cast<int64_t>(k) * inner], kLogThreshold));
    valid += 1;
  }
  loss = block_sum(loss);
  valid = block_sum(valid);
  if (threadIdx.x == 0) {
    partial_loss[blockIdx.x] = static_cast<float>(loss);
    partial_valid[blockIdx.x] = static_cast<float>(valid);
  }
}

// sums[r] = sum_c H[r, c] (in the CPU's order).
__global__ void infogain_row_sums(int64_t n, const float* __restrict__ H, int channels,
                                  float* __restrict__ sums) {
  CUDA_KERNEL_LOOP(r, n) {
    float s = 0.f;
    for (int c = 0; c < channels; ++c) s += H[r * channels + c];
    sums[r] = s;
  }
}

// dx[o, k, i] = (prob[o, k, i] * sums[l] - H[l, k]) * w / Z, 0 where ignored (w = the loss
// weight in the top's diff, Z = norm[0]).
__global__ void infogain_backward(int64_t n, const float* __restrict__ prob,
                                  const float* __restrict__ label, const float* __restrict__ H,
                                  const float* __restrict__ sums, int channels, int inner,
                                  bool has_ignore, int ignore, const float* __restrict__ top_diff,
                                  const float* __restrict__ norm, float* __restrict__ dx) {
  CUDA_KERNEL_LOOP(j, n) {
    const int64_t i = j % inner, k = j / inner % channels, o = j / inner / channels;
    const int l = static_cast<int>(label[o * inner + i]);
    if ((has_ignore && l == ignore) || l < 0 || l >= channels) {
      dx[j] = 0.f;  // ignored (out-of-range labels were rejected by the forward)
      continue;
    }
    const float scale = top_diff[0] / norm[0];
    dx[j] = (prob[j] * sums[l] - H[static_cast<int64_t>(l) * channels + k]) * scale;
  }
}

}  // namespace

void InfogainLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardGpu(outer_, channels_, inner_, bottom[0]->gpu_data(), prob_.mutable_gpu_data());
  const float* label = bottom[1]->cpu_data();
  const int64_t positions = static_cast<int64_t>(outer_) * inner_;
  for (int64_t pos = 0; pos < positions; ++pos) {
    const int l = static_cast<int>(label[pos]);
    if (has_ignore_label_ && l == ignore_label_) continue;
    CheckLabel(l, label[pos], static_cast<long>(pos));
  }
  const float* H = bottom.size() >= 3 ? bottom[2]->gpu_data() : infogain_.gpu_data();
  const int blocks = partial_blocks(positions);
  gpu_loss_.Reshape({2 * kMaxPartials + 1});
  float* partial_loss = gpu_loss_.mutable_gpu_data();
  float* partial_valid = partial_loss + kMaxPartials;
  float* norm = partial_loss + 2 * kMaxPartials;
  infogain_forward<<<blocks, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      positions, prob_.gpu_data(), bottom[1]->gpu_data(), H, channels_, inner_, has_ignore_label_,
      ignore_label_, partial_loss, partial_valid);
  cuda_check_launch("infogain_forward");
  // normalization_ 1 is VALID; the other normalisers do not depend on the labels.
  finish_loss<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(blocks, partial_loss, partial_valid,
                                                                normalization_ == 1, Normalizer(0),
                                                                top[0]->mutable_gpu_data(), norm);
  cuda_check_launch("finish_loss");
}

void InfogainLossLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (propagate_down.size() > 2 && propagate_down[2])
    LAYER_THROW("cannot backpropagate to the infogain matrix (bottom 2)");
  if (!propagate_down[0]) return;
  const float* H = bottom.size() >= 3 ? bottom[2]->gpu_data() : infogain_.gpu_data();
  float* sums = row_sums_.mutable_gpu_data();
  CUDA_LAUNCH(infogain_row_sums, channels_, H, channels_, sums);
  CUDA_LAUNCH(infogain_backward, bottom[0]->count(), prob_.gpu_data(), bottom[1]->gpu_data(), H,
              sums, channels_, inner_, has_ignore_label_, ignore_label_, top[0]->gpu_diff(),
              gpu_loss_.gpu_data() + 2 * kMaxPartials, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
