// Softmax: known answers (also for huge inputs), a non-trivial axis, gradients.
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

using testing::MakeLayer;

using Shape = std::vector<int>;

TEST(SoftmaxLayer, ForwardKnownValues) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax'");
  EXPECT_STREQ(layer->type(), "Softmax");
  Blob bottom(Shape{2, 3}), top;
  const float x[] = {1.f, 2.f, 3.f, 1000.f, 1001.f, 1002.f};
  std::copy(x, x + 6, bottom.mutable_cpu_data());
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ASSERT_EQ(top.shape(), bottom.shape());
  const float expected[] = {0.0900305732f, 0.2447284711f, 0.6652409558f};
  for (int n = 0; n < 2; ++n)  // the second row must not overflow
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(top.cpu_data()[n * 3 + c], expected[c], 1e-6);
}

// Reference: a plain loop over (outer, inner) positions.
void ExpectSoftmaxAlong(const Blob& bottom, const Blob& top, int axis) {
  const int outer = bottom.count(0, axis), channels = bottom.shape(axis),
            inner = bottom.count(axis + 1);
  for (int o = 0; o < outer; ++o) {
    for (int i = 0; i < inner; ++i) {
      double sum = 0;
      for (int c = 0; c < channels; ++c)
        sum += std::exp(static_cast<double>(bottom.cpu_data()[(o * channels + c) * inner + i]));
      for (int c = 0; c < channels; ++c) {
        const int idx = (o * channels + c) * inner + i;
        const double expected = std::exp(bottom.cpu_data()[idx]) / sum;
        // float sums over up to 1000 classes: a few ulps of relative error
        EXPECT_NEAR(top.cpu_data()[idx], expected, 1e-6 + 4e-6 * expected) << idx;
      }
    }
  }
}

TEST(SoftmaxLayer, ForwardSpatial) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax'");
  Blob bottom(Shape{2, 4, 3, 2}), top;
  testing::FillGaussian(&bottom, 2.f, 21);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ExpectSoftmaxAlong(bottom, top, 1);
}

TEST(SoftmaxLayer, ForwardNegativeAxis) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax' softmax_param { axis: -1 }");
  Blob bottom(Shape{3, 2, 5}), top;
  testing::FillGaussian(&bottom, 2.f, 22);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ExpectSoftmaxAlong(bottom, top, 2);
}

TEST(SoftmaxLayer, ForwardAxisZero) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax' softmax_param { axis: 0 }");
  Blob bottom(Shape{4, 3}), top;
  testing::FillGaussian(&bottom, 2.f, 23);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ExpectSoftmaxAlong(bottom, top, 0);
}

TEST(SoftmaxLayer, ForwardLargeParallel) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax'");
  Blob bottom(Shape{64, 1000}), top;
  testing::FillGaussian(&bottom, 3.f, 24);
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  ExpectSoftmaxAlong(bottom, top, 1);
}

TEST(SoftmaxLayer, Gradient) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax'");
  Blob bottom(Shape{2, 5}), top;
  testing::FillGaussian(&bottom, 1.f, 25);
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(SoftmaxLayer, GradientSpatial) {
  auto layer = MakeLayer("name: 'prob' type: 'Softmax'");
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 26);
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(SoftmaxLayer, InPlace) {
  auto ref = MakeLayer("name: 'prob' type: 'Softmax'");
  auto inplace = MakeLayer("name: 'prob' type: 'Softmax'");
  Blob bottom(Shape{2, 3, 2}), top, blob(Shape{2, 3, 2});
  testing::FillGaussian(&bottom, 1.f, 27);
  blob.CopyFrom(bottom);
  ref->SetUp({&bottom}, {&top});
  ref->Forward({&bottom}, {&top});
  inplace->SetUp({&blob}, {&blob});
  inplace->Forward({&blob}, {&blob});
  for (int i = 0; i < top.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_data()[i], top.cpu_data()[i]);
  for (int i = 0; i < top.count(); ++i) {
    top.mutable_cpu_diff()[i] = 0.1f * i - 0.5f;
    blob.mutable_cpu_diff()[i] = 0.1f * i - 0.5f;
  }
  ref->Backward({&top}, {true}, {&bottom});
  inplace->Backward({&blob}, {true}, {&blob});
  for (int i = 0; i < top.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_diff()[i], bottom.cpu_diff()[i]);
}

TEST(SoftmaxLayer, BadAxis) {
  auto layer = MakeLayer("name: 'prob7' type: 'Softmax' softmax_param { axis: 2 }");
  Blob bottom(Shape{2, 3}), top;
  try {
    layer->SetUp({&bottom}, {&top});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prob7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace crema
