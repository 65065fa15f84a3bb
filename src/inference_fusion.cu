// The GPU side of the fused chains (src/inference_fusion.hpp): the kernels of BatchNorm
// [+ Scale] [+ ReLU] and Eltwise SUM + ReLU, and a convolution's epilogue coefficients.
#include <cstdint>

#include "crema/layer.hpp"
#include "layers/convolution.hpp"
#include "src/channel_epilogue.hpp"
#include "src/cuda_kernel.cuh"
#include "src/inference_fusion.hpp"

namespace crema {
namespace {

// In place on x viewed as [planes = N * C][inner]: block row blockIdx.y walks the planes, the
// threads of a row stride over one plane's `inner` values (as float4 when vec4). Each block
// derives its channel's coefficients itself: no separate launch, no per-element division.
//   y = act((x - mean_c) * a_c + beta_c),  a_c = gamma_c / sqrt(var_c + eps)
__global__ void affine_chain_kernel(int64_t planes, int channels, int inner, bool vec4,
                                    const float* __restrict__ mean_sum,
                                    const float* __restrict__ var_sum,
                                    const float* __restrict__ factor, float eps,
                                    const float* __restrict__ gamma, const float* __restrict__ beta,
                                    bool relu, float slope, float* x) {
  const float stored = factor[0];
  const float s = stored == 0.f ? 0.f : 1.f / stored;
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const int c = static_cast<int>(p % channels);
    const float mean = s * mean_sum[c];
    const float a = (gamma ? gamma[c] : 1.f) / sqrtf(s * var_sum[c] + eps);
    const float b = beta ? beta[c] : 0.f;
    auto f = [=](float v) {
      v = (v - mean) * a + b;
      return relu ? relu_of(v, slope) : v;
    };
    float* row = x + p * inner;
    const int first = blockIdx.x * blockDim.x + threadIdx.x, step = blockDim.x * gridDim.x;
    if (vec4) {
      float4* row4 = reinterpret_cast<float4*>(row);
      for (int i = first; i < inner / 4; i += step) {
        float4 v = row4[i];
        v.x = f(v.x);
        v.y = f(v.y);
        v.z = f(v.z);
        v.w = f(v.w);
        row4[i] = v;
      }
    } else {
      for (int i = first; i < inner; i += step) row[i] = f(row[i]);
    }
  }
}

// Up to 4 summands, passed by value.
struct Summands {
  const float* x[4];
  float c[4];
  int n;
};

// y = act(c0 x0 + c1 x1 + ...) over `count` values (count / 4 float4 groups when vec4), for
// kInputs summands (a template argument: the loops over them have constant bounds).
template <int kInputs>
__global__ void sum_relu_kernel(int64_t count, bool vec4, Summands s, float slope, float* y) {
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  if (vec4) {
    for (int64_t i = first; i < count / 4; i += step) {
      float4 v = reinterpret_cast<const float4*>(s.x[0])[i];
      v = make_float4(s.c[0] * v.x, s.c[0] * v.y, s.c[0] * v.z, s.c[0] * v.w);
      for (int k = 1; k < kInputs; ++k) {
        const float4 u = reinterpret_cast<const float4*>(s.x[k])[i];
        v = make_float4(v.x + s.c[k] * u.x, v.y + s.c[k] * u.y, v.z + s.c[k] * u.z,
                        v.w + s.c[k] * u.w);
      }
      reinterpret_cast<float4*>(y)[i] = make_float4(relu_of(v.x, slope), relu_of(v.y, slope),
                                                    relu_of(v.z, slope), relu_of(v.w, slope));
    }
  } else {
    for (int64_t i = first; i < count; i += step) {
      float v = s.c[0] * s.x[0][i];
      for (int k = 1; k < kInputs; ++k) v += s.c[k] * s.x[k][i];
      y[i] = relu_of(v, slope);
    }
  }
}

void ForwardSumReluGpu(const FusedChain& chain, const std::vector<Blob*>& bottoms, Blob* top) {
  const int64_t count = top->count();
  if (count == 0) return;
  Summands s{};
  s.n = static_cast<int>(bottoms.size());
  bool vec4 = count % 4 == 0;
  for (int k = 0; k < s.n; ++k) {
    s.x[k] = bottoms[k]->gpu_data();
    s.c[k] = chain.coefficients[k];
    vec4 = vec4 && aligned16(s.x[k]);
  }
  float* y = top->mutable_gpu_data();
  vec4 = vec4 && aligned16(y);
  const int64_t work = vec4 ? count / 4 : count;
  const int blocks = cuda_blocks(work);
  const float slope = chain.negative_slope;
  switch (s.n) {
    case 2:
      sum_relu_kernel<2>
          <<<blocks, kCudaThreads, 0, ::crema::cuda_stream()>>>(count, vec4, s, slope, y);
      break;
    case 3:
      sum_relu_kernel<3>
          <<<blocks, kCudaThreads, 0, ::crema::cuda_stream()>>>(count, vec4, s, slope, y);
      break;
    default:
      sum_relu_kernel<4>
          <<<blocks, kCudaThreads, 0, ::crema::cuda_stream()>>>(count, vec4, s, slope, y);
      break;
  }
  cuda_check_launch("sum_relu_kernel");
}

// A convolution chain's a_c and b_c (inference_fusion.hpp), one thread per channel:
//   a_c = gamma_c / sqrt(s var_sum_c + eps),  b_c = (bias_c - s mean_sum_c) a_c + beta_c
// with s = 1 / factor (0 when factor is 0); absent gamma, beta, bias read as 1, 0, 0.
__global__ void conv_chain_coefficients_kernel(int channels, const float* __restrict__ bias,
                                               const float* __restrict__ mean_sum,
                                               const float* __restrict__ var_sum,
                                               const float* __restrict__ factor, float eps,
                                               const float* __restrict__ gamma,
                                               const float* __restrict__ beta, float* a, float* b) {
  const float stored = factor[0];
  const float s = stored == 0.f ? 0.f : 1.f / stored;
  CUDA_KERNEL_LOOP(c, channels) {
    const float scale = (gamma ? gamma[c] : 1.f) / sqrtf(s * var_sum[c] + eps);
    a[c] = scale;
    b[c] = ((bias ? bias[c] : 0.f) - s * mean_sum[c]) * scale + (beta ? beta[c] : 0.f);
  }
}

void ForwardConvolutionChainGpu(const FusedChain& chain, const Blob& bottom) {
  auto* conv = static_cast<ConvolutionLayer*>(chain.convolution);
  const float* bias = conv->blobs().size() > 1 ? conv->blobs()[1]->gpu_data() : nullptr;
  ChannelEpilogue epilogue;
  epilogue.shift = bias;
  if (chain.batch_norm) {
    const int channels = chain.conv_top->shape(1);
    Blob& holder = *chain.epilogue_scratch;
    if (holder.count() < 2 * channels) holder.Reshape(std::vector<int>{2 * channels});
    float* a = holder.mutable_gpu_data();
    const auto& bn = chain.batch_norm->blobs();
    const auto* scale = chain.scale;
    CUDA_LAUNCH(conv_chain_coefficients_kernel, channels, bias, bn[0]->gpu_data(),
                bn[1]->gpu_data(), bn[2]->gpu_data(), chain.eps,
                scale ? scale->blobs()[0]->gpu_data() : nullptr,
                scale && scale->blobs().size() > 1 ? scale->blobs()[1]->gpu_data() : nullptr, a,
                a + channels);
    epilogue.scale = a;
    epilogue.shift = a + channels;
  }
  epilogue.relu = chain.relu;
  epilogue.slope = chain.negative_slope;
  if (chain.sum) {
    epilogue.residual = chain.residual->gpu_data();
    epilogue.coeff_y = chain.coeff_x;
    epilogue.coeff_residual = chain.coeff_residual;
    epilogue.sum = chain.sum->mutable_gpu_data();
  }
  conv->ForwardWithEpilogue(bottom, chain.conv_top, epilogue,
                            chain.sum ? chain.sum : chain.conv_top);
}

}  // namespace

