// Convolution: hand-computed answers, a direct reference loop (groups, stride, pad,
// dilation, several images), N-d against 2-D, gradient checks, thread-count independence,
// gradient accumulation and the parameter errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/layer_registry.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::Diffs;
using testing::MakeLayer;
using testing::SetValues;
using testing::Values;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& conv_param, const std::string& name = "conv") {
  return MakeLayer(
      ("name: '" + name + "' type: 'Convolution' convolution_param { " + conv_param + " }"));
}

struct Conv2d {
  int group = 1, kh, kw, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};

// Straightforward convolution of x [N, C, H, W] with w [O, C/g, kh, kw] (+ b).
std::vector<float> Reference(const Blob& x, const Blob& w, const Blob* b, const Conv2d& p) {
  const int N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3), O = w.shape(0);
  const int Ho = (H + 2 * p.ph - (p.dh * (p.kh - 1) + 1)) / p.sh + 1;
  const int Wo = (W + 2 * p.pw - (p.dw * (p.kw - 1) + 1)) / p.sw + 1;
  const int cg = C / p.group, og = O / p.group;
  std::vector<float> y(static_cast<size_t>(N) * O * Ho * Wo);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow) {
          double s = b ? b->cpu_data()[o] : 0.0;
          const int g = o / og;
          for (int ci = 0; ci < cg; ++ci)
            for (int i = 0; i < p.kh; ++i)
              for (int j = 0; j < p.kw; ++j) {
                const int ih = oh * p.sh - p.ph + i * p.dh, iw = ow * p.sw - p.pw + j * p.dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += double(w.cpu_data()[((o * cg + ci) * p.kh + i) * p.kw + j]) *
                     x.cpu_data()[((n * C + g * cg + ci) * H + ih) * W + iw];
              }
          y[((static_cast<size_t>(n) * O + o) * Ho + oh) * Wo + ow] = static_cast<float>(s);
        }
  return y;
}

void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

std::vector<float> Iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i + 1);
  return v;
}

