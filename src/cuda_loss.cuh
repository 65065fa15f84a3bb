// Kernels shared by the CUDA loss layers (included by .cu files only).
#pragma once

#include "src/cuda_kernel.cuh"

namespace crema {

// One block: the loss and valid count are the sums of the first stage's `blocks` partial
// sums; Z = max(1, valid) when `valid_mode` (normalization VALID), else `fixed`;
// top[0] = loss / Z, and Z is kept in norm[0] for the backward.
static __global__ void finish_loss(int blocks, const float* __restrict__ partial_loss,
                                   const float* __restrict__ partial_valid, bool valid_mode,
                                   float fixed, float* __restrict__ top, float* __restrict__ norm) {
  double loss = 0, valid = 0;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) {
    loss += partial_loss[b];
    valid += partial_valid[b];
  }
  loss = block_sum(loss);
  valid = block_sum(valid);
  if (threadIdx.x == 0) {
    const float z = valid_mode ? fmaxf(1.f, static_cast<float>(valid)) : fixed;
    top[0] = static_cast<float>(loss / z);
    norm[0] = z;
  }
}

}  // namespace crema
