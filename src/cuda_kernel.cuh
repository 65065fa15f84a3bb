// Helpers for crema's CUDA kernels (included by .cu files only).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "crema/gpu_math.hpp"
#include "src/cuda_stream.hpp"

// Grid-stride loop over [0, n): launch with
// <<<crema::cuda_blocks(n), crema::kCudaThreads, 0, crema::cuda_stream()>>>.
#define CUDA_KERNEL_LOOP(i, n)                                                           \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Launches `kernel` over n elements and checks the launch.
#define CUDA_LAUNCH(kernel, n, ...)                                             \
  do {                                                                          \
    const int64_t crema_launch_n_ = (n);                                        \
    if (crema_launch_n_ > 0) {                                                  \
      kernel<<<::crema::cuda_blocks(crema_launch_n_), ::crema::kCudaThreads, 0, \
               ::crema::cuda_stream()>>>(crema_launch_n_, __VA_ARGS__);         \
      ::crema::cuda_check_launch(#kernel);                                      \
    }                                                                           \
  } while (0)

namespace crema {

// ReLU as the layer computes it (layers/relu.hpp): v > 0 ? v : slope * v, exactly +0 for
// v <= 0 and slope 0 (also -0 and -inf), and NaN for NaN (NaN <= 0 is false), as on the CPU.
__device__ __forceinline__ float relu_of(float v, float slope) {
  return v <= 0.f ? (slope == 0.f ? 0.f : slope * v) : v;
}

// Whether a device array can be read as float4 (16-byte aligned).
inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// The floats of a float (1) or a float4 (4), by index (unrolled loops make it a register).
template <typename Vec>
constexpr int kLanes = sizeof(Vec) / sizeof(float);
__device__ __forceinline__ float& lane(float& v, int) {
  return v;
}
__device__ __forceinline__ float& lane(float4& v, int k) {
  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}

// e / d, in 32 bits whenever e fits (64-bit division is several times slower).
__device__ __forceinline__ int64_t div_fast(int64_t e, int d) {
  return e <= UINT32_MAX ? static_cast<uint32_t>(e) / static_cast<uint32_t>(d) : e / d;
}

// Where element e of an array [planes][inner] lies, plane p belonging to channel p % channels:
// offset s in its plane and channel c, found with two divisions and then stepped along.
struct ChannelCursor {
  int s, c;
  const int inner, channels;
  __device__ ChannelCursor(int64_t e, int inner_, int channels_)
      : inner(inner_), channels(channels_) {
    const int64_t plane = div_fast(e, inner);
    s = static_cast<int>(e - plane * inner);
    c = static_cast<int>(plane - div_fast(plane, channels) * channels);
  }
  __device__ void next() {
    if (++s == inner) {
      s = 0;
      if (++c == channels) c = 0;
    }
  }
};

// Sum of v over the 32 lanes of a warp; the result is valid in lane 0.
template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over the thread block (blockDim.x a multiple of 32, at most 1024), returned to
// every thread. Every thread of the block must call it; consecutive calls are safe (the
// leading barrier waits for the readers of the previous call's shared memory).
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T warp_sums[32];
  __shared__ T total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x >> 5) ? warp_sums[lane] : T(0);
    v = warp_sum(v);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

}  // namespace crema
