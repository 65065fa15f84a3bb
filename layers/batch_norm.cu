// BatchNormLayer on the GPU (formulas in batch_norm.hpp). The per-channel reductions (the
// batch mean and variance, the backward's sum(dy) and sum(dy * y)) run one block per
// channel with sums in double, as the CPU's; the same blocks update Caffe's running sums on
// the device. Nothing is read back to the host. gpu_stats_ holds the statistics between the
// kernels: [mean, inv_std, slot 2, slot 3] x C, slots 2 and 3 being the TRAIN backward's
// sum(dy) / m and sum(dy * y) / m, or with global statistics slot 2 the forward's shift
// -mean * inv_std.
//
// The elementwise passes (normalise, backward) see x [N, C, S] as N * C planes of S
// contiguous elements, plane p in channel c = p % C, and apply a per-channel map (below:
// BnAffine, BnNormalize, BnTrainGrad) with one of two launch shapes:
//   - S >= kMinPlaneInner: `bn_map_planes`, a 2-D grid (planes, chunks of a plane); each
//     block fetches its channel's constants once and its threads stride over the plane,
//     4 floats at a time when S % 4 == 0 and every array is 16-byte aligned;
//   - smaller S (e.g. S = 1 after an InnerProduct, 7 x 7 = 49): `bn_map_flat`, one thread per
//     4 (or 1) consecutive elements, the channel from one 32-bit division per thread.
#include <algorithm>
#include <cstdint>

#include "layers/batch_norm.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

constexpr int kReduceThreads = 256;  // threads of the per-channel blocks (a multiple of 32)
constexpr int kMinPlaneInner = 64;   // below this, planes would leave most threads idle
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxPlaneBlocks = 65535;  // blocks along the planes; more planes loop

// Walks the elements e = start, start + step, ... of one channel of an [N, C, S] array
// (n = e / S, s = e % S), stepping (n, s) without division; done when n reaches N.
struct ChannelWalk {
  int64_t n;
  int s, step_n, step_s;
  __device__ ChannelWalk(int start, int step, int num, int spatial)
      : n(spatial > 0 ? start / spatial : num),
        s(spatial > 0 ? start % spatial : 0),
        step_n(spatial > 0 ? step / spatial : 0),
        step_s(spatial > 0 ? step % spatial : 0) {}
  __device__ int64_t offset(int c, int channels, int spatial) const {
    return (n * channels + c) * spatial + s;
  }
  __device__ void next(int spatial) {
    n += step_n;
    s += step_s;
    if (s >= spatial) {
      s -= spatial;
      ++n;
    }
  }
};

// One block per channel: the batch mean and (biased) variance over the m = N * S values,
// in two passes as the CPU; then the running sums and 1 / sqrt(var + eps). Block 0 also
// advances the scale factor (read by no other block in TRAIN statistics).
__global__ void bn_batch_stats(int channels, int num, int spatial, const float* __restrict__ x,
                               float fraction, float correction, float eps, float* mean_sum,
                               float* var_sum, float* factor, float* mean, float* inv_std) {
  const int c = blockIdx.x;
  const double m = static_cast<double>(num) * spatial;
  double sum = 0;
  for (ChannelWalk e(threadIdx.x, blockDim.x, num, spatial); e.n < num; e.next(spatial))
    sum += x[e.offset(c, channels, spatial)];
  const float mu = static_cast<float>(block_sum(sum) / m);
  double sq = 0;
  for (ChannelWalk e(threadIdx.x, blockDim.x, num, spatial); e.n < num; e.next(spatial)) {
    const float d = x[e.offset(c, channels, spatial)] - mu;
    sq += d * d;
  }
  const float var = static_cast<float>(block_sum(sq) / m);
  if (threadIdx.x == 0) {
    mean[c] = mu;
    inv_std[c] = 1.f / sqrtf(var + eps);
    mean_sum[c] = mu + fraction * mean_sum[c];
    var_sum[c] = correction * var + fraction * var_sum[c];
    if (c == 0) factor[0] = factor[0] * fraction + 1.f;
  }
}

// Global statistics: mean = mean_sum / factor, var = var_sum / factor (0 when factor is 0);
// also the forward's folded shift = -mean * inv_std (y = x * inv_std + shift).
__global__ void bn_global_stats(int64_t n, const float* mean_sum, const float* var_sum,
                                const float* factor, float eps, float* mean, float* inv_std,
                                float* shift) {
  CUDA_KERNEL_LOOP(c, n) {
    const float stored = factor[0];
    const float scale = stored == 0.f ? 0.f : 1.f / stored;
    const float mu = scale * mean_sum[c];
    const float k = 1.f / sqrtf(scale * var_sum[c] + eps);
    mean[c] = mu;
    inv_std[c] = k;
    shift[c] = -mu * k;
  }
}

