// The plain-SGD update on the device (formulas in sgd.hpp): normalisation, L2/L1
// regularisation and the momentum step fused into one pass over each parameter.
#include "solvers/sgd.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void sgd_update(int64_t n, const float* w, float* g, float* h, float norm_scale, int reg,
                           float decay, float momentum, float rate) {
  CUDA_KERNEL_LOOP(i, n) {
    float gi = g[i];
    if (norm_scale != 1.f) gi *= norm_scale;
    if (reg == 1) {
      gi += decay * w[i];
    } else if (reg == 2) {
      const float wi = w[i];
      gi += decay * static_cast<float>((0.f < wi) - (wi < 0.f));
    }
    const float value = rate * gi + momentum * h[i];
    h[i] = value;
    g[i] = value;
  }
}

}  // namespace

void SgdUpdateGpu(int n, const float* w, float* g, float* h, float norm_scale, int reg, float decay,
                  float momentum, float rate) {
  CUDA_LAUNCH(sgd_update, n, w, g, h, norm_scale, reg, decay, momentum, rate);
}

}  // namespace crema
