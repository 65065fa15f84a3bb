// BiasLayer on the GPU (formulas in bias.hpp), and the device versions of the broadcast
// helpers that ScaleLayer shares.
//
// ApplyGpu: x is seen as planes [outer * dim][inner], plane p using parameter d = p % dim.
//   - inner >= kMinPlaneInner: `broadcast_apply_planes`, a 2-D grid (planes, chunks of a
//     plane); each block reads a[d], b[d] once and its threads stride over the plane with
//     float4 loads/stores when inner % 4 == 0 and every array is 16-byte aligned.
//   - smaller inner (InnerProduct-style bias: inner == 1): `broadcast_apply_flat`, one thread
//     per 4 (or 1) consecutive elements, d from one 32-bit division per thread.
// Neither divides per element in 64 bits. ReduceGpu runs one block per d, summing over (o, i)
// with a shared-memory tree.
#include <algorithm>
#include <cstdint>

#include "layers/bias.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // a multiple of 32
constexpr int kMinPlaneInner = 64;   // below this, planes would leave most threads idle
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxPlaneBlocks = 65535;  // blocks along the planes; more planes loop

// y = a * x + b as one FMA; a missing a is 1, a missing b is -0 (so that a * x keeps the
// sign of a zero product, exactly as a plain multiplication).
__device__ __forceinline__ float scale_of(const float* a, int d) {
  return a ? a[d] : 1.f;
}
__device__ __forceinline__ float shift_of(const float* b, int d) {
  return b ? b[d] : -0.f;
}

// y[p, i] = a[d] * x[p, i] + b[d], d = p % dim; copy[p, i] = x[p, i] when copy is not null.
//   x, y, copy: [planes][inner] in Vec units (Vec = float4: inner is the float count / 4)
//   grid: (planes, up to 65535 chunks of inner); blocks loop over planes and chunks.
// y may be x (each element is read before it is written, by the same thread).
template <typename Vec>
__global__ void broadcast_apply_planes(int64_t planes, int inner, int dim, const Vec* x,
                                       const float* a, const float* b, Vec* y, Vec* copy) {
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const int d = static_cast<int>(p % dim);
    const float ad = scale_of(a, d), bd = shift_of(b, d);
    const int64_t base = p * inner;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < inner; i += gridDim.y * blockDim.x) {
      Vec v = x[base + i];
      if (copy) copy[base + i] = v;
      for (int k = 0; k < kLanes<Vec>; ++k) lane(v, k) = fmaf(ad, lane(v, k), bd);
      y[base + i] = v;
    }
  }
}

// The same map for small inner: x, y, copy are n Vecs; element e = kLanes * j + k of vector
// j has d = (e / inner) % dim, found once per vector and stepped along its lanes.
template <typename Vec>
__global__ void broadcast_apply_flat(int64_t n, int inner, int dim, const Vec* x, const float* a,
                                     const float* b, Vec* y, Vec* copy) {
  CUDA_KERNEL_LOOP(j, n) {
    ChannelCursor at(j * kLanes<Vec>, inner, dim);
    Vec v = x[j];
    if (copy) copy[j] = v;
    for (int k = 0; k < kLanes<Vec>; ++k, at.next())
      lane(v, k) = fmaf(scale_of(a, at.c), lane(v, k), shift_of(b, at.c));
    y[j] = v;
  }
}

