// A per-channel epilogue: the elementwise work that follows a convolution at test time
// (its bias, a BatchNorm with stored statistics and a Scale, a ReLU, a residual sum), done
// by the pass that writes the convolution's output instead of by passes of its own.
// For the raw output v (no bias) of output channel c at element i of an NCHW array:
//   t = v * scale[c] + shift[c]            (scale null: v + shift[c]; shift null: 0)
//   no residual:  y[i] = act(t)
//   residual:     y[i] = t,  sum[i] = act(coeff_y * t + coeff_residual * residual[i])
//   act(u) = relu ? (u > 0 ? u : slope * u) : u     (NaN stays NaN: relu_of, cuda_kernel.cuh)
// Optionally the pass also writes a 16-bit copy (include/crema/activation_copies.hpp) of what
// the next layers read (y[i] without a residual, sum[i] with one), rounded to nearest even,
// in NCHW order (copy16[i]) or NHWC order (copy16[(n*S + s)*C + c]: written by the 16-bit
// output pass, or by gpu_channel_epilogue_nhwc_copy in src/mixed_precision.cuh);
// copy_overflow is set to 1 when a copied value is not finite.
// (src/inference_fusion.hpp says which layer chains become an epilogue and how scale and
// shift are derived from their parameters). GPU builds only; every pointer is a device
// pointer; residual and sum have y's shape.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstdint>

namespace crema {

struct ChannelEpilogue {
  const float* scale = nullptr;  // [C] or null
  const float* shift = nullptr;  // [C] or null
  bool relu = false;
  float slope = 0.f;                // the ReLU's negative slope
  const float* residual = nullptr;  // null: no residual sum
  float coeff_y = 1.f, coeff_residual = 1.f;
  float* sum = nullptr;    // the residual sum's output (with residual)
  void* copy16 = nullptr;  // null: no 16-bit copy
  bool copy_bf16 = false;  // bfloat16 values, else IEEE half
  bool copy_nhwc = false;
  float* copy_overflow = nullptr;
};

// Applies `epilogue` in place to y [num][channels][spatial] holding raw convolution values
// (a copy16 must be NCHW here; gpu_channel_epilogue_nhwc_copy writes NHWC ones).
void gpu_channel_epilogue(int64_t num, int channels, int64_t spatial,
                          const ChannelEpilogue& epilogue, float* y);

// w_out[o][j] = scale[o] * w[o][j] for o < rows, j < row_size (folding a per-channel scale
// into a convolution's filters: conv(x, scale * W) = scale * conv(x, W) up to rounding).
void gpu_scale_rows(int64_t rows, int64_t row_size, const float* scale, const float* w,
                    float* w_out);

}  // namespace crema

#endif  // CREMA_WITH_CUDA
