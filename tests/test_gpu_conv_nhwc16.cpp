// FP16/BF16 convolution through cuDNN's channels-last (NHWC) path (needs a device; skipped
// otherwise). With 1 or 2 spatial axes ConvolutionLayer keeps its 16-bit copies NHWC
// (layers/convolution.cu) and converts them with the tiled transposes of
// src/mixed_precision.cuh.
//   - The layout-changing conversions agree with the elementwise ones: the NHWC 16-bit
//     array holds, bit for bit, the plain rounding transposed; widening back (scale,
//     accumulate, per-channel bias) gives what gpu_widen_16 plus the bias gives; the
//     overflow flag is raised by a non-finite value and only then. The shapes reach the
//     tiled kernels (pairs of channels or single ones, partial tiles) and the gather ones.
//   - The Convolution layer in FP16 and BF16 against the fp32 CPU path, forward and
//     backward (x, W and b gradients), as tests/test_gpu_precision.cpp measures it: relative
//     L2 error below 3e-3 (FP16) or 2e-2 (BF16). Geometries: channel counts and H*W not
//     multiples of 32, stride 2, padding, dilation, 1x1 and 3x3 kernels, groups and the
//     depthwise case, bias on and off, two bottoms sharing the weights, 1-D, and 3-D (which
//     stays NCHW).
//   - FP16 gradients are computed with the loss scale (1, 128, 1024) and unscaled on the way
//     back; a scaled gradient too large for fp16 raises the overflow flag.
//   - 1x1 convolutions (stride 1, no padding, one group) as cuBLAS GEMMs on the NCHW blobs
//     (CREMA_CONV_1X1_GEMM=1) and through cuDNN (=0), in FP32, TF32, FP16 and BF16, against
//     the CPU with the same tolerances (FP32 1e-4); the loss scale cancels there too; the
//     route is taken exactly for the eligible geometries.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "layers/convolution.hpp"
#include "tests/gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "src/mixed_precision.cuh"
#endif

namespace crema {
namespace {
using namespace gputest;

#ifdef CREMA_WITH_CUDA

std::vector<uint16_t> Bits16(const Blob& holder, int64_t n) {
  std::vector<uint16_t> bits(n);
  std::memcpy(bits.data(), holder.cpu_data(), n * sizeof(uint16_t));
  return bits;
}

float Flag(const Blob& flag) {
  return flag.cpu_data()[0];
}

void ClearFlag(Blob* flag) {
  flag->mutable_cpu_data()[0] = 0.f;
}

// gpu_round_16_nhwc / gpu_widen_16_nchw against gpu_round_16 / gpu_widen_16 on [num][C][S].
void CheckConversions(Precision precision, int num, int C, int S) {
  SCOPED_TRACE(std::string(PrecisionName(precision)) + " " + std::to_string(num) + " x " +
               std::to_string(C) + " x " + std::to_string(S));
  const int64_t n = int64_t{num} * C * S;
  Blob x({num, C, S}), bias({C}), y0({num, C, S}), flag({1});
  testing::FillGaussian(&x, 3.f, 21);
  testing::FillGaussian(&bias, 1.f, 22);
  testing::FillGaussian(&y0, 1.f, 23);
  ClearFlag(&flag);

  // NCHW -> NHWC16 (scale 4) is the plain rounding, transposed.
  Blob nhwc16, plain16;
  void* a16 = gpu_buffer_16(&nhwc16, n);
  void* b16 = gpu_buffer_16(&plain16, n);
  gpu_round_16_nhwc(precision, num, C, S, x.gpu_data(), 4.f, a16, flag.mutable_gpu_data());
  gpu_round_16(precision, n, x.gpu_data(), 4.f, b16, flag.mutable_gpu_data());
  const std::vector<uint16_t> a = Bits16(nhwc16, n), b = Bits16(plain16, n);
  int mismatches = 0;
  for (int i = 0; i < num; ++i)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s)
        mismatches += a[(int64_t{i} * S + s) * C + c] != b[(int64_t{i} * C + c) * S + s];
  EXPECT_EQ(mismatches, 0) << "NHWC 16-bit values differ from the transposed plain rounding";

