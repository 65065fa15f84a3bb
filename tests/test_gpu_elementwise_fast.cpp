// The vectorised, division-free GPU kernels of the memory-bound layers (BatchNorm, Scale,
// Bias, Eltwise SUM, crema's own ReLU) against the CPU path, on shapes that reach each of
// their launch paths. Every test needs a CUDA device: in CPU-only builds, or when no device
// is visible, each one is skipped with "no CUDA device: GPU test skipped".
//
// Per-channel maps (BatchNorm, and the broadcast of Scale and Bias) see x as planes
// [outer * dim][inner]:
//   - inner >= 64: the planes kernel, float4 when inner % 4 == 0 (and aligned), else floats;
//     a wide plane (several chunks in grid y) and more than 65535 planes (blocks loop);
//   - inner < 64: the flat kernel, float4 when count % 4 == 0 (vectors then straddle planes
//     and channels), else floats;
//   - unaligned arrays (offset device pointers into broadcast::ApplyGpu) take the floats.
// Eltwise SUM (2 and 3 bottoms, coefficients) and ReLU (engine CAFFE, leaky or not): counts
// that are and are not multiples of 4. In place: BatchNorm, Scale, Bias, ReLU, and Eltwise
// with top = bottom 0, each against the CPU run out of place.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "layers/bias.hpp"
#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

using Shape = std::vector<int>;

// Shapes [N, C, S...] and the path a per-channel map over S takes.
const Shape kPlanesVec = {2, 3, 8, 8};      // S = 64: planes, float4
const Shape kPlanesScalar = {2, 3, 9, 9};   // S = 81: planes, floats
const Shape kPlanesWide = {1, 2, 40, 41};   // S = 1640: planes, float4, 2 chunks
const Shape kPlanesWideOdd = {1, 2, 1601};  // S = 1601: planes, floats, 7 chunks
const Shape kFlatVec = {4, 3, 2, 2};        // S = 4: flat, float4
const Shape kFlatStraddle = {2, 3, 6};      // S = 6: flat, float4 across planes
const Shape kFlatScalar = {2, 3, 7, 7};     // S = 49: flat, floats (count 294)
const Shape kFlatInnerProduct = {6, 10};    // S = 1: flat, float4 across channels
const Shape kFlatInnerProductOdd = {5, 3};  // S = 1: flat, floats
const std::vector<Shape> kAllPaths = {kPlanesVec,     kPlanesScalar,     kPlanesWide,
                                      kPlanesWideOdd, kFlatVec,          kFlatStraddle,
                                      kFlatScalar,    kFlatInnerProduct, kFlatInnerProductOdd};

std::string Describe(const Shape& s) {
  std::string out;
  for (int d : s) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

// Forward and backward of `text` once on the CPU out of place and once on the GPU in place
// (top 0 = bottom 0), from the same bottoms, parameters and top gradients: top, bottom
// gradients and parameter gradients must agree.
void CompareGpuInPlace(const std::string& text, const std::vector<Shape>& shapes,
                       const std::vector<Fill>& fills) {
  struct Run {
    std::shared_ptr<Layer> layer;
    std::vector<std::unique_ptr<Blob>> bottoms, tops;
    BlobVec bottom, top;
  };
  Run runs[2];
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    r.layer = MakeLayer(text);
    for (size_t i = 0; i < shapes.size(); ++i) {
      r.bottoms.emplace_back(new Blob(shapes[i]));
      FillBlob(r.bottoms.back().get(), fills[i], 11 + i);
      r.bottom.push_back(r.bottoms.back().get());
    }
    if (k == 0) {
      r.tops.emplace_back(new Blob());
      r.top.push_back(r.tops.back().get());
    } else {
      r.top.push_back(r.bottom[0]);
    }
    r.layer->SetUp(r.bottom, r.top);
  }
  ASSERT_EQ(runs[0].layer->blobs().size(), runs[1].layer->blobs().size());
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    runs[1].layer->blobs()[p]->CopyFrom(*runs[0].layer->blobs()[p]);
  const std::vector<bool> propagate(shapes.size(), true);
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    r.layer->Forward(r.bottom, r.top);
    Context::set_mode(Mode::CPU);
    // Diffs to zero first: in place, the top gradient is bottom 0's diff.
    for (Blob* b : r.bottom) cpu_set(b->count(), 0.f, b->mutable_cpu_diff());
    for (auto& p : r.layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    Context::reseed(/*stream=*/778, 0);
    cpu_rng_gaussian(r.top[0]->count(), 0.f, 1.f, r.top[0]->mutable_cpu_diff());
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    r.layer->Backward(r.top, propagate, r.bottom);
    Context::set_mode(Mode::CPU);
  }
  const std::string what = text + " in place";
  ExpectClose(Data(*runs[0].top[0]), runs[1].top[0]->cpu_data(), what + ": top");
  for (size_t i = 0; i < shapes.size(); ++i)
    ExpectClose(Diff(*runs[0].bottom[i]), runs[1].bottom[i]->cpu_diff(),
                what + ": bottom diff " + std::to_string(i));
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    ExpectClose(Diff(*runs[0].layer->blobs()[p]), runs[1].layer->blobs()[p]->cpu_diff(),
                what + ": param diff " + std::to_string(p));
}

