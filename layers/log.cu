// LogLayer on the GPU (formulas in log.hpp): y = ln(shift + scale * x) / ln(base);
// dx = dy * (scale / ln(base)) / (shift + scale * x). In place, the forward saves x in
// bottom_copy_ in the same pass.
#include "layers/log.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// x and y may be the same array (in place); `saved` (null when not in place) gets x.
__global__ void log_forward(int64_t n, const float* x, float scale, float shift, float out,
                            float* saved, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    const float v = x[i];
    if (saved) saved[i] = v;
    const float l = logf(shift + scale * v);
    y[i] = out == 1.f ? l : out * l;
  }
}

// dy and dx may be the same array (in place).
__global__ void log_backward(int64_t n, const float* x, const float* dy, float scale, float shift,
                             float k, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = dy[i] * (k / (shift + scale * x[i]));
  }
}

}  // namespace

void LogLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  float* saved = top[0] == bottom[0] ? bottom_copy_.mutable_gpu_data() : nullptr;
  CUDA_LAUNCH(log_forward, bottom[0]->count(), bottom[0]->gpu_data(), input_scale_, input_shift_,
              base_scale_, saved, top[0]->mutable_gpu_data());
}

void LogLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = top[0] == bottom[0] ? bottom_copy_.gpu_data() : bottom[0]->gpu_data();
  CUDA_LAUNCH(log_backward, bottom[0]->count(), x, top[0]->gpu_diff(), input_scale_, input_shift_,
              backward_scale_, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
