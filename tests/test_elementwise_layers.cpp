// AbsVal, BNLL, Clip, ELU, Exp, Log, Power, PReLU, Swish, Threshold: known answers,
// gradient checks (away from kinks), in-place equivalence, bad parameters.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
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

using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

// Runs the layer forward on `input` and returns the top.
std::vector<float> ForwardOf(const std::string& text, const Shape& shape,
                             const std::vector<float>& input) {
  auto layer = MakeLayer(text);
  Blob bottom(shape), top;
  SetValues(&bottom, input);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  EXPECT_EQ(top.shape(), bottom.shape());
  return std::vector<float>(top.cpu_data(), top.cpu_data() + top.count());
}

// Moves every element that lies within `range` of a kink 3 * range away from it.
void AvoidKinks(Blob* b, const std::vector<float>& kinks, float range) {
  float* x = b->mutable_cpu_data();
  for (int i = 0; i < b->count(); ++i)
    for (float k : kinks)
      if (std::fabs(x[i] - k) <= range) x[i] = x[i] >= k ? k + 3 * range : k - 3 * range;
}

void Check(const std::string& text, Blob* bottom, testing::GradientCheckOptions opt = {}) {
  auto layer = MakeLayer(text);
  Blob top;
  testing::GradientChecker(opt).Check(layer.get(), {bottom}, {&top});
}