// ---------------------------------------------------------------------------------------
// BatchNorm
// ---------------------------------------------------------------------------------------

// Stored statistics for 3 channels (mean sum, variance sum, factor), as Caffe stores them.
const char kStats3[] =
    "blobs { shape { dim: 3 } data: 0.3 data: -0.6 data: 1.2 } "
    "blobs { shape { dim: 3 } data: 1.5 data: 0.9 data: 3 } "
    "blobs { shape { dim: 1 } data: 1.5 } ";

// Stored statistics for `channels` channels, varied per channel.
std::string Stats(int channels) {
  std::string mean = "blobs { shape { dim: " + std::to_string(channels) + " } ";
  std::string var = mean;
  for (int c = 0; c < channels; ++c) {
    mean += "data: " + std::to_string(0.25 * (c % 5) - 0.4) + " ";
    var += "data: " + std::to_string(0.5 + 0.3 * (c % 7)) + " ";
  }
  return mean + "} " + var + "} blobs { shape { dim: 1 } data: 2 } ";
}

std::string GlobalBatchNorm(int channels) {
  return "name: 'bn' type: 'BatchNorm' phase: TEST " +
         (channels == 3 ? std::string(kStats3) : Stats(channels));
}

TEST_F(GpuLayers, FastBatchNormGlobalStatisticsEveryPath) {
  REQUIRE_GPU();
  for (const Shape& s : kAllPaths) {
    SCOPED_TRACE(Describe(s));
    CompareCpuGpu(GlobalBatchNorm(s[1]), {s}, {Gaussian()});
  }
  // Factor 0 (nothing accumulated): mean 0, variance 0, on both kernels.
  CompareCpuGpu("name: 'bn' type: 'BatchNorm' phase: TEST", {kPlanesVec}, {Gaussian()});
  CompareCpuGpu("name: 'bn' type: 'BatchNorm' phase: TEST", {kFlatVec}, {Gaussian()});
  // One axis: one channel, S = 1.
  CompareCpuGpu(GlobalBatchNorm(1), {{12}}, {Gaussian()});
  GradientCheckGpu(GlobalBatchNorm(3), {kPlanesVec}, {Gaussian()});
}

TEST_F(GpuLayers, FastBatchNormTrainStatisticsEveryPath) {
  REQUIRE_GPU();
  for (const Shape& s : kAllPaths) {
    SCOPED_TRACE(Describe(s));
    CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {s}, {Gaussian()});
    // Positive inputs: a mean far from 0 (the (x - mean) form matters).
    CompareCpuGpu("name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.1 }", {s}, {Positive()});
  }
  testing::GradientCheckOptions o;
  o.max_checks_per_blob = 48;
  GradientCheckGpu("name: 'bn' type: 'BatchNorm'", {kPlanesVec}, {Gaussian()}, o);
  GradientCheckGpu("name: 'bn' type: 'BatchNorm'", {kFlatStraddle}, {Gaussian()});
}

TEST_F(GpuLayers, FastBatchNormInPlace) {
  REQUIRE_GPU();
  for (const Shape& s : {kPlanesVec, kPlanesScalar, kFlatVec, kFlatScalar}) {
    SCOPED_TRACE(Describe(s));
    CompareGpuInPlace("name: 'bn' type: 'BatchNorm'", {s}, {Gaussian()});
    CompareGpuInPlace(GlobalBatchNorm(3), {s}, {Gaussian()});
  }
}