// One block per d: s = sum over o, i of u (* v when v is not null) at (o, d, i);
// r[d] = r[d] + s (accumulate) or s; with r_plain, also r_plain[d] += sum of u.
// Thread t visits k = t, t + blockDim.x, ... of the outer * inner elements of d, stepping
// k's (o, i) without division.
__global__ void broadcast_reduce(int outer, int dim, int inner, const float* u, const float* v,
                                 float* r, bool accumulate, float* r_plain) {
  const int step = blockDim.x;
  const int step_o = inner > 0 ? step / inner : 0, step_i = inner > 0 ? step % inner : 0;
  for (int d = blockIdx.x; d < dim; d += gridDim.x) {
    float part = 0.f, plain = 0.f;
    // (o, i) of k = threadIdx.x; nothing to sum when inner is 0.
    int64_t o = inner > 0 ? threadIdx.x / inner : outer;
    int i = inner > 0 ? threadIdx.x % inner : 0;
    for (; o < outer; o += step_o) {
      const int64_t at = (o * dim + d) * inner + i;
      const float ui = u[at];
      part += v ? ui * v[at] : ui;
      plain += ui;
      i += step_i;
      if (i >= inner) {
        i -= inner;
        ++o;
      }
    }
    part = block_sum(part);
    if (r_plain) plain = block_sum(plain);
    if (threadIdx.x == 0) {
      r[d] = accumulate ? r[d] + part : part;
      if (r_plain) r_plain[d] += plain;
    }
  }
}

template <typename Vec>
void launch_apply(const broadcast::Geometry& g, const float* x, const float* a, const float* b,
                  float* y, float* copy) {
  const int64_t planes = static_cast<int64_t>(g.outer) * g.dim;
  const auto* xv = reinterpret_cast<const Vec*>(x);
  auto* yv = reinterpret_cast<Vec*>(y);
  auto* cv = reinterpret_cast<Vec*>(copy);
  if (g.inner >= kMinPlaneInner) {
    const int inner = g.inner / kLanes<Vec>;
    const int threads = std::min(kCudaThreads, (inner + 31) / 32 * 32);
    const dim3 grid(
        static_cast<unsigned>(std::min(planes, kMaxPlaneBlocks)),
        static_cast<unsigned>(std::min<int64_t>((inner + threads - 1) / threads, kMaxGridY)));
    broadcast_apply_planes<Vec>
        <<<grid, threads, 0, ::crema::cuda_stream()>>>(planes, inner, g.dim, xv, a, b, yv, cv);
    cuda_check_launch("broadcast_apply_planes");
  } else {
    CUDA_LAUNCH(broadcast_apply_flat<Vec>, planes * g.inner / kLanes<Vec>, g.inner, g.dim, xv, a, b,
                yv, cv);
  }
}

}  // namespace

namespace broadcast {

void ApplyGpu(const Geometry& g, const float* x, const float* a, const float* b, float* y,
              float* copy) {
  const int64_t n = static_cast<int64_t>(g.outer) * g.dim * g.inner;
  if (n == 0) return;
  // float4 needs whole vectors: within a plane (planes kernel) or over the array (flat).
  const int64_t unit = g.inner >= kMinPlaneInner ? g.inner : n;
  const bool vec4 =
      unit % 4 == 0 && aligned16(x) && aligned16(y) && (copy == nullptr || aligned16(copy));
  if (vec4)
    launch_apply<float4>(g, x, a, b, y, copy);
  else
    launch_apply<float>(g, x, a, b, y, copy);
}

void ReduceGpu(const Geometry& g, const float* u, const float* v, float* r, bool accumulate,
               float* r_plain) {
  if (g.dim <= 0) return;
  broadcast_reduce<<<std::min(g.dim, 65535), kReduceThreads, 0, ::crema::cuda_stream()>>>(
      g.outer, g.dim, g.inner, u, v, r, accumulate, r_plain);
  cuda_check_launch("broadcast_reduce");
}

}  // namespace broadcast

void BiasLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const float* b = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->gpu_data();
  broadcast::ApplyGpu(geometry_, bottom[0]->gpu_data(), nullptr, b, top[0]->mutable_gpu_data());
}

void BiasLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  const float* dy = top[0]->gpu_diff();
  const bool learned = bottom.size() == 1;
  if (learned ? param_propagate_down(0) : propagate_down[1]) {
    Blob* bias = learned ? blobs_[0].get() : bottom[1];
    broadcast::ReduceGpu(geometry_, dy, nullptr, bias->mutable_gpu_diff(), learned);
  }
  // In place, dx already is dy.
  if (propagate_down[0] && top[0] != bottom[0])
    gpu_copy(bottom[0]->count(), dy, bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
