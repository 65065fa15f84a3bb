// Mixed-precision GPU math (src/mixed_precision.cuh): TF32 and 16-bit GEMMs through
// cublasGemmEx, and the fp32 <-> 16-bit conversions (elementwise, or NCHW <-> NHWC through
// tiled transposes) that apply the loss scale and watch for overflow.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "src/channel_epilogue.cuh"
#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"
#include "src/mixed_precision.cuh"

namespace crema {
namespace {

cublasHandle_t handle() {
  return static_cast<cublasHandle_t>(CudaCublasHandle());
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    CREMA_THROW("cuBLAS error " << static_cast<int>(status) << " in " << what);
}

cublasOperation_t op(Trans t) {
  return t == Trans::No ? CUBLAS_OP_N : CUBLAS_OP_T;
}

cudaDataType_t data_type_16(Precision precision) {
  CHECK(IsHalfPrecision(precision)) << "not a 16-bit precision: " << PrecisionName(precision);
  return precision == Precision::FP16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T (as in gpu_gemm).
void gemm_ex(cublasComputeType_t compute, cudaDataType_t ab_type, Trans trans_a, Trans trans_b,
             int M, int N, int K, float alpha, const void* A, const void* B, float beta, float* C,
             const char* what) {
  if (M <= 0 || N <= 0) return;
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  check_cublas(cublasGemmEx(handle(), op(trans_b), op(trans_a), N, M, K, &alpha, B, ab_type, ldb, A,
                            ab_type, lda, &beta, C, CUDA_R_32F, N, compute, CUBLAS_GEMM_DEFAULT),
               what);
}

template <typename T>
__device__ T round_to(float v);
template <>
__device__ __half round_to<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __nv_bfloat16 round_to<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
__device__ float widen(__half v) {
  return __half2float(v);
}
__device__ float widen(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__global__ void round_kernel(int64_t n, const float* x, float scale, T* y, float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {
    const T r = round_to<T>(scale * x[i]);
    bad |= !isfinite(widen(r));
    y[i] = r;
  }
  if (bad && overflow) *overflow = 1.f;  // every writer stores the same value
}

template <typename T>
__global__ void widen_kernel(int64_t n, const T* x, float scale, bool accumulate, float* y,
                             float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {
    const float v = widen(x[i]);
    bad |= !isfinite(v);
    y[i] = accumulate ? y[i] + scale * v : scale * v;
  }
  if (bad && overflow) *overflow = 1.f;
}

// Layout conversions between fp32 NCHW and 16-bit NHWC (formulas in mixed_precision.cuh).
// Each item n is a [C][S] matrix in NCHW and an [S][C] matrix in NHWC.
//
// Tiled kernels (C and S both at least kMinTiled): a block of 32 x kTileRows threads moves
// one kTile x kTile tile of an item: tile (blockIdx.x, blockIdx.y) covers s in
// [s0, s0 + kTile) and c in [c0, c0 + kTile), and blockIdx.z walks the items (stride
// gridDim.z). Phase 1 reads the tile with the lanes along the source's contiguous axis into
// shared memory; phase 2 writes it with the lanes along the destination's contiguous axis,
// so both global accesses are coalesced. On the 16-bit side each lane moves a pair of
// adjacent channels (one 4-byte access, when C is even and the array 4-byte aligned), so a
// warp moves 128 contiguous bytes on both sides. The tile has one padding column: the
// column accesses of the two phases (stride kTile + 1 floats) spread over the banks.
// On an H100 these 64 x 64 tiles with channel pairs beat 32 x 32 tiles of single values by
// 1.4-1.8x on ResNet-50's activations (batch 32).
//
// Gather kernels (C or S below kMinTiled, e.g. conv1's 3 input channels or the filters of
// 1x1 and 3x3 kernels, where most of a tile would be empty): one thread per destination
// element, in destination order (writes coalesced); the reads then stay within a few
// neighbouring cache lines of the source. There they beat the tiles by 3x (3x3 filters)
// to 30x (1x1 filters).
constexpr int kTile = 64, kTileRows = 8, kMinTiled = 32;

// Two adjacent 16-bit values, stored or loaded as one 4-byte access.
template <typename T>
struct alignas(2 * sizeof(T)) Pair16 {
  T lo, hi;
};

bool use_tiles(int channels, int64_t spatial) {
  return channels >= kMinTiled && spatial >= kMinTiled;
}

dim3 tile_grid(int64_t num, int channels, int64_t spatial) {
  const int64_t s_tiles = (spatial + kTile - 1) / kTile, c_tiles = (channels + kTile - 1) / kTile;
  CHECK(s_tiles <= INT32_MAX && c_tiles <= 65535)
      << "layout conversion too large: " << channels << " channels x " << spatial << " positions";
  return dim3(static_cast<unsigned>(s_tiles), static_cast<unsigned>(c_tiles),
              static_cast<unsigned>(std::min<int64_t>(num, 65535)));
}

// Channel pairs need an even C (every pair starts at an even element) and a 4-byte aligned
// 16-bit array.
bool use_pairs(int channels, const void* x16) {
  return channels % 2 == 0 && reinterpret_cast<uintptr_t>(x16) % 4 == 0;
}

// Writes one tile of a 16-bit NHWC item: y_item[s*C + c] = round16(scale * v(c, s)) for s in
// [s0, s0 + kTile) and c in [c0, c0 + kTile) (within the item), where v(c, s) is
// tile[c - c0][s - s0] when channel_rows, else tile[s - s0][c - c0]. Rows s go to
// threadIdx.y, and lane tx takes channels c0 + 2 tx and c0 + 2 tx + 1 (one 4-byte store when
// `pairs`). Returns whether a rounded value is not finite.
template <typename T>
__device__ bool store_tile_nhwc(const float (&tile)[kTile][kTile + 1], bool channel_rows,
                                int64_t s0, int c0, int channels, int64_t spatial, float scale,
                                T* y_item, bool pairs) {
  const int tx = threadIdx.x;
  bool bad = false;
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t s = s0 + r;
    const int c = c0 + 2 * tx;
    if (s >= spatial || c >= channels) continue;
    const T lo = round_to<T>(scale * (channel_rows ? tile[2 * tx][r] : tile[r][2 * tx]));
    bad |= !isfinite(widen(lo));
    T* out = y_item + s * channels + c;
    if (c + 1 >= channels) {
      out[0] = lo;
      continue;
    }
    const T hi = round_to<T>(scale * (channel_rows ? tile[2 * tx + 1][r] : tile[r][2 * tx + 1]));
    bad |= !isfinite(widen(hi));
    if (pairs) {
      *reinterpret_cast<Pair16<T>*>(out) = Pair16<T>{lo, hi};
    } else {
      out[0] = lo;
      out[1] = hi;
    }
  }
  return bad;
}

// fp32 x [num][C][S] -> 16-bit y [num][S][C]:
//   y[(n*S + s)*C + c] = round16(scale * x[(n*C + c)*S + s]).
// tile[c - c0][s - s0] holds x; lane tx writes channels c0 + 2 tx and c0 + 2 tx + 1.
template <typename T>
__global__ void round_nhwc_tiled_kernel(int64_t num, int channels, int64_t spatial, const float* x,
                                        float scale, T* y, bool pairs, float* overflow) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int c0 = blockIdx.y * kTile;
  const int tx = threadIdx.x;
  bool bad = false;
  for (int64_t n = blockIdx.z; n < num; n += gridDim.z) {
    const float* xn = x + n * channels * spatial;
    T* yn = y + n * channels * spatial;
    for (int r = threadIdx.y; r < kTile; r += kTileRows) {  // rows c, lanes along s
      const int c = c0 + r;
      if (c >= channels) break;
      for (int j = tx; j < kTile; j += 32)
        if (s0 + j < spatial) tile[r][j] = xn[c * spatial + s0 + j];
    }
    __syncthreads();
    bad |=
        store_tile_nhwc(tile, /*channel_rows=*/true, s0, c0, channels, spatial, scale, yn, pairs);
    __syncthreads();  // the tile is refilled for the next item
  }
  if (bad && overflow) *overflow = 1.f;
}

// 16-bit x [num][S][C] -> fp32 y [num][C][S]: with v = widen(x[(n*S + s)*C + c]) and
// i = (n*C + c)*S + s,  y[i] = epilogue of (accumulate ? y[i] + scale * v : scale * v) at (c, i)
// (src/channel_epilogue.hpp; a bias alone is the epilogue's shift), and the epilogue's
// 16-bit copy (T values) of what the next layers read: NCHW, written beside y[i]; NHWC, put
// back into the tile and written by a third phase in the order of the first.
// tile[s - s0][c - c0] holds v; lane tx reads channels c0 + 2 tx and c0 + 2 tx + 1.
// copy_pairs: the NHWC copy takes channel pairs (as `pairs` for x).
template <typename T>
__global__ void widen_nchw_tiled_kernel(int64_t num, int channels, int64_t spatial, const T* x,
                                        float scale, bool accumulate, ChannelEpilogue epilogue,
                                        float* y, bool pairs, bool copy_pairs, float* overflow) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int c0 = blockIdx.y * kTile;
  const int tx = threadIdx.x;
  T* copy = static_cast<T*>(epilogue.copy16);
  const bool copy_nchw = copy && !epilogue.copy_nhwc, copy_nhwc = copy && epilogue.copy_nhwc;
  bool bad = false;
  for (int64_t n = blockIdx.z; n < num; n += gridDim.z) {
    const T* xn = x + n * channels * spatial;
    for (int r = threadIdx.y; r < kTile; r += kTileRows) {  // rows s, lanes along c (pairs)
      const int64_t s = s0 + r;
      const int c = c0 + 2 * tx;
      if (s >= spatial || c >= channels) continue;
      const T* in = xn + s * channels + c;
      float lo, hi = 0.f;
      if (pairs) {  // c + 1 < channels: channels is even
        const Pair16<T> p = *reinterpret_cast<const Pair16<T>*>(in);
        lo = widen(p.lo);
        hi = widen(p.hi);
      } else {
        lo = widen(in[0]);
        if (c + 1 < channels) hi = widen(in[1]);
      }
      bad |= !isfinite(lo) || !isfinite(hi);
      tile[r][2 * tx] = lo;
      tile[r][2 * tx + 1] = hi;
    }
    __syncthreads();
    for (int r = threadIdx.y; r < kTile; r += kTileRows) {  // rows c, lanes along s
      const int c = c0 + r;
      if (c >= channels) break;
      for (int j = tx; j < kTile; j += 32) {
        if (s0 + j >= spatial) break;
        const int64_t i = (n * channels + c) * spatial + s0 + j;
        const float v = tile[j][r];
        float seen;  // what the next layers read
        y[i] = apply_epilogue(epilogue, c, i, accumulate ? y[i] + scale * v : scale * v, &seen);
        if (copy_nchw) {
          const T rounded = round_to<T>(seen);
          bad |= !isfinite(widen(rounded));
          copy[i] = rounded;
        }
        tile[j][r] = seen;  // read by this thread only: no race
      }
    }
    if (copy_nhwc) {
      __syncthreads();
      bad |= store_tile_nhwc(tile, /*channel_rows=*/false, s0, c0, channels, spatial, 1.f,
                             copy + n * channels * spatial, copy_pairs);
    }
    __syncthreads();
  }
  if (bad && overflow) *overflow = 1.f;
}

// The same maps, one thread per destination element i (n = num * C * S elements).
template <typename T>
__global__ void round_nhwc_gather_kernel(int64_t n, int channels, int64_t spatial, const float* x,
                                         float scale, T* y, float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {  // i = (item*S + s)*C + c
    const int c = static_cast<int>(i % channels);
    const int64_t item_s = i / channels;
    const int64_t s = item_s % spatial, item = item_s / spatial;
    const T r = round_to<T>(scale * x[(item * channels + c) * spatial + s]);
    bad |= !isfinite(widen(r));
    y[i] = r;
  }
  if (bad && overflow) *overflow = 1.f;
}

template <typename T>
__global__ void widen_nchw_gather_kernel(int64_t n, int channels, int64_t spatial, const T* x,
                                         float scale, bool accumulate, ChannelEpilogue epilogue,
                                         float* y, float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(i, n) {  // i = (item*C + c)*S + s
    const int64_t s = i % spatial, item_c = i / spatial;
    const int c = static_cast<int>(item_c % channels);
    const int64_t item = item_c / channels;
    const int64_t nhwc = (item * spatial + s) * channels + c;
    const float v = widen(x[nhwc]);
    bad |= !isfinite(v);
    float seen;  // what the next layers read
    y[i] = apply_epilogue(epilogue, c, i, accumulate ? y[i] + scale * v : scale * v, &seen);
    if (epilogue.copy16) {
      const T rounded = round_to<T>(seen);
      bad |= !isfinite(widen(rounded));
      static_cast<T*>(epilogue.copy16)[epilogue.copy_nhwc ? nhwc : i] = rounded;
    }
  }
  if (bad && overflow) *overflow = 1.f;
}

// The epilogue in place on fp32 y [num][C][S] holding raw convolution values (the 1x1 GEMM
// route's output), with its 16-bit copy NHWC: copy[(n*S + s)*C + c] = round16(seen) where
// seen is what the next layers read at i = (n*C + c)*S + s (apply_epilogue).
// tile[c - c0][s - s0] holds seen; the copy is written as in round_nhwc_tiled_kernel.
template <typename T>
__global__ void epilogue_nhwc_copy_tiled_kernel(int64_t num, int channels, int64_t spatial,
                                                ChannelEpilogue epilogue, float* y, bool copy_pairs,
                                                float* overflow) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int c0 = blockIdx.y * kTile;
  const int tx = threadIdx.x;
  T* copy = static_cast<T*>(epilogue.copy16);
  bool bad = false;
  for (int64_t n = blockIdx.z; n < num; n += gridDim.z) {
    for (int r = threadIdx.y; r < kTile; r += kTileRows) {  // rows c, lanes along s
      const int c = c0 + r;
      if (c >= channels) break;
      for (int j = tx; j < kTile; j += 32) {
        if (s0 + j >= spatial) break;
        const int64_t i = (n * channels + c) * spatial + s0 + j;
        float seen;
        y[i] = apply_epilogue(epilogue, c, i, y[i], &seen);
        tile[r][j] = seen;
      }
    }
    __syncthreads();
    bad |= store_tile_nhwc(tile, /*channel_rows=*/true, s0, c0, channels, spatial, 1.f,
                           copy + n * channels * spatial, copy_pairs);
    __syncthreads();
  }
  if (bad && overflow) *overflow = 1.f;
}