// Runs forward + backward once with separate bottom and top and once in place, on the same
// input (transformed by `prepare`) and top gradient, and expects identical outputs, input
// gradients and parameter gradients.
void ExpectInPlaceMatches(const std::string& text,
                          const std::function<void(Blob*)>& prepare = nullptr) {
  Blob x(Shape{2, 3, 4, 5});
  testing::FillGaussian(&x, 1.f, 7);
  if (prepare) prepare(&x);
  std::vector<float> dtop(x.count());
  for (int i = 0; i < x.count(); ++i) dtop[i] = std::sin(0.37f * i) + 0.1f;

  auto separate = MakeLayer(text);
  Blob bottom(x.shape()), top;
  bottom.CopyFrom(x);
  Context::reseed(77, 0);  // same random parameter fill for both layers
  separate->SetUp({&bottom}, {&top});
  separate->Forward({&bottom}, {&top});
  std::copy(dtop.begin(), dtop.end(), top.mutable_cpu_diff());
  for (auto& p : separate->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  separate->Backward({&top}, {true}, {&bottom});

  auto inplace = MakeLayer(text);
  Blob blob(x.shape());
  blob.CopyFrom(x);
  Context::reseed(77, 0);
  inplace->SetUp({&blob}, {&blob});
  inplace->Forward({&blob}, {&blob});
  for (int i = 0; i < blob.count(); ++i)
    ASSERT_FLOAT_EQ(blob.cpu_data()[i], top.cpu_data()[i]) << text << " element " << i;
  std::copy(dtop.begin(), dtop.end(), blob.mutable_cpu_diff());
  for (auto& p : inplace->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  inplace->Backward({&blob}, {true}, {&blob});
  for (int i = 0; i < blob.count(); ++i)
    ASSERT_FLOAT_EQ(blob.cpu_diff()[i], bottom.cpu_diff()[i]) << text << " element " << i;
  ASSERT_EQ(inplace->blobs().size(), separate->blobs().size());
  for (size_t p = 0; p < inplace->blobs().size(); ++p)
    for (int i = 0; i < inplace->blobs()[p]->count(); ++i)
      EXPECT_NEAR(inplace->blobs()[p]->cpu_diff()[i], separate->blobs()[p]->cpu_diff()[i], 1e-5)
          << text << " param " << p << " element " << i;
}

// Expects constructing and setting up the layer on a 2x3 bottom to throw crema::Error whose
// message names the layer and contains `part`.
void ExpectSetUpError(const std::string& text, const std::string& part, Shape shape = {2, 3}) {
  auto layer = MakeLayer(text);
  Blob bottom(shape), top;
  testing::FillGaussian(&bottom);
  try {
    layer->SetUp({&bottom}, {&top});
    FAIL() << "expected crema::Error for " << text;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'bad'"), std::string::npos) << message;
    EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

// Runs forward and backward on a large blob with one thread and with two, and expects the
// same results (parallel_for splits the work only in the second run).
void ExpectThreadsAgree(const std::string& text, const std::function<void(Blob*)>& prepare) {
  std::vector<float> out[2], grad[2];
  for (int run = 0; run < 2; ++run) {
    Context::set_num_threads(run + 1);
    auto layer = MakeLayer(text);
    Blob bottom(Shape{4, 8, 50, 50}), top;
    testing::FillGaussian(&bottom, 1.f, 11);
    prepare(&bottom);
    layer->SetUp({&bottom}, {&top});
    layer->Forward({&bottom}, {&top});
    for (int i = 0; i < top.count(); ++i) top.mutable_cpu_diff()[i] = std::cos(0.1f * i);
    layer->Backward({&top}, {true}, {&bottom});
    out[run].assign(top.cpu_data(), top.cpu_data() + top.count());
    grad[run].assign(bottom.cpu_diff(), bottom.cpu_diff() + bottom.count());
  }
  Context::set_num_threads(1);
  EXPECT_EQ(out[0], out[1]) << text;
  EXPECT_EQ(grad[0], grad[1]) << text;
}

// ---------------------------------------------------------------------------------------
// AbsVal

TEST(AbsValLayer, Forward) {
  auto y = ForwardOf("name: 'abs' type: 'AbsVal'", {5}, {-2.f, -0.5f, 0.f, 1.5f, 3.f});
  EXPECT_EQ(y, (std::vector<float>{2.f, 0.5f, 0.f, 1.5f, 3.f}));
}

TEST(AbsValLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 3);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  Check("name: 'abs' type: 'AbsVal'", &bottom, opt);
}

TEST(AbsValLayer, InPlaceIsRefused) {
  auto layer = MakeLayer("name: 'bad' type: 'AbsVal'");
  Blob blob(Shape{3});
  try {
    layer->SetUp({&blob}, {&blob});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bad'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in place"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// BNLL

TEST(BNLLLayer, Forward) {
  const std::vector<float> x = {-100.f, -2.f, 0.f, 0.5f, 3.f, 100.f};
  auto y = ForwardOf("name: 'bnll' type: 'BNLL'", {6}, x);
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(y[i], std::log1p(std::exp(static_cast<double>(x[i]))), 1e-6) << i;
  EXPECT_FLOAT_EQ(y[5], 100.f);
  EXPECT_GT(y[0], 0.f);
}

TEST(BNLLLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 2.f, 4);
  Check("name: 'bnll' type: 'BNLL'", &bottom);
}

TEST(BNLLLayer, InPlace) {
  ExpectInPlaceMatches("name: 'bnll' type: 'BNLL'");
}

// ---------------------------------------------------------------------------------------
// Clip

TEST(ClipLayer, Forward) {
  auto y = ForwardOf("name: 'clip' type: 'Clip' clip_param { min: -1 max: 2 }", {6},
                     {-3.f, -1.f, -0.5f, 1.f, 2.f, 7.f});
  EXPECT_EQ(y, (std::vector<float>{-1.f, -1.f, -0.5f, 1.f, 2.f, 2.f}));
}

TEST(ClipLayer, BackwardIncludesTheBounds) {
  auto layer = MakeLayer("name: 'clip' type: 'Clip' clip_param { min: -1 max: 2 }");
  Blob bottom(Shape{6}), top;
  SetValues(&bottom, {-3.f, -1.f, -0.5f, 1.f, 2.f, 7.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  std::fill(top.mutable_cpu_diff(), top.mutable_cpu_diff() + 6, 3.f);
  layer->Backward({&top}, {true}, {&bottom});
  const std::vector<float> expected = {0.f, 3.f, 3.f, 3.f, 3.f, 0.f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(bottom.cpu_diff()[i], expected[i]) << i;
}

TEST(ClipLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 5);
  AvoidKinks(&bottom, {-0.5f, 0.8f}, 0.02f);
  Check("name: 'clip' type: 'Clip' clip_param { min: -0.5 max: 0.8 }", &bottom);
}

TEST(ClipLayer, InPlace) {
  // Inputs exactly on the bounds: in place must still pass their gradient (as Caffe does
  // out of place), which needs the saved input.
  ExpectInPlaceMatches("name: 'clip' type: 'Clip' clip_param { min: -0.5 max: 0.5 }", [](Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); i += 7) x[i] = i % 2 ? 0.5f : -0.5f;
  });
}

TEST(ClipLayer, BadParameters) {
  ExpectSetUpError("name: 'bad' type: 'Clip' clip_param { min: 2 max: 1 }", "min");
  ExpectSetUpError("name: 'bad' type: 'Clip'", "clip_param");
}

// ---------------------------------------------------------------------------------------
// ELU

TEST(ELULayer, Forward) {
  const std::vector<float> x = {-3.f, -0.5f, 0.f, 0.5f, 2.f};
  auto y = ForwardOf("name: 'elu' type: 'ELU' elu_param { alpha: 0.5 }", {5}, x);
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(y[i], x[i] > 0 ? x[i] : 0.5 * (std::exp(static_cast<double>(x[i])) - 1), 1e-7);
}

TEST(ELULayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 6);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  Check("name: 'elu' type: 'ELU'", &bottom, opt);
  Check("name: 'elu' type: 'ELU' elu_param { alpha: 0.3 }", &bottom, opt);
}

TEST(ELULayer, InPlace) {
  ExpectInPlaceMatches("name: 'elu' type: 'ELU' elu_param { alpha: 0.7 }");
  ExpectInPlaceMatches("name: 'elu' type: 'ELU' elu_param { alpha: -0.7 }");
}

// ---------------------------------------------------------------------------------------
// Exp

TEST(ExpLayer, Forward) {
  const std::vector<float> x = {-1.f, 0.f, 0.5f, 2.f};
  auto y = ForwardOf("name: 'exp' type: 'Exp'", {4}, x);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], std::exp(x[i]), 1e-6 * std::exp(x[i]));
  // 2 ^ (0.5 + 3 x)
  y = ForwardOf("name: 'exp' type: 'Exp' exp_param { base: 2 scale: 3 shift: 0.5 }", {4}, x);
  for (int i = 0; i < 4; ++i) {
    const double expected = std::pow(2.0, 0.5 + 3.0 * x[i]);
    EXPECT_NEAR(y[i], expected, 1e-5 * expected) << i;
  }
}

TEST(ExpLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 7);
  Check("name: 'exp' type: 'Exp'", &bottom);
  Check("name: 'exp' type: 'Exp' exp_param { base: 3 scale: 0.7 shift: -0.4 }", &bottom);
  Check("name: 'exp' type: 'Exp' exp_param { base: 0.5 scale: -1.2 shift: 1 }", &bottom);
}

