// SoftmaxWithLossLayer on the GPU (formulas in softmax_loss.hpp). The softmax is
// SoftmaxForwardGpu; one thread per position then writes its loss, whether it counts, and
// whether its label is out of range into gpu_loss_ ([loss | valid | bad], P = outer * inner
// each); one block sums them and writes the loss top and the normaliser on the device, so
// neither pass waits for the GPU.
//
// Labels out of range throw the CPU path's error. When the loss is read back anyway
// (Context::loss_readback: tests, display iterations) the check is immediate; otherwise the
// summary goes to page-locked host memory asynchronously and the next Forward examines it
// (waiting, if need be, only for that earlier forward pass), naming the earlier batch.
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>

#include "layers/softmax.hpp"
#include "layers/softmax_loss.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"

namespace crema {
namespace {

__global__ void softmax_loss_forward(int64_t n, const float* prob, const float* label, int channels,
                                     int inner, bool has_ignore, int ignore, float* loss,
                                     float* valid, float* bad) {
  CUDA_KERNEL_LOOP(p, n) {
    const int l = static_cast<int>(label[p]);
    loss[p] = 0.f;
    valid[p] = 0.f;
    bad[p] = 0.f;
    if (has_ignore && l == ignore) continue;
    if (l < 0 || l >= channels) {
      bad[p] = 1.f;
      continue;
    }
    const int64_t o = p / inner, i = p % inner;
    const float q = prob[o * channels * inner + int64_t{l} * inner + i];
    loss[p] = -logf(fmaxf(q, FLT_MIN));
    valid[p] = 1.f;
  }
}

__global__ void softmax_loss_backward(int64_t n, const float* label, int channels, int inner,
                                      bool has_ignore, int ignore, float* dx) {
  CUDA_KERNEL_LOOP(p, n) {
    const int l = static_cast<int>(label[p]);
    const int64_t o = p / inner, i = p % inner;
    float* d = dx + o * channels * inner + i;
    if (has_ignore && l == ignore) {
      for (int c = 0; c < channels; ++c) d[int64_t{c} * inner] = 0.f;
    } else if (l >= 0 && l < channels) {
      d[int64_t{l} * inner] -= 1.f;
    }
  }
}

// One block: sums of loss, valid and bad over the positions; the first bad position. Writes
// top = loss / z with z = max(1, valid) when valid_mode, else `fixed`, and the summary
// [z, bad count, first bad position, its label].
__global__ void softmax_loss_finish(int positions, const float* __restrict__ loss,
                                    const float* __restrict__ valid, const float* __restrict__ bad,
                                    const float* __restrict__ label, bool valid_mode, float fixed,
                                    float* __restrict__ top, float* __restrict__ summary) {
  __shared__ int first_bad;
  if (threadIdx.x == 0) first_bad = INT_MAX;
  __syncthreads();
  double l = 0, v = 0, b = 0;
  for (int p = threadIdx.x; p < positions; p += blockDim.x) {
    l += loss[p];
    v += valid[p];
    if (bad[p] != 0.f) {
      b += 1;
      atomicMin(&first_bad, p);
    }
  }
  l = block_sum(l);
  v = block_sum(v);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    const float z = valid_mode ? fmaxf(1.f, static_cast<float>(v)) : fixed;
    top[0] = static_cast<float>(l / z);
    summary[0] = z;
    summary[1] = static_cast<float>(b);
    summary[2] = first_bad == INT_MAX ? -1.f : static_cast<float>(first_bad);
    summary[3] = first_bad == INT_MAX ? 0.f : label[first_bad];
  }
}

// dx *= weight / summary[0] (the forward pass's normaliser).
__global__ void scale_by_normaliser(int64_t n, float weight, const float* __restrict__ summary,
                                    float* dx) {
  const float factor = weight / summary[0];
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] *= factor;
  }
}

constexpr int kFinishThreads = 256;

}  // namespace

void SoftmaxWithLossLayer::ThrowIfBadLabel(const float* summary, bool earlier_batch) const {
  if (summary[1] == 0.f) return;
  LAYER_THROW("label " << static_cast<int>(summary[3]) << " (at index "
                       << static_cast<int>(summary[2]) << " of the label blob"
                       << (earlier_batch ? ", in an earlier batch" : "") << ") is out of range [0, "
                       << channels_ << ")");
}

void SoftmaxWithLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (!pending_check_) pending_check_ = std::make_shared<DeferredDeviceReport>(4 * sizeof(float));
  if (const void* earlier = pending_check_->Collect())  // the previous forward's labels
    ThrowIfBadLabel(static_cast<const float*>(earlier), /*earlier_batch=*/true);
  SoftmaxForwardGpu(outer_, channels_, inner_, bottom[0]->gpu_data(), prob_.mutable_gpu_data());
  const int positions = outer_ * inner_;
  gpu_loss_.Reshape({3 * std::max(positions, 1)});
  gpu_summary_.Reshape({4});
  float* buf = gpu_loss_.mutable_gpu_data();
  float *loss = buf, *valid = buf + positions, *bad = buf + 2 * positions;
  const float* label = bottom[1]->gpu_data();
  CUDA_LAUNCH(softmax_loss_forward, positions, prob_.gpu_data(), label, channels_, inner_,
              has_ignore_label_, ignore_label_, loss, valid, bad);
  float* summary = gpu_summary_.mutable_gpu_data();
  softmax_loss_finish<<<1, kFinishThreads, 0, ::crema::cuda_stream()>>>(
      positions, loss, valid, bad, label, normalization_ == Normalization::VALID, Normalizer(0),
      top[0]->mutable_gpu_data(), summary);
  cuda_check_launch("softmax_loss_finish");
  if (Context::loss_readback()) {  // the caller waits for the loss anyway: check now
    ThrowIfBadLabel(gpu_summary_.cpu_data(), /*earlier_batch=*/false);
    return;
  }
  pending_check_->Queue(summary);
}

void SoftmaxWithLossLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                        const BlobVec& bottom) {
  if (propagate_down.size() > 1 && propagate_down[1])
    LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  const int positions = outer_ * inner_;
  float* dx = bottom[0]->mutable_gpu_diff();
  gpu_copy(prob_.count(), prob_.gpu_data(), dx);
  CUDA_LAUNCH(softmax_loss_backward, positions, bottom[1]->gpu_data(), channels_, inner_,
              has_ignore_label_, ignore_label_, dx);
  // The normaliser of the forward pass (same labels), read on the device.
  CUDA_LAUNCH(scale_by_normaliser, prob_.count(), top[0]->cpu_diff()[0], gpu_summary_.gpu_data(),
              dx);
}

}  // namespace crema