// The same, one thread per copy element (n = num * C * S), in the copy's order.
template <typename T>
__global__ void epilogue_nhwc_copy_gather_kernel(int64_t n, int channels, int64_t spatial,
                                                 ChannelEpilogue epilogue, float* y,
                                                 float* overflow) {
  bool bad = false;
  CUDA_KERNEL_LOOP(k, n) {  // k = (item*S + s)*C + c
    const int c = static_cast<int>(k % channels);
    const int64_t item_s = k / channels;
    const int64_t s = item_s % spatial, item = item_s / spatial;
    const int64_t i = (item * channels + c) * spatial + s;
    float seen;
    y[i] = apply_epilogue(epilogue, c, i, y[i], &seen);
    const T rounded = round_to<T>(seen);
    bad |= !isfinite(widen(rounded));
    static_cast<T*>(epilogue.copy16)[k] = rounded;
  }
  if (bad && overflow) *overflow = 1.f;
}

template <typename T>
void epilogue_nhwc_copy(int64_t num, int channels, int64_t spatial, const ChannelEpilogue& epilogue,
                        float* y, float* overflow) {
  if (!use_tiles(channels, spatial)) {
    CUDA_LAUNCH(epilogue_nhwc_copy_gather_kernel<T>, num * channels * spatial, channels, spatial,
                epilogue, y, overflow);
    return;
  }
  epilogue_nhwc_copy_tiled_kernel<T>
      <<<tile_grid(num, channels, spatial), dim3(32, kTileRows), 0, ::crema::cuda_stream()>>>(
          num, channels, spatial, epilogue, y, use_pairs(channels, epilogue.copy16), overflow);
  cuda_check_launch("epilogue_nhwc_copy_tiled_kernel");
}