TEST(ExpLayer, InPlace) {
  ExpectInPlaceMatches("name: 'exp' type: 'Exp' exp_param { base: 2 scale: 0.5 shift: 1 }");
}

TEST(ExpLayer, BadBase) {
  ExpectSetUpError("name: 'bad' type: 'Exp' exp_param { base: 0 }", "base");
  ExpectSetUpError("name: 'bad' type: 'Exp' exp_param { base: -2 }", "base");
}

// ---------------------------------------------------------------------------------------
// Log

TEST(LogLayer, Forward) {
  const std::vector<float> x = {0.25f, 1.f, 2.f, 10.f};
  auto y = ForwardOf("name: 'log' type: 'Log'", {4}, x);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], std::log(x[i]), 1e-6) << i;
  // log2(1 + 2 x)
  y = ForwardOf("name: 'log' type: 'Log' log_param { base: 2 scale: 2 shift: 1 }", {4}, x);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], std::log2(1.0 + 2.0 * x[i]), 1e-5) << i;
}

TEST(LogLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillUniform(&bottom, 0.5f, 2.f, 8);
  Check("name: 'log' type: 'Log'", &bottom);
  Check("name: 'log' type: 'Log' log_param { base: 10 scale: 1.5 shift: 0.3 }", &bottom);
  Check("name: 'log' type: 'Log' log_param { base: 0.5 scale: -0.5 shift: 2 }", &bottom);
}

