// AccuracyLayer on the GPU (semantics in accuracy.hpp). One thread per position counts the
// classes scoring at least as high as the label's (the CPU rule, ties against); hits and
// counted flags are summed with cuBLAS. With the per-class second top the CPU code runs
// (the scores move to the host; Accuracy runs in TEST nets only).
#include "layers/accuracy.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void accuracy_forward(int64_t n, const float* score, const float* label, int channels,
                                 int inner, int top_k, bool has_ignore, int ignore, float* hit,
                                 float* counted, float* bad) {
  CUDA_KERNEL_LOOP(p, n) {
    const int l = static_cast<int>(label[p]);
    hit[p] = 0.f;
    counted[p] = 0.f;
    bad[p] = 0.f;
    if (has_ignore && l == ignore) continue;
    if (l < 0 || l >= channels) {
      bad[p] = 1.f;
      continue;
    }
    const int64_t o = p / inner, i = p % inner;
    const float* s = score + o * channels * inner + i;
    const float target = s[int64_t{l} * inner];
    int above = 0;
    for (int c = 0; c < channels && above < top_k; ++c)
      if (c != l && s[int64_t{c} * inner] >= target) ++above;
    hit[p] = above < top_k ? 1.f : 0.f;
    counted[p] = 1.f;
  }
}

}  // namespace

void AccuracyLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (top.size() > 1) {
    Forward_cpu(bottom, top);
    return;
  }
  const int positions = outer_ * inner_;
  gpu_hits_.Reshape({3 * std::max(positions, 1)});
  float* buf = gpu_hits_.mutable_gpu_data();
  float *hit = buf, *counted = buf + positions, *bad = buf + 2 * positions;
  CUDA_LAUNCH(accuracy_forward, positions, bottom[0]->gpu_data(), bottom[1]->gpu_data(), channels_,
              inner_, top_k_, has_ignore_label_, ignore_label_, hit, counted, bad);
  if (positions > 0 && gpu_asum(positions, bad) > 0) {
    Forward_cpu(bottom, top);  // throws the CPU path's message for the bad label
    return;
  }
  const float correct = positions > 0 ? gpu_asum(positions, hit) : 0.f;
  const float total = positions > 0 ? gpu_asum(positions, counted) : 0.f;
  top[0]->mutable_cpu_data()[0] = total == 0.f ? 0.f : correct / total;
}

void AccuracyLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  Backward_cpu(top, propagate_down, bottom);  // no gradient: throws if asked
}

}  // namespace crema