// Tiled or gathered (see above), for one 16-bit type.
template <typename T>
void round_nhwc(int64_t num, int channels, int64_t spatial, const float* x, float scale, T* y,
                float* overflow) {
  if (!use_tiles(channels, spatial)) {
    CUDA_LAUNCH(round_nhwc_gather_kernel<T>, num * channels * spatial, channels, spatial, x, scale,
                y, overflow);
    return;
  }
  round_nhwc_tiled_kernel<T>
      <<<tile_grid(num, channels, spatial), dim3(32, kTileRows), 0, ::crema::cuda_stream()>>>(
          num, channels, spatial, x, scale, y, use_pairs(channels, y), overflow);
  cuda_check_launch("round_nhwc_tiled_kernel");
}

template <typename T>
void widen_nchw(int64_t num, int channels, int64_t spatial, const T* x, float scale,
                bool accumulate, const ChannelEpilogue& epilogue, float* y, float* overflow) {
  if (!use_tiles(channels, spatial)) {
    CUDA_LAUNCH(widen_nchw_gather_kernel<T>, num * channels * spatial, channels, spatial, x, scale,
                accumulate, epilogue, y, overflow);
    return;
  }
  widen_nchw_tiled_kernel<T>
      <<<tile_grid(num, channels, spatial), dim3(32, kTileRows), 0, ::crema::cuda_stream()>>>(
          num, channels, spatial, x, scale, accumulate, epilogue, y, use_pairs(channels, x),
          use_pairs(channels, epilogue.copy16), overflow);
  cuda_check_launch("widen_nchw_tiled_kernel");
}