TEST(LogLayer, InPlace) {
  ExpectInPlaceMatches("name: 'log' type: 'Log' log_param { base: 3 scale: 2 shift: 0.5 }",
                       [](Blob* b) {
                         float* x = b->mutable_cpu_data();
                         for (int i = 0; i < b->count(); ++i) x[i] = std::fabs(x[i]) + 0.1f;
                       });
}

TEST(LogLayer, BadBase) {
  ExpectSetUpError("name: 'bad' type: 'Log' log_param { base: 0 }", "base");
  ExpectSetUpError("name: 'bad' type: 'Log' log_param { base: -3 }", "base");
  ExpectSetUpError("name: 'bad' type: 'Log' log_param { base: 1 }", "base");
  // base -1 means e: accepted.
  auto y = ForwardOf("name: 'log' type: 'Log' log_param { base: -1 }", {1}, {std::exp(2.f)});
  EXPECT_NEAR(y[0], 2.f, 1e-6);
}

// ---------------------------------------------------------------------------------------
// Power

TEST(PowerLayer, Forward) {
  const std::vector<float> x = {0.5f, 1.f, 2.f, 3.f};
  auto y =
      ForwardOf("name: 'pow' type: 'Power' power_param { power: 3 scale: 2 shift: 1 }", {4}, x);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], std::pow(1.f + 2.f * x[i], 3.f)) << i;
  y = ForwardOf("name: 'pow' type: 'Power' power_param { power: 0.5 }", {4}, x);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], std::sqrt(x[i])) << i;
  y = ForwardOf("name: 'pow' type: 'Power' power_param { power: 0 scale: 3 shift: 2 }", {4}, x);
  EXPECT_EQ(y, std::vector<float>(4, 1.f));
  // scale 0: the constant shift ^ power.
  y = ForwardOf("name: 'pow' type: 'Power' power_param { power: 2 scale: 0 shift: 3 }", {4}, x);
  EXPECT_EQ(y, std::vector<float>(4, 9.f));
  y = ForwardOf("name: 'pow' type: 'Power' power_param { power: 1 scale: -2 shift: 1 }", {4}, x);
  EXPECT_EQ(y, (std::vector<float>{0.f, -1.f, -3.f, -5.f}));
}

TEST(PowerLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillUniform(&bottom, 0.2f, 1.5f, 9);  // shift + scale * x stays positive below
  for (const char* settings :
       {"power: 0.37 scale: 0.83 shift: 0.4", "power: 0 scale: 0.83",
        "power: 1 scale: 0.83 shift: -2.4", "power: 2 scale: -0.7",
        "power: 2 scale: 0.83 shift: 0.5", "power: 3 scale: 0.5 shift: 1",
        "power: -1.5 scale: 1 shift: 0.5", "power: 2.5 scale: 0 shift: 2", "power: 0.5"}) {
    SCOPED_TRACE(settings);
    Check(std::string("name: 'pow' type: 'Power' power_param { ") + settings + " }", &bottom);
  }
}

TEST(PowerLayer, ZeroBaseHasAFiniteGradient) {
  // power 3 at shift + scale * x = 0: the derivative is 0 (not 0 / 0).
  auto layer = MakeLayer("name: 'pow' type: 'Power' power_param { power: 3 }");
  Blob bottom(Shape{2}), top;
  SetValues(&bottom, {0.f, 2.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  std::fill(top.mutable_cpu_diff(), top.mutable_cpu_diff() + 2, 1.f);
  layer->Backward({&top}, {true}, {&bottom});
  EXPECT_EQ(bottom.cpu_diff()[0], 0.f);
  EXPECT_FLOAT_EQ(bottom.cpu_diff()[1], 12.f);
}

TEST(PowerLayer, InPlace) {
  auto positive = [](Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); ++i) x[i] = std::fabs(x[i]) + 0.1f;
  };
  ExpectInPlaceMatches("name: 'pow' type: 'Power' power_param { power: 1.7 scale: 2 shift: 1 }",
                       positive);
  ExpectInPlaceMatches("name: 'pow' type: 'Power' power_param { power: 2 scale: 2 shift: 1 }");
  ExpectInPlaceMatches("name: 'pow' type: 'Power' power_param { power: 1 scale: 2 shift: 1 }");
  ExpectInPlaceMatches("name: 'pow' type: 'Power' power_param { power: 0 }");
}

