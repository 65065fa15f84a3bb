// Device side of ChannelEpilogue (src/channel_epilogue.hpp), for the kernels that write a
// convolution's output.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "src/channel_epilogue.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

// The epilogue of raw value v at channel c and NCHW element i: writes sum[i] when there is a
// residual and returns y[i] (formulas in channel_epilogue.hpp); *visible gets what the next
// layers read (y[i], or sum[i] with a residual), the value a copy16 holds.
__device__ __forceinline__ float apply_epilogue(const ChannelEpilogue& e, int c, int64_t i, float v,
                                                float* visible) {
  float t = e.scale ? v * e.scale[c] : v;
  if (e.shift) t += e.shift[c];
  if (!e.residual) {
    *visible = e.relu ? relu_of(t, e.slope) : t;
    return *visible;
  }
  const float s = e.coeff_y * t + e.coeff_residual * e.residual[i];
  *visible = e.relu ? relu_of(s, e.slope) : s;
  e.sum[i] = *visible;
  return t;
}

// Rounds v into element `index` of the epilogue's 16-bit copy; returns whether the rounded
// value is finite.
__device__ __forceinline__ bool store_copy16(const ChannelEpilogue& e, int64_t index, float v) {
  if (e.copy_bf16) {
    const __nv_bfloat16 r = __float2bfloat16_rn(v);
    static_cast<__nv_bfloat16*>(e.copy16)[index] = r;
    return isfinite(__bfloat162float(r));
  }
  const __half r = __float2half_rn(v);
  static_cast<__half*>(e.copy16)[index] = r;
  return isfinite(__half2float(r));
}

}  // namespace crema