void ForwardFusedChainGpu(const FusedChain& chain, const std::vector<Blob*>& bottoms, Blob* top) {
  if (chain.kind == FusedChain::Kind::kSumRelu) {
    ForwardSumReluGpu(chain, bottoms, top);
    return;
  }
  if (chain.kind == FusedChain::Kind::kConvolution) {
    ForwardConvolutionChainGpu(chain, *bottoms[0]);
    return;
  }
  Blob* blob = top;
  if (blob->count() == 0) return;
  const int channels = blob->shape(1);
  const int64_t planes = static_cast<int64_t>(blob->shape(0)) * channels;
  const int inner = static_cast<int>(blob->count() / planes);
  float* x = blob->mutable_gpu_data();
  const bool vec4 = inner % 4 == 0 && aligned16(x);
  const int work = vec4 ? inner / 4 : inner;
  const int threads = work >= 256 ? 256 : ((work + 31) / 32) * 32;
  const int per_plane = (work + threads - 1) / threads;
  const dim3 grid(per_plane < 64 ? per_plane : 64,
                  planes < 65535 ? static_cast<int>(planes) : 65535);
  const auto& bn = chain.batch_norm->blobs();
  const float* gamma = chain.scale ? chain.scale->blobs()[0]->gpu_data() : nullptr;
  const float* beta = chain.scale && chain.scale->blobs().size() > 1
                          ? chain.scale->blobs()[1]->gpu_data()
                          : nullptr;
  affine_chain_kernel<<<grid, threads, 0, ::crema::cuda_stream()>>>(
      planes, channels, inner, vec4, bn[0]->gpu_data(), bn[1]->gpu_data(), bn[2]->gpu_data(),
      chain.eps, gamma, beta, chain.relu, chain.negative_slope, x);
  cuda_check_launch("affine_chain_kernel");
}

}  // namespace crema