// ---------------------------------------------------------------------------------------
// PReLU

TEST(PReLULayer, ForwardDefaultSlope) {
  auto layer = MakeLayer("name: 'prelu' type: 'PReLU'");
  Blob bottom(Shape{1, 2, 2}), top;
  SetValues(&bottom, {-4.f, 1.f, 2.f, -8.f});
  layer->SetUp({&bottom}, {&top});
  ASSERT_EQ(layer->blobs().size(), 1u);
  EXPECT_EQ(layer->blobs()[0]->shape(), Shape{2});
  EXPECT_EQ(layer->blobs()[0]->cpu_data()[0], 0.25f);
  layer->Forward({&bottom}, {&top});
  const std::vector<float> expected = {-1.f, 1.f, 2.f, -2.f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(top.cpu_data()[i], expected[i]) << i;
}

TEST(PReLULayer, ForwardPerChannelAgainstReference) {
  auto layer = MakeLayer(
      "name: 'prelu' type: 'PReLU' prelu_param { filler { type: 'uniform' min: -1 max: 1 } }");
  Blob bottom(Shape{2, 3, 2, 3}), top;
  testing::FillGaussian(&bottom, 1.f, 12);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  const float* a = layer->blobs()[0]->cpu_data();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int s = 0; s < 6; ++s) {
        const int i = (n * 3 + c) * 6 + s;
        const float x = bottom.cpu_data()[i];
        EXPECT_FLOAT_EQ(top.cpu_data()[i], x > 0 ? x : a[c] * x) << i;
      }
}

TEST(PReLULayer, ChannelShared) {
  auto layer = MakeLayer("name: 'prelu' type: 'PReLU' prelu_param { channel_shared: true }");
  Blob bottom(Shape{2, 3, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 13);
  layer->SetUp({&bottom}, {&top});
  EXPECT_EQ(layer->blobs()[0]->num_axes(), 0);
  EXPECT_EQ(layer->blobs()[0]->count(), 1);
  layer->Forward({&bottom}, {&top});
  for (int i = 0; i < bottom.count(); ++i) {
    const float x = bottom.cpu_data()[i];
    EXPECT_FLOAT_EQ(top.cpu_data()[i], x > 0 ? x : 0.25f * x);
  }
}

TEST(PReLULayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 14);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  Check("name: 'prelu' type: 'PReLU' prelu_param { filler { type: 'gaussian' std: 0.5 } }", &bottom,
        opt);
}

TEST(PReLULayer, GradientChannelShared) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.f, 15);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  Check(
      "name: 'prelu' type: 'PReLU' prelu_param { channel_shared: true "
      "filler { type: 'constant' value: -0.3 } }",
      &bottom, opt);
}

