// Deconvolution: a hand-computed upsampling, a direct reference loop (groups, stride, pad,
// dilation, bias), the adjoint relation with Convolution, gradient checks and errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
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

using testing::ErrorOf;
using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& type, const std::string& conv_param,
                            const std::string& name = "deconv") {
  return MakeLayer("name: '" + name + "' type: '" + type + "' convolution_param { " + conv_param +
                   " }");
}

struct Geo {
  int group = 1, k = 3, s = 1, p = 0, d = 1;
};

// y[n, o, h*s - p + i*d, w*s - p + j*d] += x[n, c, h, w] * W[c, o - g*Og, i, j] (+ b[o]).
std::vector<double> Reference(const Blob& x, const Blob& W, const Blob* b, int O, const Geo& g) {
  const int N = x.shape(0), C = x.shape(1), H = x.shape(2), Wd = x.shape(3);
  const int ext = g.d * (g.k - 1) + 1;
  const int Ho = g.s * (H - 1) + ext - 2 * g.p, Wo = g.s * (Wd - 1) + ext - 2 * g.p;
  const int cg = C / g.group, og = O / g.group;
  std::vector<double> y(static_cast<size_t>(N) * O * Ho * Wo, 0.0);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) {
      const int grp = c / cg;
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < Wd; ++w)
          for (int oo = 0; oo < og; ++oo)
            for (int i = 0; i < g.k; ++i)
              for (int j = 0; j < g.k; ++j) {
                const int yh = h * g.s - g.p + i * g.d, yw = w * g.s - g.p + j * g.d;
                if (yh < 0 || yh >= Ho || yw < 0 || yw >= Wo) continue;
                const int o = grp * og + oo;
                y[((static_cast<size_t>(n) * O + o) * Ho + yh) * Wo + yw] +=
                    x.data_at(n, c, h, w) * W.data_at(c, oo, i, j);
              }
    }
  if (b)
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o)
        for (int k = 0; k < Ho * Wo; ++k)
          y[(static_cast<size_t>(n) * O + o) * Ho * Wo + k] += b->cpu_data()[o];
  return y;
}

