// SoftmaxWithLossLayer on the GPU (formulas in softmax_loss.hpp). The softmax is
// SoftmaxForwardGpu; one thread per position then writes its loss, whether it counts, and
// whether its label is out of range into gpu_loss_ ([loss | valid | bad], P = outer * inner
// each), which are summed with cuBLAS. An out-of-range label throws the CPU path's error.
#include <cfloat>

#include "layers/softmax.hpp"
#include "layers/softmax_loss.hpp"
#include "src/cuda_kernel.cuh"

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

}  // namespace

void SoftmaxWithLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardGpu(outer_, channels_, inner_, bottom[0]->gpu_data(), prob_.mutable_gpu_data());
  const int positions = outer_ * inner_;
  gpu_loss_.Reshape({3 * std::max(positions, 1)});
  float* buf = gpu_loss_.mutable_gpu_data();
  float *loss = buf, *valid = buf + positions, *bad = buf + 2 * positions;
  CUDA_LAUNCH(softmax_loss_forward, positions, prob_.gpu_data(), bottom[1]->gpu_data(), channels_,
              inner_, has_ignore_label_, ignore_label_, loss, valid, bad);
  if (positions > 0 && gpu_asum(positions, bad) > 0) {
    const float* label = bottom[1]->cpu_data();
    for (int p = 0; p < positions; ++p) {
      const int l = static_cast<int>(label[p]);
      if (has_ignore_label_ && l == ignore_label_) continue;
      if (l < 0 || l >= channels_)
        LAYER_THROW("label " << l << " (at index " << p
                             << " of the label blob) is out of range [0, " << channels_ << ")");
    }
  }
  const float total = positions > 0 ? gpu_asum(positions, loss) : 0.f;
  const int count = positions > 0 ? static_cast<int>(gpu_asum(positions, valid) + 0.5f) : 0;
  top[0]->mutable_cpu_data()[0] = total / Normalizer(count);
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
  // The valid flags of the forward pass (same labels).
  const int count =
      positions > 0 ? static_cast<int>(gpu_asum(positions, gpu_loss_.gpu_data() + positions) + 0.5f)
                    : 0;
  gpu_scal(prob_.count(), top[0]->cpu_diff()[0] / Normalizer(count), dx);
}

}  // namespace crema
