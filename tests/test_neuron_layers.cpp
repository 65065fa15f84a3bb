// ReLU, Sigmoid, TanH and Dropout: known answers, gradients, in-place equivalence.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

// Runs forward + backward (dtop = fixed pseudo-random values) once with separate bottom and
// top, once in place, and expects identical outputs and input gradients.
void ExpectInPlaceMatches(const std::string& text) {
  Blob x(Shape{2, 3, 4, 5});
  testing::FillGaussian(&x, 1.f, 7);
  std::vector<float> dtop(x.count());
  for (int i = 0; i < x.count(); ++i) dtop[i] = std::sin(0.37f * i) + 0.1f;

  auto separate = MakeLayer(text);
  Blob bottom(x.shape()), top;
  bottom.CopyFrom(x);
  separate->SetUp({&bottom}, {&top});
  Context::reseed(555, 0);
  separate->Forward({&bottom}, {&top});
  std::copy(dtop.begin(), dtop.end(), top.mutable_cpu_diff());
  separate->Backward({&top}, {true}, {&bottom});

  auto inplace = MakeLayer(text);
  Blob blob(x.shape());
  blob.CopyFrom(x);
  inplace->SetUp({&blob}, {&blob});
  Context::reseed(555, 0);
  inplace->Forward({&blob}, {&blob});
  for (int i = 0; i < blob.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_data()[i], top.cpu_data()[i]);
  std::copy(dtop.begin(), dtop.end(), blob.mutable_cpu_diff());
  inplace->Backward({&blob}, {true}, {&blob});
  for (int i = 0; i < blob.count(); ++i)
    EXPECT_FLOAT_EQ(blob.cpu_diff()[i], bottom.cpu_diff()[i]) << "element " << i;
}

// ---------------------------------------------------------------------------------------
// ReLU

