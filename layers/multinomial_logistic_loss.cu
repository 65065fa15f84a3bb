// MultinomialLogisticLossLayer on the GPU (formulas in multinomial_logistic_loss.hpp). The
// labels are checked on the host, as the CPU path does (free when they are there already,
// as a data layer leaves them). One block sums the N log terms in double and writes the
// loss to the top on the device; the backward reads the loss weight from the top's diff on
// the device.
#include "layers/multinomial_logistic_loss.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the reduction block (a multiple of 32)
constexpr float kLogThreshold = 1e-20f;

// One block: top[0] = -sum_n log(max(p[n, l_n], 1e-20)) / N. Labels are in range (checked
// on the host).
__global__ void mll_forward(int num, int dim, const float* __restrict__ p,
                            const float* __restrict__ label, float* __restrict__ top) {
  double loss = 0;
  for (int n = threadIdx.x; n < num; n += blockDim.x) {
    const int l = static_cast<int>(label[n]);
    loss -= logf(fmaxf(p[static_cast<int64_t>(n) * dim + l], kLogThreshold));
  }
  loss = block_sum(loss);
  if (threadIdx.x == 0) top[0] = static_cast<float>(loss / num);
}

// dp[n, l_n] = -w / (N max(p[n, l_n], 1e-20)), w = the loss weight in the top's diff (the
// other entries are zeroed before).
__global__ void mll_backward(int64_t n, int dim, const float* __restrict__ p,
                             const float* __restrict__ label, const float* __restrict__ top_diff,
                             float num, float* __restrict__ dp) {
  CUDA_KERNEL_LOOP(i, n) {
    const int l = static_cast<int>(label[i]);
    if (l < 0 || l >= dim) continue;  // the forward has rejected such labels
    const int64_t at = i * dim + l;
    dp[at] = -top_diff[0] / num / fmaxf(p[at], kLogThreshold);
  }
}

}  // namespace

void MultinomialLogisticLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* label = bottom[1]->cpu_data();
  for (int n = 0; n < num_; ++n) {
    const int l = static_cast<int>(label[n]);
    LAYER_REQUIRE(l >= 0 && l < dim_, "label " << label[n] << " of example " << n
                                               << " is out of range [0, " << dim_ << ")");
  }
  mll_forward<<<1, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      num_, dim_, bottom[0]->gpu_data(), bottom[1]->gpu_data(), top[0]->mutable_gpu_data());
  cuda_check_launch("mll_forward");
}

void MultinomialLogisticLossLayer::Backward_gpu(const BlobVec& top,
                                                const std::vector<bool>& propagate_down,
                                                const BlobVec& bottom) {
  if (propagate_down[1]) LAYER_THROW("cannot backpropagate to the labels (bottom 1)");
  if (!propagate_down[0]) return;
  float* dp = bottom[0]->mutable_gpu_diff();
  gpu_set(bottom[0]->count(), 0.f, dp);
  CUDA_LAUNCH(mll_backward, num_, dim_, bottom[0]->gpu_data(), bottom[1]->gpu_data(),
              top[0]->gpu_diff(), static_cast<float>(num_), dp);
}

}  // namespace crema
