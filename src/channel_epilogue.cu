// The per-channel epilogue as a pass of its own (src/channel_epilogue.hpp), for the routes
// whose convolution output comes from cuDNN or cuBLAS directly, and the filter folding.
#include "src/channel_epilogue.cuh"

namespace crema {
namespace {

// In place on y viewed as [planes = num * C][inner]: block row blockIdx.y walks the planes, the
// threads of a row stride over one plane (float4 groups when vec4), so each thread's channel
// is fixed and read once. A copy16 is NCHW: element i of the copy is element i of y or sum.
__global__ void channel_epilogue_kernel(int64_t planes, int channels, int64_t inner, bool vec4,
                                        ChannelEpilogue e, float* y) {
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  bool bad = false;
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int c = static_cast<int>(p % channels);
    const int64_t base = p * inner;
    // The epilogue of element i holding raw value v (and its copy).
    auto finish = [&](int64_t i, float v) {
      float seen;  // what the next layers read
      const float out = apply_epilogue(e, c, i, v, &seen);
      if (e.copy16) bad |= !store_copy16(e, i, seen);
      return out;
    };
    if (vec4) {
      float4* row = reinterpret_cast<float4*>(y + base);
      for (int64_t j = first; j < inner / 4; j += step) {
        float4 v = row[j];
        const int64_t i = base + 4 * j;
        v.x = finish(i, v.x);
        v.y = finish(i + 1, v.y);
        v.z = finish(i + 2, v.z);
        v.w = finish(i + 3, v.w);
        row[j] = v;
      }
    } else {
      for (int64_t j = first; j < inner; j += step) y[base + j] = finish(base + j, y[base + j]);
    }
  }
  if (bad && e.copy_overflow) *e.copy_overflow = 1.f;
}

__global__ void scale_rows_kernel(int64_t n, int64_t row_size, const float* scale, const float* w,
                                  float* w_out) {
  CUDA_KERNEL_LOOP(i, n) {
    w_out[i] = scale[i / row_size] * w[i];
  }
}

}  // namespace

void gpu_channel_epilogue(int64_t num, int channels, int64_t spatial,
                          const ChannelEpilogue& epilogue, float* y) {
  const int64_t planes = num * channels;
  if (planes == 0 || spatial == 0) return;
  CHECK(!epilogue.copy16 || !epilogue.copy_nhwc) << "gpu_channel_epilogue writes NCHW copies only";
  // float4 only for whole rows of aligned data (the residual and sum rows start at the same
  // offsets as y's, but are read and written as single floats).
  const bool vec4 = spatial % 4 == 0 && aligned16(y);
  const int64_t work = vec4 ? spatial / 4 : spatial;
  const int threads = work >= 256 ? 256 : static_cast<int>((work + 31) / 32) * 32;
  const int64_t per_plane = (work + threads - 1) / threads;
  const dim3 grid(static_cast<unsigned>(per_plane < 64 ? per_plane : 64),
                  static_cast<unsigned>(planes < 65535 ? planes : 65535));
  channel_epilogue_kernel<<<grid, threads, 0, ::crema::cuda_stream()>>>(planes, channels, spatial,
                                                                        vec4, epilogue, y);
  cuda_check_launch("channel_epilogue_kernel");
}

void gpu_scale_rows(int64_t rows, int64_t row_size, const float* scale, const float* w,
                    float* w_out) {
  CUDA_LAUNCH(scale_rows_kernel, rows * row_size, row_size, scale, w, w_out);
}

}  // namespace crema