// One block per channel: mean_dy[c] = sum dy / m, mean_dyy[c] = sum dy * y / m.
__global__ void bn_backward_sums(int channels, int num, int spatial, const float* __restrict__ dy,
                                 const float* __restrict__ y, float* mean_dy, float* mean_dyy) {
  const int c = blockIdx.x;
  const double m = static_cast<double>(num) * spatial;
  double a = 0, b = 0;
  for (ChannelWalk e(threadIdx.x, blockDim.x, num, spatial); e.n < num; e.next(spatial)) {
    const int64_t i = e.offset(c, channels, spatial);
    a += dy[i];
    b += dy[i] * y[i];
  }
  a = block_sum(a);
  b = block_sum(b);
  if (threadIdx.x == 0) {
    mean_dy[c] = static_cast<float>(a / m);
    mean_dyy[c] = static_cast<float>(b / m);
  }
}

// ---- Per-channel maps: map.at(c) gives f with out = f(x, u) for channel c ----------------

// out = x * a[c] + b[c] (one FMA); b null: x * a[c]. Global forward (a = inv_std, b = shift)
// and global backward (dx = dy * inv_std).
struct BnAffine {
  const float* a;
  const float* b;
  struct At {
    float a, b;
    __device__ float operator()(float x, float) const { return fmaf(x, a, b); }
  };
  // -0 keeps the sign of a zero product as a plain multiplication does.
  __device__ At at(int c) const { return {a[c], b ? b[c] : -0.f}; }
};

// out = (x - mean[c]) * inv_std[c]. TRAIN forward.
struct BnNormalize {
  const float* mean;
  const float* inv_std;
  struct At {
    float mean, k;
    __device__ float operator()(float x, float) const { return (x - mean) * k; }
  };
  __device__ At at(int c) const { return {mean[c], inv_std[c]}; }
};

// out = (dy - mean_dy[c] - y * mean_dyy[c]) * inv_std[c], x = dy, u = y. TRAIN backward.
struct BnTrainGrad {
  const float* mean_dy;
  const float* mean_dyy;
  const float* inv_std;
  struct At {
    float mean_dy, mean_dyy, k;
    __device__ float operator()(float dy, float y) const {
      return (dy - mean_dy - y * mean_dyy) * k;
    }
  };
  __device__ At at(int c) const { return {mean_dy[c], mean_dyy[c], inv_std[c]}; }
};

// y[p, i] = f(x[p, i], u[p, i]) with f = map.at(p % channels); also into y2 when not null.
//   x, u (may be null), y, y2: [planes][inner] in Vec units (float4: inner = S / 4)
//   grid: (planes, up to 65535 chunks of inner); blocks loop over planes and chunks.
// y may be x (each element is read before it is written, by the same thread).
template <typename Map, typename Vec>
__global__ void bn_map_planes(int64_t planes, int inner, int channels, Map map, const Vec* x,
                              const Vec* u, Vec* y, Vec* y2) {
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const typename Map::At f = map.at(static_cast<int>(p % channels));
    const int64_t base = p * inner;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < inner; i += gridDim.y * blockDim.x) {
      Vec v = x[base + i];
      Vec w = u ? u[base + i] : v;
      for (int k = 0; k < kLanes<Vec>; ++k) lane(v, k) = f(lane(v, k), lane(w, k));
      y[base + i] = v;
      if (y2) y2[base + i] = v;
    }
  }
}

// The same map for small S: x, u, y, y2 are n Vecs; element e = kLanes * j + k of vector j
// is in channel (e / S) % C, found once per vector and stepped along its lanes.
template <typename Map, typename Vec>
__global__ void bn_map_flat(int64_t n, int inner, int channels, Map map, const Vec* x, const Vec* u,
                            Vec* y, Vec* y2) {
  CUDA_KERNEL_LOOP(j, n) {
    ChannelCursor at(j * kLanes<Vec>, inner, channels);
    Vec v = x[j];
    Vec w = u ? u[j] : v;
    for (int k = 0; k < kLanes<Vec>; ++k, at.next())
      lane(v, k) = map.at(at.c)(lane(v, k), lane(w, k));
    y[j] = v;
    if (y2) y2[j] = v;
  }
}