TEST(PReLULayer, SlopeGradientAccumulates) {
  auto layer = MakeLayer("name: 'prelu' type: 'PReLU'");
  Blob bottom(Shape{1, 1, 2}), top;
  SetValues(&bottom, {-2.f, 3.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  std::fill(top.mutable_cpu_diff(), top.mutable_cpu_diff() + 2, 1.5f);
  layer->blobs()[0]->mutable_cpu_diff()[0] = 10.f;
  layer->Backward({&top}, {true}, {&bottom});
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_diff()[0], 10.f + 1.5f * -2.f);
  EXPECT_FLOAT_EQ(bottom.cpu_diff()[0], 1.5f * 0.25f);
  EXPECT_FLOAT_EQ(bottom.cpu_diff()[1], 1.5f);
}

TEST(PReLULayer, InPlace) {
  ExpectInPlaceMatches("name: 'prelu' type: 'PReLU' prelu_param { filler { type: 'uniform' } }");
  ExpectInPlaceMatches("name: 'prelu' type: 'PReLU' prelu_param { channel_shared: true }");
}

TEST(PReLULayer, LoadedSlopesMustMatchTheChannels) {
  // Weights stored in the LayerParameter (a .caffemodel read as a net) with 3 slopes, but
  // the bottom has 4 channels.
  ExpectSetUpError(
      "name: 'bad' type: 'PReLU' blobs { shape { dim: 3 } data: 0.1 data: 0.2 data: 0.3 }",
      "channels", {2, 4, 3});
  ExpectSetUpError(
      "name: 'bad' type: 'PReLU' prelu_param { channel_shared: true } "
      "blobs { shape { dim: 3 } data: 0.1 data: 0.2 data: 0.3 }",
      "channel_shared", {2, 3, 3});
  ExpectSetUpError("name: 'bad' type: 'PReLU'", "2 axes", {6});
  // Matching weights load.
  auto layer = MakeLayer(
      "name: 'prelu' type: 'PReLU' blobs { shape { dim: 3 } data: 0.1 data: 0.2 data: 0.3 }");
  Blob bottom(Shape{1, 3}), top;
  SetValues(&bottom, {-1.f, -1.f, -1.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  EXPECT_FLOAT_EQ(top.cpu_data()[2], -0.3f);
}

// ---------------------------------------------------------------------------------------
// Swish

TEST(SwishLayer, Forward) {
  const std::vector<float> x = {-3.f, -0.5f, 0.f, 0.5f, 2.f};
  auto y = ForwardOf("name: 'swish' type: 'Swish'", {5}, x);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y[i], x[i] / (1 + std::exp(-double(x[i]))), 1e-6);
  y = ForwardOf("name: 'swish' type: 'Swish' swish_param { beta: 1.5 }", {5}, x);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y[i], x[i] / (1 + std::exp(-1.5 * x[i])), 1e-6);
}

TEST(SwishLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2});
  testing::FillGaussian(&bottom, 1.5f, 16);
  Check("name: 'swish' type: 'Swish'", &bottom);
  Check("name: 'swish' type: 'Swish' swish_param { beta: 2.5 }", &bottom);
  Check("name: 'swish' type: 'Swish' swish_param { beta: -0.5 }", &bottom);
}

TEST(SwishLayer, InPlace) {
  ExpectInPlaceMatches("name: 'swish' type: 'Swish' swish_param { beta: 1.3 }");
}

// ---------------------------------------------------------------------------------------
// Threshold

TEST(ThresholdLayer, Forward) {
  auto y = ForwardOf("name: 'th' type: 'Threshold' threshold_param { threshold: 0.5 }", {5},
                     {-1.f, 0.5f, 0.50001f, 2.f, 0.f});
  EXPECT_EQ(y, (std::vector<float>{0.f, 0.f, 1.f, 1.f, 0.f}));
  y = ForwardOf("name: 'th' type: 'Threshold'", {3}, {-1.f, 0.f, 1e-6f});
  EXPECT_EQ(y, (std::vector<float>{0.f, 0.f, 1.f}));
}

TEST(ThresholdLayer, BackwardIsAnError) {
  auto layer = MakeLayer("name: 'bad' type: 'Threshold'");
  Blob bottom(Shape{3}), top;
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  layer->Backward({&top}, {false}, {&bottom});  // nothing asked: fine
  EXPECT_THROW(layer->Backward({&top}, {true}, {&bottom}), Error);
}

// ---------------------------------------------------------------------------------------
// Large arrays: the threaded path gives the same answers as the serial one.

TEST(ElementwiseLayers, ThreadsAgree) {
  auto none = [](Blob*) {};
  auto positive = [](Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); ++i) x[i] = std::fabs(x[i]) + 0.1f;
  };
  ExpectThreadsAgree("name: 'a' type: 'AbsVal'", none);
  ExpectThreadsAgree("name: 'a' type: 'BNLL'", none);
  ExpectThreadsAgree("name: 'a' type: 'Clip' clip_param { min: -1 max: 1 }", none);
  ExpectThreadsAgree("name: 'a' type: 'ELU'", none);
  ExpectThreadsAgree("name: 'a' type: 'Exp' exp_param { base: 2 shift: 1 }", none);
  ExpectThreadsAgree("name: 'a' type: 'Log'", positive);
  ExpectThreadsAgree("name: 'a' type: 'Power' power_param { power: 1.5 shift: 1 }", positive);
  ExpectThreadsAgree("name: 'a' type: 'PReLU'", none);
  ExpectThreadsAgree("name: 'a' type: 'Swish'", none);
}

}  // namespace
}  // namespace crema
