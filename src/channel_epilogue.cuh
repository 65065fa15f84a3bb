// Device side of ChannelEpilogue (src/channel_epilogue.hpp), for the kernels that write a
// convolution's output.
#pragma once

#include "src/channel_epilogue.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

// The epilogue of raw value v at channel c and NCHW element i: writes sum[i] when there is a
// residual and returns y[i] (formulas in channel_epilogue.hpp).
__device__ __forceinline__ float apply_epilogue(const ChannelEpilogue& e, int c, int64_t i,
                                                float v) {
  float t = e.scale ? v * e.scale[c] : v;
  if (e.shift) t += e.shift[c];
  if (!e.residual) return e.relu ? relu_of(t, e.slope) : t;
  const float s = e.coeff_y * t + e.coeff_residual * e.residual[i];
  e.sum[i] = e.relu ? relu_of(s, e.slope) : s;
  return t;
}

}  // namespace crema