TEST(ReLULayer, Forward) {
  auto layer = MakeLayer("name: 'relu' type: 'ReLU'");
  EXPECT_STREQ(layer->type(), "ReLU");
  Blob bottom(Shape{5}), top;
  SetValues(&bottom, {-2.f, -0.5f, 0.f, 1.5f, 3.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ASSERT_EQ(top.shape(), bottom.shape());
  const std::vector<float> expected = {0.f, 0.f, 0.f, 1.5f, 3.f};
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(top.cpu_data()[i], expected[i]);
}

// Caffe's ReLU lets a NaN through (so a diverging net shows loss = nan) and gives +0 for
// x <= 0 with slope 0, -inf included; a leaky ReLU keeps -inf.
TEST(ReLULayer, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float slope : {0.f, 0.25f}) {
    auto layer = MakeLayer(
        "name: 'relu' type: 'ReLU' relu_param { negative_slope: " + std::to_string(slope) + " }");
    Blob bottom(Shape{6}), top;
    SetValues(&bottom, {nan, -inf, inf, -0.f, -1e-30f, -2.f});
    layer->SetUp({&bottom}, {&top});
    layer->Forward({&bottom}, {&top});
    const float* y = top.cpu_data();
    EXPECT_TRUE(std::isnan(y[0])) << "slope " << slope;
    EXPECT_EQ(y[1], slope == 0.f ? 0.f : -inf) << "slope " << slope;
    EXPECT_EQ(y[2], inf);
    if (slope == 0.f) {
      for (int i = 3; i < 6; ++i) EXPECT_EQ(y[i], 0.f) << i;
      for (int i = 1; i < 6; ++i) EXPECT_FALSE(std::signbit(y[i])) << i;  // +0, never -0
    } else {
      EXPECT_EQ(y[5], -0.5f);
    }
  }
}

TEST(ReLULayer, LeakyForwardBackward) {
  auto layer = MakeLayer("name: 'relu' type: 'ReLU' relu_param { negative_slope: 0.1 }");
  Blob bottom(Shape{4}), top;
  SetValues(&bottom, {-2.f, -0.5f, 1.5f, 3.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  const std::vector<float> expected = {-0.2f, -0.05f, 1.5f, 3.f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(top.cpu_data()[i], expected[i]);
  SetValues(&top, {-0.2f, -0.05f, 1.5f, 3.f});
  std::fill(top.mutable_cpu_diff(), top.mutable_cpu_diff() + 4, 2.f);
  layer->Backward({&top}, {true}, {&bottom});
  const std::vector<float> grad = {0.2f, 0.2f, 2.f, 2.f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(bottom.cpu_diff()[i], grad[i]);
}

TEST(ReLULayer, Gradient) {
  auto layer = MakeLayer("name: 'relu' type: 'ReLU'");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 3);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  testing::GradientChecker(opt).Check(layer.get(), {&bottom}, {&top});
}

TEST(ReLULayer, LeakyGradient) {
  auto layer = MakeLayer("name: 'relu' type: 'ReLU' relu_param { negative_slope: 0.01 }");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 4);
  testing::GradientCheckOptions opt;
  opt.kink = 0.f;
  opt.kink_range = 0.02f;
  testing::GradientChecker(opt).Check(layer.get(), {&bottom}, {&top});
}

TEST(ReLULayer, InPlace) {
  ExpectInPlaceMatches("name: 'relu' type: 'ReLU'");
}

TEST(ReLULayer, LeakyInPlace) {
  ExpectInPlaceMatches("name: 'relu' type: 'ReLU' relu_param { negative_slope: 0.2 }");
}

TEST(ReLULayer, LargeParallel) {
  // Large enough for parallel_for to split the work.
  auto layer = MakeLayer("name: 'relu' type: 'ReLU' relu_param { negative_slope: 0.5 }");
  Blob bottom(Shape{300000}), top;
  testing::FillGaussian(&bottom, 1.f, 5);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  for (int i = 0; i < bottom.count(); ++i) {
    const float x = bottom.cpu_data()[i];
    ASSERT_EQ(top.cpu_data()[i], x > 0 ? x : 0.5f * x);
  }
}

TEST(ReLULayer, WrongBlobCount) {
  auto layer = MakeLayer("name: 'relu2' type: 'ReLU'");
  Blob a(Shape{2}), b({2}), top;
  try {
    layer->SetUp({&a, &b}, {&top});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu2"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// Sigmoid

TEST(SigmoidLayer, Forward) {
  auto layer = MakeLayer("name: 'sig' type: 'Sigmoid'");
  EXPECT_STREQ(layer->type(), "Sigmoid");
  Blob bottom(Shape{5}), top;
  SetValues(&bottom, {0.f, 2.f, -2.f, 100.f, -100.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  const std::vector<float> expected = {0.5f, 0.880797078f, 0.119202922f, 1.f, 0.f};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(top.cpu_data()[i], expected[i], 1e-6) << i;
}

TEST(SigmoidLayer, Gradient) {
  auto layer = MakeLayer("name: 'sig' type: 'Sigmoid'");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 2.f, 6);
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(SigmoidLayer, InPlace) {
  ExpectInPlaceMatches("name: 'sig' type: 'Sigmoid'");
}

// ---------------------------------------------------------------------------------------
// TanH

TEST(TanHLayer, Forward) {
  auto layer = MakeLayer("name: 'tanh' type: 'TanH'");
  EXPECT_STREQ(layer->type(), "TanH");
  Blob bottom(Shape{4}), top;
  SetValues(&bottom, {0.f, 0.5f, -1.f, 30.f});
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  const std::vector<float> expected = {0.f, 0.462117157f, -0.761594156f, 1.f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(top.cpu_data()[i], expected[i], 1e-6) << i;
}

TEST(TanHLayer, Gradient) {
  auto layer = MakeLayer("name: 'tanh' type: 'TanH'");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 8);
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(TanHLayer, InPlace) {
  ExpectInPlaceMatches("name: 'tanh' type: 'TanH'");
}

// ---------------------------------------------------------------------------------------
// Dropout

TEST(DropoutLayer, TrainForward) {
  auto layer = MakeLayer("name: 'drop' type: 'Dropout' dropout_param { dropout_ratio: 0.25 }");
  EXPECT_STREQ(layer->type(), "Dropout");
  Blob bottom(Shape{100, 100}), top;
  testing::FillUniform(&bottom, 1.f, 2.f, 9);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  int kept = 0;
  for (int i = 0; i < bottom.count(); ++i) {
    const float x = bottom.cpu_data()[i], y = top.cpu_data()[i];
    if (y == 0.f) continue;
    ++kept;
    ASSERT_FLOAT_EQ(y, x / 0.75f) << i;
  }
  // 10000 Bernoulli(0.75) draws: 7500 +- 43 (one sigma).
  EXPECT_GT(kept, 7300);
  EXPECT_LT(kept, 7700);
}

TEST(DropoutLayer, TestPhaseIsIdentity) {
  auto layer = MakeLayer("name: 'drop' type: 'Dropout' phase: TEST");
  Blob bottom(Shape{3, 4}), top;
  testing::FillGaussian(&bottom, 1.f, 10);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  for (int i = 0; i < bottom.count(); ++i) EXPECT_EQ(top.cpu_data()[i], bottom.cpu_data()[i]);
  for (int i = 0; i < top.count(); ++i) top.mutable_cpu_diff()[i] = 0.5f * i;
  layer->Backward({&top}, {true}, {&bottom});
  for (int i = 0; i < bottom.count(); ++i) EXPECT_EQ(bottom.cpu_diff()[i], 0.5f * i);
}

TEST(DropoutLayer, BackwardUsesMask) {
  auto layer = MakeLayer("name: 'drop' type: 'Dropout'");
  Blob bottom(Shape{1000}), top;
  testing::FillUniform(&bottom, 1.f, 2.f, 11);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  std::fill(top.mutable_cpu_diff(), top.mutable_cpu_diff() + top.count(), 1.f);
  layer->Backward({&top}, {true}, {&bottom});
  for (int i = 0; i < bottom.count(); ++i)
    EXPECT_EQ(bottom.cpu_diff()[i], top.cpu_data()[i] == 0.f ? 0.f : 2.f) << i;
}

TEST(DropoutLayer, Gradient) {
  auto layer = MakeLayer("name: 'drop' type: 'Dropout' phase: TRAIN");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 12);
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(DropoutLayer, InPlace) {
  ExpectInPlaceMatches("name: 'drop' type: 'Dropout' dropout_param { dropout_ratio: 0.3 }");
}

TEST(DropoutLayer, BadRatio) {
  auto layer = MakeLayer("name: 'drop9' type: 'Dropout' dropout_param { dropout_ratio: 1.0 }");
  Blob bottom(Shape{4}), top;
  try {
    layer->SetUp({&bottom}, {&top});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("drop9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dropout_ratio"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace crema
