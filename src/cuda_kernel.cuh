// Helpers for crema's CUDA kernels (included by .cu files only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "crema/gpu_math.hpp"

// Grid-stride loop over [0, n): launch with <<<crema::cuda_blocks(n), crema::kCudaThreads>>>.
#define CUDA_KERNEL_LOOP(i, n)                                                           \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Launches `kernel` over n elements and checks the launch.
#define CUDA_LAUNCH(kernel, n, ...)                                                             \
  do {                                                                                          \
    const int64_t crema_launch_n_ = (n);                                                        \
    if (crema_launch_n_ > 0) {                                                                  \
      kernel<<<::crema::cuda_blocks(crema_launch_n_), ::crema::kCudaThreads>>>(crema_launch_n_, \
                                                                               __VA_ARGS__);    \
      ::crema::cuda_check_launch(#kernel);                                                      \
    }                                                                                           \
  } while (0)
