// ClipLayer on the GPU (formulas in clip.hpp): y = max(min, min(x, max));
// dx = dy where min <= x <= max (bounds included), else 0. In place, the forward saves x
// in bottom_copy_ in the same pass.
#include "layers/clip.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place); `saved` (null when not in place) gets x.
__global__ void clip_forward(int64_t n, const float* x, float lo, float hi, float* saved,
                             float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    if (saved) saved[i] = v;
    // std::max(lo, std::min(v, hi)) as on the CPU (same answer for a NaN input).
    const float m = hi < v ? hi : v;
    y[i] = lo < m ? m : lo;
  }
}

// dy and dx may be the same array (in place).
__global__ void clip_backward(int64_t n, const float* x, const float* dy, float lo, float hi,
                              float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    dx[i] = dy[i] * static_cast<float>((v >= lo) & (v <= hi));
  }
}

}  // namespace

void ClipLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  float* saved = top[0] == bottom[0] ? bottom_copy_.mutable_gpu_data() : nullptr;
  CUDA_LAUNCH(clip_forward, bottom[0]->count(), bottom[0]->gpu_data(), min_, max_, saved,
              top[0]->mutable_gpu_data());
}

void ClipLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = top[0] == bottom[0] ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
  CUDA_LAUNCH(clip_backward, bottom[0]->count(), x, top[0]->gpu_diff(), min_, max_,
              bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