TEST(ConvolutionLayer, HandComputed3x3) {
  auto conv = Make(
      "num_output: 1 kernel_size: 3 weight_filler { type: 'constant' value: 1 } "
      "bias_filler { type: 'constant' value: 1 }");
  Blob x(Shape{1, 1, 4, 4}), y;
  SetValues(&x, Iota(16));
  conv->SetUp({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  ASSERT_EQ(conv->blobs().size(), 2u);
  EXPECT_EQ(conv->blobs()[0]->shape(), (Shape{1, 1, 3, 3}));
  conv->Forward({&x}, {&y});
  // Window sums 54, 63, 90, 99, plus the bias 1.
  EXPECT_EQ(Values(y), (std::vector<float>{55, 64, 91, 100}));
  EXPECT_DOUBLE_EQ(conv->ForwardFlops({&x}, {&y}), 2.0 * 1 * 1 * 4 * 9);
}

TEST(ConvolutionLayer, HandComputedStride2Pad1) {
  auto conv = Make(
      "num_output: 1 kernel_size: 3 stride: 2 pad: 1 bias_term: false "
      "weight_filler { type: 'constant' value: 1 }");
  Blob x(Shape{1, 1, 4, 4}), y;
  SetValues(&x, Iota(16));
  conv->SetUp({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  ASSERT_EQ(conv->blobs().size(), 1u);
  conv->Forward({&x}, {&y});
  EXPECT_EQ(Values(y), (std::vector<float>{14, 30, 57, 99}));
}

TEST(ConvolutionLayer, HandComputedDilated) {
  // 1 x 5 x 5 image 1..25, 2x2 kernel [1 2; 3 4] with dilation 2: taps at (0,0) (0,2)
  // (2,0) (2,2) of each window; output 3 x 3.
  auto conv = Make("num_output: 1 kernel_size: 2 dilation: 2 bias_term: false");
  Blob x(Shape{1, 1, 5, 5}), y;
  SetValues(&x, Iota(25));
  conv->SetUp({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  SetValues(conv->blobs()[0].get(), {1, 2, 3, 4});
  conv->Forward({&x}, {&y});
  // (0,0): 1*1 + 2*3 + 3*11 + 4*13 = 92; each step right adds 10, each step down 50.
  EXPECT_EQ(Values(y), (std::vector<float>{92, 102, 112, 142, 152, 162, 192, 202, 212}));
}

TEST(ConvolutionLayer, HandComputedGrouped) {
  // Two channels, two groups: output 0 sees channel 0 only, output 1 channel 1 only.
  auto conv = Make("num_output: 2 kernel_size: 1 group: 2 bias_term: false");
  Blob x(Shape{1, 2, 1, 2}), y;
  SetValues(&x, {1, 2, 10, 20});
  conv->SetUp({&x}, {&y});
  ASSERT_EQ(conv->blobs()[0]->shape(), (Shape{2, 1, 1, 1}));
  SetValues(conv->blobs()[0].get(), {3, -1});
  conv->Forward({&x}, {&y});
  EXPECT_EQ(Values(y), (std::vector<float>{3, 6, -10, -20}));
}

TEST(ConvolutionLayer, MatchesReference) {
  struct Case {
    std::string text;
    Conv2d p;
    Shape in;
    int out;
  };
  const std::vector<Case> cases = {
      {"kernel_size: 3", {1, 3, 3}, {2, 3, 6, 5}, 4},
      {"kernel_size: 3 stride: 2 pad: 1", {1, 3, 3, 2, 2, 1, 1}, {3, 2, 7, 8}, 3},
      {"kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0",
       {1, 2, 3, 1, 2, 1, 0},
       {2, 2, 5, 7},
       2},
      {"kernel_size: 3 group: 2 dilation: 2 pad: 2", {2, 3, 3, 1, 1, 2, 2, 2, 2}, {2, 4, 7, 6}, 6},
      {"kernel_size: 3 kernel_size: 2 dilation: 1 dilation: 3 stride: 1 stride: 2",
       {1, 3, 2, 1, 2, 0, 0, 1, 3},
       {1, 2, 8, 9},
       3},
      {"kernel_size: 1", {1, 1, 1}, {4, 5, 3, 3}, 6},  // 1x1: no im2col
      {"kernel_size: 1 group: 3", {3, 1, 1}, {2, 6, 2, 3}, 3},
      {"kernel_size: 1 stride: 2", {1, 1, 1, 2, 2}, {2, 3, 5, 5}, 2},
  };
  for (const Case& c : cases) {
    for (const bool force_nd : {false, true}) {
      auto conv = Make("num_output: " + std::to_string(c.out) + " " + c.text +
                       (force_nd ? " force_nd_im2col: true" : "") +
                       " weight_filler { type: 'gaussian' std: 1 }"
                       " bias_filler { type: 'gaussian' std: 1 }");
      Blob x(c.in), y;
      testing::FillGaussian(&x, 1.f, 3);
      conv->SetUp({&x}, {&y});
      conv->Forward({&x}, {&y});
      const auto expected = Reference(x, *conv->blobs()[0], conv->blobs()[1].get(), c.p);
      ExpectNear(Values(y), expected, 1e-4f);
    }
  }
}

TEST(ConvolutionLayer, MultipleBottomsShareWeights) {
  auto conv = Make("num_output: 3 kernel_size: 2 weight_filler { type: 'gaussian' std: 1 }");
  Blob x0(Shape{2, 2, 4, 4}), x1(Shape{2, 2, 4, 4}), y0, y1;
  testing::FillGaussian(&x0, 1.f, 1);
  testing::FillGaussian(&x1, 1.f, 2);
  conv->SetUp({&x0, &x1}, {&y0, &y1});
  conv->Forward({&x0, &x1}, {&y0, &y1});
  Conv2d p;
  p.kh = p.kw = 2;
  ExpectNear(Values(y0), Reference(x0, *conv->blobs()[0], conv->blobs()[1].get(), p), 1e-4f);
  ExpectNear(Values(y1), Reference(x1, *conv->blobs()[0], conv->blobs()[1].get(), p), 1e-4f);
  EXPECT_DOUBLE_EQ(conv->ForwardFlops({&x0, &x1}, {&y0, &y1}), 2.0 * 2 * (2 * 3 * 9 * 2 * 4));
}

TEST(ConvolutionLayer, ChannelAxisAndLeadingAxes) {
  // axis 2: shape [2, 3, C=2, 5, 4]; the first two axes are both "images".
  auto conv = Make("num_output: 2 kernel_size: 3 axis: 2 weight_filler { type: 'gaussian' }");
  Blob x(Shape{2, 3, 2, 5, 4}), y;
  testing::FillGaussian(&x);
  conv->SetUp({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2, 3, 2}));
  conv->Forward({&x}, {&y});
  Blob x4(Shape{6, 2, 5, 4});
  x4.CopyFrom(x, false, true);
  x4.Reshape(Shape{6, 2, 5, 4});
  Conv2d p;
  p.kh = p.kw = 3;
  ExpectNear(Values(y), Reference(x4, *conv->blobs()[0], conv->blobs()[1].get(), p), 1e-4f);
}

TEST(ConvolutionLayer, Nd3dMatchesSum2d) {
  // A 3-D convolution with kernel depth 1 equals a 2-D convolution applied per slice.
  auto conv3 = Make(
      "num_output: 2 kernel_size: 1 kernel_size: 3 kernel_size: 2 "
      "pad: 0 pad: 1 pad: 0 weight_filler { type: 'gaussian' } "
      "bias_filler { type: 'gaussian' }");
  Blob x(Shape{1, 2, 3, 4, 5}), y;
  testing::FillGaussian(&x, 1.f, 4);
  conv3->SetUp({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 2, 3, 4, 4}));
  conv3->Forward({&x}, {&y});
  // Reference: slice depth d, 2-D conv with the [2, 2, 1, 3, 2] weights viewed as 2-D.
  Blob w2(Shape{2, 2, 3, 2});
  w2.CopyFrom(*conv3->blobs()[0], false, true);
  w2.Reshape(Shape{2, 2, 3, 2});
  Conv2d p;
  p.kh = 3;
  p.kw = 2;
  p.ph = 1;
  for (int d = 0; d < 3; ++d) {
    Blob slice(Shape{1, 2, 4, 5});
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 20; ++i)
        slice.mutable_cpu_data()[c * 20 + i] = x.cpu_data()[(c * 3 + d) * 20 + i];
    const auto ref = Reference(slice, w2, conv3->blobs()[1].get(), p);
    for (int o = 0; o < 2; ++o)
      for (int i = 0; i < 16; ++i)
        EXPECT_NEAR(y.cpu_data()[(o * 3 + d) * 16 + i], ref[o * 16 + i], 1e-4f);
  }
}

TEST(ConvolutionLayer, Gradient) {
  auto conv = Make(
      "num_output: 4 kernel_size: 3 group: 2 dilation: 2 pad: 1 stride: 1 "
      "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }");
  Blob x(Shape{2, 4, 6, 5}), y;
  testing::FillGaussian(&x, 1.f, 5);
  testing::GradientChecker(testing::GradientCheckOptions{}).Check(conv.get(), {&x}, {&y});
}

TEST(ConvolutionLayer, GradientStride2Rectangular) {
  auto conv = Make(
      "num_output: 3 kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 "
      "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }");
  Blob x(Shape{3, 2, 5, 6}), y;
  testing::FillGaussian(&x, 1.f, 6);
  testing::GradientChecker().Check(conv.get(), {&x}, {&y});
}

TEST(ConvolutionLayer, Gradient1x1) {
  auto conv = Make("num_output: 3 kernel_size: 1 weight_filler { type: 'gaussian' std: 0.5 }");
  Blob x(Shape{2, 4, 3, 3}), y;
  testing::FillGaussian(&x, 1.f, 7);
  testing::GradientChecker().Check(conv.get(), {&x}, {&y});
}

TEST(ConvolutionLayer, Gradient3d) {
  auto conv = Make(
      "num_output: 2 kernel_size: 2 pad: 1 stride: 1 stride: 2 stride: 1 "
      "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }");
  Blob x(Shape{2, 2, 3, 4, 3}), y;
  testing::FillGaussian(&x, 1.f, 8);
  testing::GradientChecker().Check(conv.get(), {&x}, {&y});
}

TEST(ConvolutionLayer, GradientTwoBottoms) {
  auto conv = Make("num_output: 2 kernel_size: 2 weight_filler { type: 'gaussian' std: 0.5 }");
  Blob x0(Shape{2, 2, 3, 3}), x1(Shape{2, 2, 3, 3}), y0, y1;
  testing::FillGaussian(&x0, 1.f, 9);
  testing::FillGaussian(&x1, 1.f, 10);
  testing::GradientChecker().Check(conv.get(), {&x0, &x1}, {&y0, &y1});
}

// Forward + backward with a given thread count; returns top, bottom diff, weight and bias
// diffs concatenated.
std::vector<float> RunWithThreads(const std::string& text, const Shape& shape, int threads) {
  const int saved = Context::num_threads();
  Context::set_num_threads(threads);
  auto conv = Make(text);
  Context::reseed(77, 0);
  Blob x(shape), y;
  testing::FillGaussian(&x, 1.f, 11);
  conv->SetUp({&x}, {&y});
  conv->Forward({&x}, {&y});
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = std::sin(0.1f * i);
  for (auto& p : conv->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  conv->Backward({&y}, {true}, {&x});
  std::vector<float> all = Values(y);
  for (const auto& v : {Diffs(x), Diffs(*conv->blobs()[0]), Diffs(*conv->blobs()[1])})
    all.insert(all.end(), v.begin(), v.end());
  Context::set_num_threads(saved);
  return all;
}

TEST(ConvolutionLayer, SameResultsWithAnyThreadCount) {
  const std::vector<std::pair<std::string, Shape>> cases = {
      {"num_output: 16 kernel_size: 3 pad: 1 group: 2", {5, 8, 12, 12}},  // images in parallel
      {"num_output: 16 kernel_size: 3 pad: 1", {1, 8, 40, 40}},           // one image, split GEMMs
      {"num_output: 8 kernel_size: 1", {3, 16, 10, 10}},                  // 1x1
      {"num_output: 32 kernel_size: 5 stride: 2", {3, 48, 24, 24}},       // many weight tiles
  };
  for (const auto& c : cases) {
    const std::string text =
        c.first + " weight_filler { type: 'gaussian' std: 0.1 } bias_filler { type: 'gaussian' }";
    const auto one = RunWithThreads(text, c.second, 1);
    const auto two = RunWithThreads(text, c.second, 2);
    const auto three = RunWithThreads(text, c.second, 3);
    ASSERT_EQ(one.size(), two.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < one.size(); ++i) {
      if ((one[i] != two[i] || one[i] != three[i]) && mismatches < 5)
        ADD_FAILURE() << "element " << i << " of " << one.size() << ": " << one[i] << " " << two[i]
                      << " " << three[i];
      mismatches += one[i] != two[i] || one[i] != three[i];
    }
    EXPECT_EQ(mismatches, 0u) << c.first;
    // And deterministic for a fixed count.
    EXPECT_EQ(two, RunWithThreads(text, c.second, 2)) << c.first;
  }
}

TEST(ConvolutionLayer, ParameterGradientsAccumulate) {
  auto conv = Make("num_output: 2 kernel_size: 2 weight_filler { type: 'gaussian' }");
  Blob x(Shape{2, 2, 3, 3}), y;
  testing::FillGaussian(&x, 1.f, 12);
  conv->SetUp({&x}, {&y});
  conv->Forward({&x}, {&y});
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = 0.5f + 0.01f * i;
  for (auto& p : conv->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  conv->Backward({&y}, {false}, {&x});
  const auto w1 = Diffs(*conv->blobs()[0]), b1 = Diffs(*conv->blobs()[1]);
  conv->Backward({&y}, {false}, {&x});
  const auto w2 = Diffs(*conv->blobs()[0]), b2 = Diffs(*conv->blobs()[1]);
  for (size_t i = 0; i < w1.size(); ++i) EXPECT_FLOAT_EQ(w2[i], 2 * w1[i]);
  for (size_t i = 0; i < b1.size(); ++i) EXPECT_FLOAT_EQ(b2[i], 2 * b1[i]);
  // db[o] = sum of dy over the output channel o.
  float sum0 = 0;
  for (int i = 0; i < 4 * 2; ++i) sum0 += y.cpu_diff()[(i / 4) * 8 + i % 4];
  EXPECT_NEAR(b1[0], sum0, 1e-5f);
}

void ExpectSetUpError(const std::string& conv_param, const Shape& shape,
                      const std::string& fragment) {
  auto conv = Make(conv_param, "bad_conv");
  Blob x(shape), y;
  try {
    conv->SetUp({&x}, {&y});
    ADD_FAILURE() << "no error for " << conv_param;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad_conv"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(ConvolutionLayer, BadParameters) {
  ExpectSetUpError("num_output: 2 kernel_size: 0", {1, 1, 4, 4}, "kernel");
  ExpectSetUpError("num_output: 2", {1, 1, 4, 4}, "kernel");
  ExpectSetUpError("num_output: 2 kernel_size: 3 stride: 0", {1, 1, 4, 4}, "stride");
  ExpectSetUpError("num_output: 2 kernel_size: 5", {1, 1, 4, 4}, "exceeds the padded input 4");
  ExpectSetUpError("num_output: 2 kernel_size: 3 dilation: 2", {1, 1, 4, 4}, "kernel extent 5");
  ExpectSetUpError("num_output: 2 kernel_size: 3 group: 2", {1, 3, 4, 4}, "group 2");
  ExpectSetUpError("num_output: 3 kernel_size: 1 group: 2", {1, 2, 4, 4}, "num_output 3");
  ExpectSetUpError("num_output: 0 kernel_size: 3", {1, 1, 4, 4}, "num_output");
  ExpectSetUpError("num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3", {1, 1, 4, 4},
                   "not both");
  ExpectSetUpError("num_output: 2 kernel_size: 3 kernel_size: 3 kernel_size: 3", {1, 1, 4, 4},
                   "3 times");
  ExpectSetUpError("num_output: 2 kernel_h: 3 kernel_w: 3", {1, 1, 4, 4, 4}, "2 spatial axes");
}

TEST(ConvolutionLayer, BottomsOfDifferentShapes) {
  auto conv = Make("num_output: 2 kernel_size: 2", "pair");
  Blob x0(Shape{1, 2, 4, 4}), x1(Shape{1, 2, 5, 4}), y0, y1;
  try {
    conv->SetUp({&x0, &x1}, {&y0, &y1});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("pair"), std::string::npos) << msg;
    EXPECT_NE(msg.find(x1.shape_string()), std::string::npos) << msg;
  }
}

TEST(ConvolutionLayer, ChannelCountMayNotChange) {
  auto conv = Make("num_output: 2 kernel_size: 2", "grow");
  Blob x(Shape{1, 2, 4, 4}), y;
  conv->SetUp({&x}, {&y});
  x.Reshape(Shape{1, 3, 4, 4});
  EXPECT_THROW(conv->Forward({&x}, {&y}), Error);
  // Spatial changes are fine.
  x.Reshape(Shape{2, 2, 6, 5});
  conv->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 5, 4}));
}

}  // namespace
}  // namespace crema