template <typename Map, typename Vec>
void launch_map(int64_t planes, int spatial, int channels, const Map& map, const float* x,
                const float* u, float* y, float* y2) {
  const auto* xv = reinterpret_cast<const Vec*>(x);
  const auto* uv = reinterpret_cast<const Vec*>(u);
  auto* yv = reinterpret_cast<Vec*>(y);
  auto* y2v = reinterpret_cast<Vec*>(y2);
  if (spatial >= kMinPlaneInner) {
    const int inner = spatial / kLanes<Vec>;
    const int threads = std::min(kCudaThreads, (inner + 31) / 32 * 32);
    const dim3 grid(
        static_cast<unsigned>(std::min(planes, kMaxPlaneBlocks)),
        static_cast<unsigned>(std::min<int64_t>((inner + threads - 1) / threads, kMaxGridY)));
    bn_map_planes<Map, Vec><<<grid, threads, 0, ::crema::cuda_stream()>>>(planes, inner, channels,
                                                                          map, xv, uv, yv, y2v);
    cuda_check_launch("bn_map_planes");
  } else {
    const int64_t n = planes * spatial / kLanes<Vec>;
    bn_map_flat<Map, Vec><<<cuda_blocks(n), kCudaThreads, 0, ::crema::cuda_stream()>>>(
        n, spatial, channels, map, xv, uv, yv, y2v);
    cuda_check_launch("bn_map_flat");
  }
}

// y = map(x, u) over an [N, C, S] array (planes = N * C); u and y2 may be null.
template <typename Map>
void bn_map(int64_t planes, int spatial, int channels, const Map& map, const float* x,
            const float* u, float* y, float* y2) {
  const int64_t n = planes * spatial;
  if (n == 0) return;
  // float4 needs whole vectors: within a plane (planes kernel) or over the array (flat).
  const int64_t unit = spatial >= kMinPlaneInner ? spatial : n;
  const bool vec4 = unit % 4 == 0 && aligned16(x) && aligned16(y) &&
                    (u == nullptr || aligned16(u)) && (y2 == nullptr || aligned16(y2));
  if (vec4)
    launch_map<Map, float4>(planes, spatial, channels, map, x, u, y, y2);
  else
    launch_map<Map, float>(planes, spatial, channels, map, x, u, y, y2);
}

}  // namespace

void BatchNormLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int channels = channels_, num = num_, spatial = spatial_;
  const int64_t planes = static_cast<int64_t>(num) * channels;
  gpu_stats_.Reshape({4, channels});
  float* mean = gpu_stats_.mutable_gpu_data();
  float* inv_std = mean + channels;
  float* shift = inv_std + channels;  // slot 2 (global statistics only)
  const float* x = bottom[0]->gpu_data();
  float* y = top[0]->mutable_gpu_data();  // may be x (in place)
  if (use_global_stats_) {
    CUDA_LAUNCH(bn_global_stats, channels, blobs_[0]->gpu_data(), blobs_[1]->gpu_data(),
                blobs_[2]->gpu_data(), eps_, mean, inv_std, shift);
    bn_map(planes, spatial, channels, BnAffine{inv_std, shift}, x, nullptr, y, nullptr);
    return;
  }
  const int64_t m = static_cast<int64_t>(num) * spatial;  // elements per channel
  LAYER_REQUIRE(m > 0,
                "cannot compute batch statistics of an empty bottom " << bottom[0]->shape_string());
  const float correction = m > 1 ? static_cast<float>(m) / static_cast<float>(m - 1) : 1.f;
  bn_batch_stats<<<channels, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      channels, num, spatial, x, moving_average_fraction_, correction, eps_,
      blobs_[0]->mutable_gpu_data(), blobs_[1]->mutable_gpu_data(), blobs_[2]->mutable_gpu_data(),
      mean, inv_std);
  cuda_check_launch("bn_batch_stats");
  bn_map(planes, spatial, channels, BnNormalize{mean, inv_std}, x, nullptr, y,
         x_norm_.mutable_gpu_data());
}

void BatchNormLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const int channels = channels_, num = num_, spatial = spatial_;
  const int64_t planes = static_cast<int64_t>(num) * channels;
  const float* dy = top[0]->gpu_diff();
  float* dx = bottom[0]->mutable_gpu_diff();  // may be dy itself (in place)
  float* mean_dy = gpu_stats_.mutable_gpu_data() + 2 * channels;
  float* mean_dyy = mean_dy + channels;
  const float* inv_std = gpu_stats_.gpu_data() + channels;
  if (use_global_stats_) {
    bn_map(planes, spatial, channels, BnAffine{inv_std, nullptr}, dy, nullptr, dx, nullptr);
    return;
  }
  const float* y = x_norm_.gpu_data();
  // Every channel's sums are complete before dx (possibly dy's memory) is written.
  bn_backward_sums<<<channels, kReduceThreads, 0, ::crema::cuda_stream()>>>(
      channels, num, spatial, dy, y, mean_dy, mean_dyy);
  cuda_check_launch("bn_backward_sums");
  bn_map(planes, spatial, channels, BnTrainGrad{mean_dy, mean_dyy, inv_std}, dy, y, dx, nullptr);
}

}  // namespace crema
