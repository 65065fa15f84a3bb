// Im2colLayer on the GPU (formulas in im2col.hpp). One thread per column entry (all
// images at once), for any number of spatial axes up to kMaxAxes. col2im scatters each
// column entry back into its image position with atomicAdd: positions that several
// kernel offsets reach are summed in no fixed order, so results agree with the CPU to
// rounding, not bit for bit.
#include "layers/im2col.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {

constexpr int kMaxAxes = 6;

struct Im2colLayer::Geometry {
  int axes;
  int channels;
  int64_t kernel_count;  // K = prod kernel
  int64_t out_count;     // O = prod out
  int64_t image_count;   // prod in
  int in[kMaxAxes], out[kMaxAxes], kernel[kMaxAxes], pad[kMaxAxes], stride[kMaxAxes],
      dilation[kMaxAxes];
};

namespace {
using Geometry = Im2colLayer::Geometry;

// The image offset (within one image of one channel) that column entry (q, p) reads, or -1
// when it falls into the padding.
__device__ int64_t image_offset(const Geometry& g, int64_t q, int64_t p) {
  int64_t offset = 0;
  int64_t q_rest = q, p_rest = p, scale = 1;
  for (int a = g.axes - 1; a >= 0; --a) {
    const int k = static_cast<int>(q_rest % g.kernel[a]);
    const int o = static_cast<int>(p_rest % g.out[a]);
    q_rest /= g.kernel[a];
    p_rest /= g.out[a];
    const int i = o * g.stride[a] - g.pad[a] + k * g.dilation[a];
    if (i < 0 || i >= g.in[a]) return -1;
    offset += i * scale;
    scale *= g.in[a];
  }
  return offset;
}

// e indexes [N, C, K, O]; the image is [N, C, in...].
__global__ void im2col_kernel(int64_t n, Geometry g, const float* __restrict__ im,
                              float* __restrict__ col) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t p = e % g.out_count;
    const int64_t q = (e / g.out_count) % g.kernel_count;
    const int64_t image_channel = e / (g.out_count * g.kernel_count);  // n * C + c
    const int64_t at = image_offset(g, q, p);
    col[e] = at < 0 ? 0.f : im[image_channel * g.image_count + at];
  }
}

__global__ void col2im_kernel(int64_t n, Geometry g, const float* __restrict__ col,
                              float* __restrict__ im) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t p = e % g.out_count;
    const int64_t q = (e / g.out_count) % g.kernel_count;
    const int64_t image_channel = e / (g.out_count * g.kernel_count);
    const int64_t at = image_offset(g, q, p);
    if (at >= 0) atomicAdd(im + image_channel * g.image_count + at, col[e]);
  }
}

}  // namespace

Im2colLayer::Geometry Im2colLayer::GpuGeometry() const {
  LAYER_REQUIRE(num_spatial_axes_ <= kMaxAxes, "the GPU code supports up to "
                                                   << kMaxAxes << " spatial axes, got "
                                                   << num_spatial_axes_);
  Geometry g{};
  g.axes = num_spatial_axes_;
  g.channels = channels_;
  g.kernel_count = g.out_count = g.image_count = 1;
  for (int a = 0; a < num_spatial_axes_; ++a) {
    g.in[a] = in_spatial_[a];
    g.kernel[a] = kernel_[a];
    g.pad[a] = pad_[a];
    g.stride[a] = stride_[a];
    g.dilation[a] = dilation_[a];
    g.out[a] =
        (in_spatial_[a] + 2 * pad_[a] - (dilation_[a] * (kernel_[a] - 1) + 1)) / stride_[a] + 1;
    g.kernel_count *= kernel_[a];
    g.out_count *= g.out[a];
    g.image_count *= in_spatial_[a];
  }
  return g;
}

void Im2colLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const Geometry g = GpuGeometry();
  CUDA_LAUNCH(im2col_kernel, int64_t{num_} * top_dim_, g, bottom[0]->gpu_data(),
              top[0]->mutable_gpu_data());
}

void Im2colLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const Geometry g = GpuGeometry();
  float* dx = bottom[0]->mutable_gpu_diff();
  gpu_set(bottom[0]->count(), 0.f, dx);
  CUDA_LAUNCH(col2im_kernel, int64_t{num_} * top_dim_, g, top[0]->gpu_diff(), dx);
}

}  // namespace crema