TEST(DeconvolutionLayer, Upsampling) {
  // Stride 2, kernel 2: every input pixel becomes a 2x2 block scaled by the kernel.
  auto layer = Make("Deconvolution", "num_output: 1 kernel_size: 2 stride: 2 bias_term: false");
  Blob x(Shape{1, 1, 2, 2}), y;
  SetValues(&x, {1, 2, 3, 4});
  layer->SetUp({&x}, {&y});
  ASSERT_EQ(layer->blobs()[0]->shape(), (Shape{1, 1, 2, 2}));
  SetValues(layer->blobs()[0].get(), {1, 10, 100, 1000});
  layer->Forward({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  const std::vector<float> expect = {1, 10, 2, 20, 100, 1000, 200, 2000,
                                     3, 30, 4, 40, 300, 3000, 400, 4000};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(y.cpu_data()[i], expect[i]) << i;
}

TEST(DeconvolutionLayer, MatchesReference) {
  struct Case {
    int C, O;
    Geo g;
    bool bias;
  };
  const std::vector<Case> cases = {
      {3, 2, {1, 3, 1, 0, 1}, true}, {4, 6, {2, 3, 2, 1, 1}, true}, {2, 3, {1, 2, 3, 0, 1}, false},
      {4, 4, {4, 3, 1, 1, 2}, true}, {3, 2, {1, 4, 2, 1, 1}, true},
  };
  for (const Case& c : cases) {
    const std::string param =
        "num_output: " + std::to_string(c.O) + " group: " + std::to_string(c.g.group) +
        " kernel_size: " + std::to_string(c.g.k) + " stride: " + std::to_string(c.g.s) +
        " pad: " + std::to_string(c.g.p) + " dilation: " + std::to_string(c.g.d) +
        " bias_term: " + (c.bias ? "true" : "false") +
        " weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' }";
    auto layer = Make("Deconvolution", param);
    Blob x(Shape{2, c.C, 4, 5}), y;
    testing::FillGaussian(&x);
    layer->SetUp({&x}, {&y});
    EXPECT_EQ(layer->blobs()[0]->shape(), (Shape{c.C, c.O / c.g.group, c.g.k, c.g.k}));
    layer->Forward({&x}, {&y});
    const std::vector<double> ref =
        Reference(x, *layer->blobs()[0], c.bias ? layer->blobs()[1].get() : nullptr, c.O, c.g);
    ASSERT_EQ(y.count(), static_cast<int>(ref.size())) << param;
    for (int i = 0; i < y.count(); ++i)
      ASSERT_NEAR(y.cpu_data()[i], ref[i], 1e-4) << param << " " << i;
  }
}

TEST(DeconvolutionLayer, AdjointOfConvolution) {
  // <deconv(x; W), z> == <x, conv(z; W)> when both use the same weight blob (no bias).
  const std::string param =
      "num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 "
      "bias_term: false weight_filler { type: 'gaussian' }";
  auto deconv = Make("Deconvolution", param);
  Blob x(Shape{2, 6, 3, 4}), y;
  testing::FillGaussian(&x);
  deconv->SetUp({&x}, {&y});
  Blob z(y.shape()), cz;
  testing::FillGaussian(&z, 1.f, 7);
  auto conv = Make("Convolution",
                   "num_output: 6 group: 2 kernel_size: 3 stride: 2 pad: 1 "
                   "bias_term: false");
  conv->SetUp({&z}, {&cz});
  ASSERT_EQ(conv->blobs()[0]->shape(), deconv->blobs()[0]->shape());
  conv->blobs()[0]->CopyFrom(*deconv->blobs()[0]);
  deconv->Forward({&x}, {&y});
  conv->Forward({&z}, {&cz});
  ASSERT_EQ(cz.shape(), x.shape());
  double lhs = 0, rhs = 0;
  for (int i = 0; i < y.count(); ++i) lhs += static_cast<double>(y.cpu_data()[i]) * z.cpu_data()[i];
  for (int i = 0; i < x.count(); ++i)
    rhs += static_cast<double>(x.cpu_data()[i]) * cz.cpu_data()[i];
  EXPECT_NEAR(lhs, rhs, 1e-3 * std::max(1.0, std::fabs(lhs)));
}

TEST(DeconvolutionLayer, Gradient) {
  auto layer = Make("Deconvolution",
                    "num_output: 2 group: 1 kernel_size: 3 stride: 2 pad: 1 "
                    "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' }");
  Blob x(Shape{2, 2, 3, 3}), y;
  testing::FillGaussian(&x);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(DeconvolutionLayer, GradientGroupsDilation) {
  auto layer = Make("Deconvolution",
                    "num_output: 4 group: 2 kernel_size: 2 stride: 1 dilation: 2 "
                    "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' }");
  Blob x(Shape{1, 4, 3, 2}), y;
  testing::FillGaussian(&x);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(DeconvolutionLayer, Errors) {
  Blob x(Shape{1, 2, 3, 3}), y;
  auto zero = Make("Deconvolution", "num_output: 2 kernel_size: 0", "up1");
  const std::string e = ErrorOf([&] { zero->SetUp({&x}, {&y}); });
  EXPECT_NE(e.find("'up1'"), std::string::npos) << e;
  EXPECT_NE(e.find("Deconvolution"), std::string::npos) << e;
  EXPECT_NE(e.find("kernel"), std::string::npos) << e;
  Blob one(Shape{1, 2, 1, 1});
  auto shrink = Make("Deconvolution", "num_output: 2 kernel_size: 1 pad: 1", "up1");
  EXPECT_NE(ErrorOf([&] { shrink->SetUp({&one}, {&y}); }).find("not positive"), std::string::npos);
  auto group = Make("Deconvolution", "num_output: 3 group: 2 kernel_size: 2", "up1");
  EXPECT_NE(ErrorOf([&] { group->SetUp({&x}, {&y}); }).find("group"), std::string::npos);
}

}  // namespace
}  // namespace crema
