// EuclideanLossLayer on the GPU (formulas in euclidean_loss.hpp).
#include "layers/euclidean_loss.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

void EuclideanLossLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = bottom[0]->count();
  gpu_sub(count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), diff_.mutable_gpu_data());
  const float dot = count > 0 ? gpu_dot(count, diff_.gpu_data(), diff_.gpu_data()) : 0.f;
  top[0]->mutable_cpu_data()[0] = dot / bottom[0]->shape(0) / 2.f;
}

void EuclideanLossLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                      const BlobVec& bottom) {
  for (int i = 0; i < 2; ++i) {
    if (!propagate_down[i]) continue;
    const float sign = i == 0 ? 1.f : -1.f;
    const float alpha = sign * top[0]->cpu_diff()[0] / bottom[i]->shape(0);
    gpu_scale(bottom[i]->count(), alpha, diff_.gpu_data(), bottom[i]->mutable_gpu_diff());
  }
}

}  // namespace crema