  // NHWC16 -> NCHW with scale 1/4, accumulate and bias: y0 + widen / 4 + b[c].
  Blob fused, plain;
  fused.CopyFrom(y0, false, true);
  plain.CopyFrom(y0, false, true);
  gpu_widen_16_nchw(precision, num, C, S, a16, 0.25f, true, bias.gpu_data(),
                    fused.mutable_gpu_data(), flag.mutable_gpu_data());
  gpu_widen_16(precision, n, b16, 0.25f, true, plain.mutable_gpu_data(), flag.mutable_gpu_data());
  const float* f = fused.cpu_data();
  const float* p = plain.cpu_data();
  mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += f[i] != p[i] + bias.cpu_data()[(i / S) % C];
  EXPECT_EQ(mismatches, 0) << "fused widen + bias differs from gpu_widen_16 + bias";

  // The round trip NCHW -> NHWC16 -> NCHW (scale 1, overwrite, no bias) is plain rounding.
  gpu_round_16_nhwc(precision, num, C, S, x.gpu_data(), 1.f, a16, flag.mutable_gpu_data());
  gpu_round_16(precision, n, x.gpu_data(), 1.f, b16, flag.mutable_gpu_data());
  gpu_widen_16_nchw(precision, num, C, S, a16, 1.f, false, nullptr, fused.mutable_gpu_data(),
                    flag.mutable_gpu_data());
  gpu_widen_16(precision, n, b16, 1.f, false, plain.mutable_gpu_data(), flag.mutable_gpu_data());
  mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += fused.cpu_data()[i] != plain.cpu_data()[i];
  EXPECT_EQ(mismatches, 0) << "round trip differs from plain rounding";
  EXPECT_EQ(Flag(flag), 0.f) << "overflow flag raised by finite values";
}

// The shapes reach both kernels of each conversion (src/mixed_precision.cu): 64 x 64 tiles
// when C and S are both at least 32, with channel pairs when C is even (70) and single
// channels when it is odd (37), several tiles and partial ones; the gather kernels when C
// (5) or S (9, 1) is small.
TEST_F(GpuLayers, ConvNhwc16ConversionKernelsMatchElementwise) {
  REQUIRE_GPU();
  for (Precision precision : {Precision::FP16, Precision::BF16}) {
    CheckConversions(precision, 3, 37, 45);
    CheckConversions(precision, 2, 70, 130);
    CheckConversions(precision, 3, 5, 45);
    CheckConversions(precision, 4, 40, 9);
    CheckConversions(precision, 6, 33, 1);
  }
}

// C = 34, S = 40: the tiled kernels (C = 3: the gather kernels).
void CheckOverflow(int C) {
  SCOPED_TRACE("C = " + std::to_string(C));
  const int num = 2, S = 40;
  const int64_t n = int64_t{num} * C * S;
  Blob x({num, C, S}), y({num, C, S}), flag({1}), x16;
  testing::FillGaussian(&x, 1.f, 31);
  void* h16 = gpu_buffer_16(&x16, n);
  // The last value (in a partial tile), 1e5, above fp16's 65504.
  x.mutable_cpu_data()[n - 1] = 1e5f;
  ClearFlag(&flag);
  gpu_round_16_nhwc(Precision::FP16, num, C, S, x.gpu_data(), 1.f, h16, flag.mutable_gpu_data());
  EXPECT_EQ(Flag(flag), 1.f) << "round: 1e5 is inf in fp16";
  ClearFlag(&flag);
  gpu_widen_16_nchw(Precision::FP16, num, C, S, h16, 1.f, false, nullptr, y.mutable_gpu_data(),
                    flag.mutable_gpu_data());
  EXPECT_EQ(Flag(flag), 1.f) << "widen: the inf is seen";
  EXPECT_TRUE(std::isinf(y.cpu_data()[n - 1]));
  // BF16 holds 1e5; a scale that overflows fp32 gives inf there too.
  ClearFlag(&flag);
  gpu_round_16_nhwc(Precision::BF16, num, C, S, x.gpu_data(), 1.f, h16, flag.mutable_gpu_data());
  EXPECT_EQ(Flag(flag), 0.f) << "bf16 holds 1e5";
  gpu_round_16_nhwc(Precision::BF16, num, C, S, x.gpu_data(), 1e36f, h16, flag.mutable_gpu_data());
  EXPECT_EQ(Flag(flag), 1.f) << "bf16: 1e41 is inf";
}

TEST_F(GpuLayers, ConvNhwc16ConversionKernelsRaiseTheOverflowFlag) {
  REQUIRE_GPU();
  CheckOverflow(34);
  CheckOverflow(3);
}

#endif  // CREMA_WITH_CUDA

double RelativeError(const Blob& cpu, const Blob& gpu, bool diff) {
  const float* a = diff ? cpu.cpu_diff() : cpu.cpu_data();
  const float* b = diff ? gpu.cpu_diff() : gpu.cpu_data();
  double num = 0, den = 0;
  for (int i = 0; i < cpu.count(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// One Convolution layer (convolution_param `param`) with `bottoms` bottom/top pairs of
// `shape`, run forward and backward in fp32 on the CPU and in `precision` on the GPU from
// the same inputs, parameters and top gradients; every top, bottom gradient and parameter
// gradient within `tolerance` (relative L2). Returns the GPU layer's parameter gradients.
std::vector<std::vector<float>> CompareConv(const std::string& param, const std::vector<int>& shape,
                                            int bottoms, Precision precision, double tolerance,
                                            float loss_scale = 128.f) {
  const std::string text = "name: 'c' type: 'Convolution' convolution_param { " + param +
                           " weight_filler { type: 'gaussian' std: 0.2 } "
                           "bias_filler { type: 'gaussian' } }";
  const std::string what = param + " " + PrecisionName(precision);
  struct Run {
    std::shared_ptr<Layer> layer;
    std::vector<std::unique_ptr<Blob>> bottom_blobs, top_blobs;
    BlobVec bottom, top;
  } runs[2];
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    r.layer = MakeLayer(text);
    if (k == 1) {
      auto mixed = std::make_shared<MixedPrecision>();
      mixed->precision = precision;
      mixed->scaler = LossScaler(loss_scale);
      r.layer->set_mixed_precision(mixed);
    }
    for (int b = 0; b < bottoms; ++b) {
      r.bottom_blobs.emplace_back(new Blob(shape));
      FillBlob(r.bottom_blobs.back().get(), Gaussian(), 5 + b);
      r.bottom.push_back(r.bottom_blobs.back().get());
      r.top_blobs.emplace_back(new Blob());
      r.top.push_back(r.top_blobs.back().get());
    }
    r.layer->SetUp(r.bottom, r.top);
  }
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    runs[1].layer->blobs()[p]->CopyFrom(*runs[0].layer->blobs()[p]);
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    r.layer->Forward(r.bottom, r.top);
    Context::reseed(99, 0);
    for (Blob* t : r.top) cpu_rng_gaussian(t->count(), 0.f, 1.f, t->mutable_cpu_diff());
    for (auto& p : r.layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    r.layer->Backward(r.top, std::vector<bool>(bottoms, true), r.bottom);
  }
  Context::set_mode(Mode::CPU);
  for (int b = 0; b < bottoms; ++b) {
    EXPECT_LT(RelativeError(*runs[0].top[b], *runs[1].top[b], false), tolerance)
        << what << " top " << b;
    EXPECT_LT(RelativeError(*runs[0].bottom[b], *runs[1].bottom[b], true), tolerance)
        << what << " bottom diff " << b;
  }
  std::vector<std::vector<float>> grads;
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p) {
    const Blob& gpu = *runs[1].layer->blobs()[p];
    EXPECT_LT(RelativeError(*runs[0].layer->blobs()[p], gpu, true), tolerance)
        << what << " param diff " << p;
    grads.push_back(Diff(gpu));
  }
  EXPECT_EQ(runs[1].layer->mixed_precision()->overflow.cpu_data()[0], 0.f) << what;
  return grads;
}

struct Geometry {
  const char* param;
  std::vector<int> shape;
  int bottoms;
};

// C and H*W are not multiples of 32 (except where a tile boundary is wanted: 40 channels
// and 72 positions span two and three tiles).
const Geometry kGeometries[] = {
    {"num_output: 7 kernel_size: 3 pad: 1 stride: 2", {2, 5, 13, 11}, 2},
    {"num_output: 33 kernel_size: 1 bias_term: false", {2, 37, 9, 9}, 1},
    {"num_output: 9 kernel_size: 1 stride: 2", {3, 20, 7, 10}, 1},
    {"num_output: 36 kernel_size: 3 pad: 1", {2, 40, 9, 8}, 1},
    {"num_output: 8 kernel_size: 3 pad: 2 dilation: 2 group: 2", {2, 6, 10, 10}, 1},
    // Depthwise (the DepthwiseConvolution engine on the CPU), channel multiplier 2.
    {"num_output: 12 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 stride_h: 1 stride_w: 2 "
     "group: 6 bias_term: false",
     {2, 6, 7, 9},
     1},
    // 1-D: cuDNN runs it as 1 x W, NHWC too.
    {"num_output: 6 kernel_size: 3 pad: 1", {2, 5, 17}, 2},
    // 3-D: the 16-bit copies stay NCHW.
    {"num_output: 4 kernel_size: 3 pad: 1", {1, 3, 4, 5, 4}, 1},
};

TEST_F(GpuLayers, ConvNhwc16Fp16MatchesCpu) {
  REQUIRE_GPU();
  for (const Geometry& g : kGeometries)
    CompareConv(g.param, g.shape, g.bottoms, Precision::FP16, 3e-3);
}

TEST_F(GpuLayers, ConvNhwc16Bf16MatchesCpu) {
  REQUIRE_GPU();
  for (const Geometry& g : kGeometries)
    CompareConv(g.param, g.shape, g.bottoms, Precision::BF16, 2e-2);
}

// The loss scale multiplies dy before rounding and divides dx and dW after widening: the
// unscaled gradients agree across scales (and with the CPU; two bottoms accumulate dW).
void CheckLossScaleCancels(const char* param, const std::vector<int>& shape) {
  const auto g1 = CompareConv(param, shape, 2, Precision::FP16, 3e-3, 1.f);
  const auto g1024 = CompareConv(param, shape, 2, Precision::FP16, 3e-3, 1024.f);
  ASSERT_EQ(g1.size(), g1024.size());
  for (size_t p = 0; p < g1.size(); ++p) {
    double num = 0, den = 0;
    for (size_t i = 0; i < g1[p].size(); ++i) {
      num += (double(g1[p][i]) - g1024[p][i]) * (double(g1[p][i]) - g1024[p][i]);
      den += double(g1[p][i]) * g1[p][i];
    }
    EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 3e-3) << param << " param " << p;
  }
}

TEST_F(GpuLayers, ConvNhwc16LossScaledBackward) {
  REQUIRE_GPU();
  CheckLossScaleCancels("num_output: 10 kernel_size: 3 pad: 1 stride: 2", {2, 7, 11, 9});
}

// ---- 1x1 convolutions as GEMMs (layers/convolution.cu) ----------------------------------

// Sets CREMA_CONV_1X1_GEMM for one scope.
class ForcedRoute {
 public:
  explicit ForcedRoute(const char* value) { setenv("CREMA_CONV_1X1_GEMM", value, 1); }
  ~ForcedRoute() { unsetenv("CREMA_CONV_1X1_GEMM"); }
};

// Channel counts and positions off multiples of 8 and 32; bias on and off; two bottoms
// sharing W; 1-D and 3-D.
const Geometry k1x1Geometries[] = {
    {"num_output: 33 kernel_size: 1 bias_term: false", {2, 37, 9, 9}, 1},
    {"num_output: 9 kernel_size: 1", {3, 20, 7, 10}, 2},
    {"num_output: 6 kernel_size: 1", {2, 5, 17}, 1},
    {"num_output: 4 kernel_size: 1", {2, 3, 4, 5, 4}, 1},
};

TEST_F(GpuLayers, Conv1x1BothRoutesMatchCpu) {
  REQUIRE_GPU();
  for (const char* route : {"1", "0"}) {
    SCOPED_TRACE(std::string("CREMA_CONV_1X1_GEMM=") + route);
    ForcedRoute forced(route);
    for (const Geometry& g : k1x1Geometries) {
      CompareConv(g.param, g.shape, g.bottoms, Precision::FP32, 1e-4);
      CompareConv(g.param, g.shape, g.bottoms, Precision::TF32, 3e-3);
      CompareConv(g.param, g.shape, g.bottoms, Precision::FP16, 3e-3);
      CompareConv(g.param, g.shape, g.bottoms, Precision::BF16, 2e-2);
    }
  }
}

TEST_F(GpuLayers, Conv1x1GemmLossScaledBackward) {
  REQUIRE_GPU();
  ForcedRoute forced("1");
  CheckLossScaleCancels("num_output: 10 kernel_size: 1", {2, 7, 11, 9});
}

#ifdef CREMA_WITH_CUDA
// Whether a forward ran the GEMM route, for a layer of convolution_param `param`.
bool RanGemm(const std::string& param, const std::vector<int>& shape) {
  std::shared_ptr<Layer> layer =
      MakeLayer("name: 'c' type: 'Convolution' convolution_param { " + param + " }");
  Blob x(shape), y;
  FillBlob(&x, Gaussian(), 3);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&x}, {&y});
  Context::set_mode(Mode::CPU);
  auto* conv = dynamic_cast<ConvolutionLayer*>(layer.get());
  return conv && conv->runs_gemm_1x1();
}

