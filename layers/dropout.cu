// DropoutLayer on the GPU (formulas in dropout.hpp).
//
// The mask is not stored: each TRAIN forward draws a 64-bit seed from the thread's host
// RNG (so Context::reseed reproduces it, as on the CPU), and element i keeps its value when
// the Philox uniform number (seed, subsequence i) in [0, 1) is below 1 - ratio. Backward
// regenerates the same mask from the saved seed. The GPU masks differ from the CPU ones;
// their distribution is the same.
#include <curand_kernel.h>

#include "layers/dropout.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__device__ __forceinline__ bool keep(uint64_t seed, int64_t i, float keep_prob) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, static_cast<unsigned long long>(i), 0, &state);
  return 1.f - curand_uniform(&state) < keep_prob;
}

__global__ void dropout_apply(int64_t n, const float* in, uint64_t seed, float keep_prob,
                              float scale, float* out) {
  CUDA_KERNEL_LOOP(i, n) {
    out[i] = keep(seed, i, keep_prob) ? in[i] * scale : 0.f;
  }
}

}  // namespace

void DropoutLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();
  if (phase_ != Phase::TRAIN) {
    gpu_copy(count, x, y);
    return;
  }
  gpu_seed_ = gpu_rng_seed();
  CUDA_LAUNCH(dropout_apply, count, x, gpu_seed_, 1.f - ratio_, scale_, y);
}

void DropoutLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int count = bottom[0]->count();
  const float* dy = top[0]->gpu_diff();
  float* dx = bottom[0]->mutable_gpu_diff();
  if (phase_ != Phase::TRAIN) {
    gpu_copy(count, dy, dx);
    return;
  }
  CUDA_LAUNCH(dropout_apply, count, dy, gpu_seed_, 1.f - ratio_, scale_, dx);
}

}  // namespace crema