// N * C = 65600 planes of 64: the planes kernel's blocks loop over planes (65535 at most).
TEST_F(GpuLayers, FastBatchNormMorePlanesThanBlocks) {
  REQUIRE_GPU();
  const Shape many = {32800, 2, 8, 8};
  CompareCpuGpu(GlobalBatchNorm(2), {many}, {Gaussian()});
  CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {many}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Scale and Bias (the broadcast helpers)
// ---------------------------------------------------------------------------------------

const char kScaleBias[] =
    "name: 's' type: 'Scale' scale_param { bias_term: true filler { type: 'gaussian' } "
    "bias_filler { type: 'gaussian' } }";
const char kScale[] = "name: 's' type: 'Scale' scale_param { filler { type: 'gaussian' } }";
const char kBias[] = "name: 'b' type: 'Bias' bias_param { filler { type: 'gaussian' } }";

TEST_F(GpuLayers, FastScaleBiasEveryPath) {
  REQUIRE_GPU();
  for (const Shape& s : kAllPaths) {
    SCOPED_TRACE(Describe(s));
    CompareCpuGpu(kScaleBias, {s}, {Gaussian()});
    CompareCpuGpu(kScale, {s}, {Gaussian()});
    CompareCpuGpu(kBias, {s}, {Gaussian()});
    // The parameter as a second bottom.
    CompareCpuGpu("name: 's' type: 'Scale'", {s, {s[1]}}, {Gaussian(), Gaussian()});
    CompareCpuGpu("name: 'b' type: 'Bias'", {s, {s[1]}}, {Gaussian(), Gaussian()});
  }
  // A parameter over two axes ([C, H]: inner = W), and a scalar (inner = count).
  CompareCpuGpu("name: 's' type: 'Scale' scale_param { num_axes: 2 bias_term: true }",
                {{2, 3, 4, 64}}, {Gaussian()});
  CompareCpuGpu("name: 's' type: 'Scale' scale_param { num_axes: 2 }", {{2, 3, 4, 5}},
                {Gaussian()});
  CompareCpuGpu("name: 'b' type: 'Bias' bias_param { num_axes: 0 }", {{3, 67}}, {Gaussian()});
  GradientCheckGpu(kScaleBias, {kPlanesVec}, {Gaussian()});
  GradientCheckGpu(kScaleBias, {kFlatInnerProduct}, {Gaussian()});
}

TEST_F(GpuLayers, FastScaleBiasInPlace) {
  REQUIRE_GPU();
  for (const Shape& s : {kPlanesVec, kPlanesScalar, kFlatVec, kFlatScalar}) {
    SCOPED_TRACE(Describe(s));
    CompareGpuInPlace(kScaleBias, {s}, {Gaussian()});
    CompareGpuInPlace(kScale, {s}, {Gaussian()});
    CompareGpuInPlace(kBias, {s}, {Gaussian()});
  }
}

// broadcast::ApplyGpu against broadcast::Apply on arrays that start 1 to 3 floats past a
// 16-byte boundary (the float path, whatever inner is), and on 16-byte aligned ones.
TEST_F(GpuLayers, FastBroadcastApplyUnaligned) {
  REQUIRE_GPU();
#ifdef CREMA_WITH_CUDA  // broadcast::ApplyGpu exists in CUDA builds only
  for (const broadcast::Geometry g :
       {broadcast::Geometry{1, 2, 3, 64}, broadcast::Geometry{1, 3, 5, 4},
        broadcast::Geometry{1, 4, 6, 1}}) {
    const int count = g.outer * g.dim * g.inner;
    for (int offset = 0; offset < 4; ++offset) {
      SCOPED_TRACE("inner " + std::to_string(g.inner) + ", offset " + std::to_string(offset));
      Blob x({count + 4}), y({count + 4}), copy({count + 4}), ab({2 * g.dim});
      FillBlob(&x, Gaussian(), 3);
      FillBlob(&ab, Gaussian(), 4);
      const float* a = ab.cpu_data();
      const float* b = a + g.dim;
      for (int variant = 0; variant < 3; ++variant) {  // a and b, a only, b only
        const float* av = variant == 2 ? nullptr : a;
        const float* bv = variant == 1 ? nullptr : b;
        std::vector<float> want(count), want_copy(count);
        broadcast::Apply(g, x.cpu_data() + offset, av, bv, want.data(), want_copy.data());
        cpu_set(y.count(), 0.f, y.mutable_cpu_data());
        const float* ag = ab.gpu_data();
        broadcast::ApplyGpu(g, x.gpu_data() + offset, av ? ag : nullptr, bv ? ag + g.dim : nullptr,
                            y.mutable_gpu_data() + offset, copy.mutable_gpu_data() + offset);
        ExpectClose(want, y.cpu_data() + offset, "ApplyGpu y");
        ExpectClose(want_copy, copy.cpu_data() + offset, "ApplyGpu copy");
      }
    }
  }
#endif
}

// 65600 planes of 64 (outer 32800, dim 2): the planes kernel's blocks loop over planes.
TEST_F(GpuLayers, FastScaleMorePlanesThanBlocks) {
  REQUIRE_GPU();
  CompareCpuGpu(kScaleBias, {{32800, 2, 64}}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Eltwise SUM
// ---------------------------------------------------------------------------------------

std::string Sum(const std::string& coeffs) {
  return "name: 'e' type: 'Eltwise' eltwise_param { operation: SUM " + coeffs + "}";
}

TEST_F(GpuLayers, FastEltwiseSum) {
  REQUIRE_GPU();
  const Fill g = Gaussian();
  for (const Shape& s : {Shape{2, 3, 8, 8}, Shape{2, 3, 7, 7}, Shape{3, 5}, Shape{1}}) {
    SCOPED_TRACE(Describe(s));
    CompareCpuGpu(Sum(""), {s, s}, {g, g});
    CompareCpuGpu(Sum("coeff: 0.5 coeff: -2 "), {s, s}, {g, g});
    CompareCpuGpu(Sum("coeff: 1 coeff: 3 "), {s, s}, {g, g});
    CompareCpuGpu(Sum(""), {s, s, s}, {g, g, g});
    CompareCpuGpu(Sum("coeff: -1 coeff: 0.25 coeff: 2 "), {s, s, s}, {g, g, g});
    CompareCpuGpu(Sum("coeff: 1 coeff: 1 coeff: 1 coeff: -0.5 "), {s, s, s, s}, {g, g, g, g});
  }
  // Only some bottoms propagate.
  CompareOptions some;
  some.propagate_down = {false, true, true};
  CompareCpuGpu(Sum("coeff: 2 coeff: 1 coeff: -3 "), {kPlanesVec, kPlanesVec, kPlanesVec},
                {g, g, g}, some);
  GradientCheckGpu(Sum("coeff: 0.5 coeff: -2 coeff: 3 "), {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
                   {g, g, g});
}

// Top = bottom 0, as Caffe nets write `top: same as bottom 0`. With coefficient 1 for bottom 0
// the CPU is correct in place too; with another coefficient the GPU still is (bottom 0's
// gradient, which overwrites dy, is written last), so it is checked against the CPU run out
// of place.
TEST_F(GpuLayers, FastEltwiseSumInPlace) {
  REQUIRE_GPU();
  const Fill g = Gaussian();
  for (const Shape& s : {Shape{2, 3, 8, 8}, Shape{2, 3, 7, 7}}) {
    SCOPED_TRACE(Describe(s));
    CompareGpuInPlace(Sum(""), {s, s}, {g, g});
    CompareGpuInPlace(Sum("coeff: 1 coeff: -2 coeff: 0.5 "), {s, s, s}, {g, g, g});
    CompareGpuInPlace(Sum("coeff: 0.5 coeff: -2 "), {s, s}, {g, g});
    CompareGpuInPlace(Sum("coeff: 3 coeff: -2 coeff: 0.5 "), {s, s, s}, {g, g, g});
  }
}

// ---------------------------------------------------------------------------------------
// ReLU (crema's kernel: engine CAFFE)
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, FastReLU) {
  REQUIRE_GPU();
  const std::string relu = "name: 'r' type: 'ReLU' relu_param { engine: CAFFE }";
  const std::string leaky =
      "name: 'r' type: 'ReLU' relu_param { engine: CAFFE negative_slope: 0.1 }";
  for (const Shape& s : {Shape{2, 3, 8, 8}, Shape{2, 3, 7, 7}, Shape{5}, Shape{4}}) {
    SCOPED_TRACE(Describe(s));
    CompareCpuGpu(relu, {s}, {Gaussian()});
    CompareCpuGpu(leaky, {s}, {Gaussian()});
    CompareGpuInPlace(relu, {s}, {Gaussian()});
    CompareGpuInPlace(leaky, {s}, {Gaussian()});
  }
  testing::GradientCheckOptions o;
  o.kink_range = 0.02f;
  GradientCheckGpu(leaky, {{2, 3, 4}}, {Gaussian()}, o);
}

// Zeros take the negative branch (x > 0 is false); with slope 0 the output is exactly 0,
// even for -inf, and a NaN passes through, as on the CPU.
TEST_F(GpuLayers, FastReLUSpecialValues) {
  REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {0.f, -0.f, -inf, inf, -1.f, 2.f, 1e-30f, nan};
  for (int count : {8, 7}) {  // float4 and float kernels
    std::shared_ptr<Layer> layer = MakeLayer("name: 'r' type: 'ReLU' relu_param { engine: CAFFE }");
    Blob x({count}), y;
    for (int i = 0; i < count; ++i) x.mutable_cpu_data()[i] = values[i];
    layer->SetUp({&x}, {&y});
    Context::set_mode(Mode::GPU);
    layer->Forward({&x}, {&y});
    Context::set_mode(Mode::CPU);
    for (int i = 0; i < count; ++i) {
      if (std::isnan(values[i])) {
        EXPECT_TRUE(std::isnan(y.cpu_data()[i])) << "NaN passes through, as on the CPU";
        continue;
      }
      const float want = values[i] > 0.f ? values[i] : 0.f;
      EXPECT_EQ(y.cpu_data()[i], want) << "x = " << values[i];
      EXPECT_FALSE(std::signbit(y.cpu_data()[i])) << "x = " << values[i];
    }
  }
}

}  // namespace
}  // namespace crema