TEST_F(GpuLayers, Conv1x1GemmRouteOnlyForEligibleGeometries) {
  REQUIRE_GPU();
  const std::vector<int> shape = {2, 4, 6, 6};
  {
    ForcedRoute forced("1");
    EXPECT_TRUE(RanGemm("num_output: 3 kernel_size: 1", shape));
    EXPECT_FALSE(RanGemm("num_output: 3 kernel_size: 3", shape));
    EXPECT_FALSE(RanGemm("num_output: 3 kernel_size: 1 stride: 2", shape));
    EXPECT_FALSE(RanGemm("num_output: 3 kernel_size: 1 pad: 1", shape));
    EXPECT_FALSE(RanGemm("num_output: 4 kernel_size: 1 group: 2", shape));
  }
  ForcedRoute forced("0");
  EXPECT_FALSE(RanGemm("num_output: 3 kernel_size: 1", shape));
}
#endif  // CREMA_WITH_CUDA

TEST_F(GpuLayers, ConvNhwc16OverflowRaisesTheFlag) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer(
      "name: 'c' type: 'Convolution' convolution_param { num_output: 5 kernel_size: 3 "
      "pad: 1 weight_filler { type: 'gaussian' std: 0.2 } }");
  auto mixed = std::make_shared<MixedPrecision>();
  mixed->precision = Precision::FP16;
  mixed->scaler = LossScaler(65536.f);
  layer->set_mixed_precision(mixed);
  Blob x(std::vector<int>{2, 3, 6, 7}), y;
  FillBlob(&x, Gaussian(), 3);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&x}, {&y});
  EXPECT_EQ(mixed->overflow.cpu_data()[0], 0.f);
  cpu_set(y.count(), 10.f, y.mutable_cpu_diff());  // 10 * 65536 > 65504: inf in fp16
  layer->Backward({&y}, {true}, {&x});
  EXPECT_EQ(mixed->overflow.cpu_data()[0], 1.f);
}

}  // namespace
}  // namespace crema