// Both 16-bit types.
void widen_16_nchw(Precision precision, int64_t num, int channels, int64_t spatial, const void* x16,
                   float scale, bool accumulate, const ChannelEpilogue& epilogue, float* y,
                   float* overflow) {
  if (num <= 0 || channels <= 0 || spatial <= 0) return;
  if (data_type_16(precision) == CUDA_R_16F)
    widen_nchw(num, channels, spatial, static_cast<const __half*>(x16), scale, accumulate, epilogue,
               y, overflow);
  else
    widen_nchw(num, channels, spatial, static_cast<const __nv_bfloat16*>(x16), scale, accumulate,
               epilogue, y, overflow);
}

}  // namespace

void gpu_gemm_math(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                   float alpha, const float* A, const float* B, float beta, float* C) {
  switch (precision) {
    case Precision::FP32:
      gpu_gemm(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
      return;
    case Precision::TF32:
      gemm_ex(CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, trans_a, trans_b, M, N, K, alpha, A, B,
              beta, C, "cublasGemmEx (TF32)");
      return;
    default:
      LOG(FATAL) << "gpu_gemm_math called with " << PrecisionName(precision);
  }
}

void gpu_gemm_16(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                 float alpha, const void* A, const void* B, float beta, float* C) {
  gemm_ex(CUBLAS_COMPUTE_32F, data_type_16(precision), trans_a, trans_b, M, N, K, alpha, A, B, beta,
          C, "cublasGemmEx (16-bit inputs)");
}

void gpu_gemm_batched(Precision precision, Trans trans_a, Trans trans_b, int M, int N, int K,
                      float alpha, const void* A, int64_t stride_a, const void* B, int64_t stride_b,
                      float beta, float* C, int64_t stride_c, int batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  const cublasComputeType_t compute =
      precision == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const cudaDataType_t ab_type = IsHalfPrecision(precision) ? data_type_16(precision) : CUDA_R_32F;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T (as in gemm_ex).
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  check_cublas(
      cublasGemmStridedBatchedEx(handle(), op(trans_b), op(trans_a), N, M, K, &alpha, B, ab_type,
                                 ldb, stride_b, A, ab_type, lda, stride_a, &beta, C, CUDA_R_32F, N,
                                 stride_c, batch, compute, CUBLAS_GEMM_DEFAULT),
      "cublasGemmStridedBatchedEx");
}

void gpu_round_16(Precision precision, int64_t n, const float* x, float scale, void* y16,
                  float* overflow) {
  if (data_type_16(precision) == CUDA_R_16F)
    CUDA_LAUNCH(round_kernel<__half>, n, x, scale, static_cast<__half*>(y16), overflow);
  else
    CUDA_LAUNCH(round_kernel<__nv_bfloat16>, n, x, scale, static_cast<__nv_bfloat16*>(y16),
                overflow);
}

void gpu_widen_16(Precision precision, int64_t n, const void* x16, float scale, bool accumulate,
                  float* y, float* overflow) {
  if (data_type_16(precision) == CUDA_R_16F)
    CUDA_LAUNCH(widen_kernel<__half>, n, static_cast<const __half*>(x16), scale, accumulate, y,
                overflow);
  else
    CUDA_LAUNCH(widen_kernel<__nv_bfloat16>, n, static_cast<const __nv_bfloat16*>(x16), scale,
                accumulate, y, overflow);
}

void gpu_round_16_nhwc(Precision precision, int64_t num, int channels, int64_t spatial,
                       const float* x, float scale, void* y16, float* overflow) {
  if (num <= 0 || channels <= 0 || spatial <= 0) return;
  if (data_type_16(precision) == CUDA_R_16F)
    round_nhwc(num, channels, spatial, x, scale, static_cast<__half*>(y16), overflow);
  else
    round_nhwc(num, channels, spatial, x, scale, static_cast<__nv_bfloat16*>(y16), overflow);
}

void gpu_channel_epilogue_nhwc_copy(Precision precision, int64_t num, int channels, int64_t spatial,
                                    const ChannelEpilogue& epilogue, float* y) {
  if (num <= 0 || channels <= 0 || spatial <= 0) return;
  CHECK(epilogue.copy16 && epilogue.copy_nhwc) << "gpu_channel_epilogue_nhwc_copy: no NHWC copy";
  if (data_type_16(precision) == CUDA_R_16F)
    epilogue_nhwc_copy<__half>(num, channels, spatial, epilogue, y, epilogue.copy_overflow);
  else
    epilogue_nhwc_copy<__nv_bfloat16>(num, channels, spatial, epilogue, y, epilogue.copy_overflow);
}

void gpu_widen_16_nchw(Precision precision, int64_t num, int channels, int64_t spatial,
                       const void* x16, float scale, bool accumulate, const float* bias, float* y,
                       float* overflow) {
  ChannelEpilogue epilogue;
  epilogue.shift = bias;
  widen_16_nchw(precision, num, channels, spatial, x16, scale, accumulate, epilogue, y, overflow);
}

void gpu_widen_16_nchw_epilogue(Precision precision, int64_t num, int channels, int64_t spatial,
                                const void* x16, const ChannelEpilogue& epilogue, float* y,
                                float* overflow) {
  widen_16_nchw(precision, num, channels, spatial, x16, 1.f, false, epilogue, y, overflow);
}

}  // namespace crema
