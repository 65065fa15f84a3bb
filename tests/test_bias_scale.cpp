// Bias and Scale: broadcasting along axis / num_axes, learned parameters or a second
// bottom, Scale's fused bias term (Caffe's [scale, bias] blob layout), gradients, in place,
// bad shapes.
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

// The index into a parameter of shape x.shape[axis, axis + p_axes) for flat index i of x.
int ParamIndex(const Blob& x, int axis, int p_axes, int i) {
  const int inner = x.count(axis + p_axes);
  const int dim = x.count(axis, axis + p_axes);
  return (i / inner) % dim;
}

void ExpectError(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    FAIL() << "expected crema::Error containing '" << part << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'bad'"), std::string::npos) << message;
    EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

// ---------------------------------------------------------------------------------------
// Bias

TEST(BiasLayer, ForwardLearned) {
  auto layer =
      MakeLayer("name: 'bias' type: 'Bias' bias_param { filler { type: 'gaussian' std: 1 } }");
  EXPECT_STREQ(layer->type(), "Bias");
  Blob x(Shape{2, 3, 4}), y;
  testing::FillGaussian(&x, 1.f, 1);
  layer->SetUp({&x}, {&y});
  ASSERT_EQ(layer->blobs().size(), 1u);
  EXPECT_EQ(layer->blobs()[0]->shape(), Shape{3});
  layer->Forward({&x}, {&y});
  const float* b = layer->blobs()[0]->cpu_data();
  for (int i = 0; i < x.count(); ++i)
    EXPECT_FLOAT_EQ(y.cpu_data()[i], x.cpu_data()[i] + b[ParamIndex(x, 1, 1, i)]) << i;
}

TEST(BiasLayer, DefaultFillerIsZero) {
  auto layer = MakeLayer("name: 'bias' type: 'Bias' bias_param { axis: 0 num_axes: -1 }");
  Blob x(Shape{2, 3}), y;
  layer->SetUp({&x}, {&y});
  EXPECT_EQ(layer->blobs()[0]->shape(), (Shape{2, 3}));
  EXPECT_EQ(layer->blobs()[0]->asum_data(), 0.f);
}

TEST(BiasLayer, ForwardSecondBottomAxes) {
  struct Case {
    std::string param;
    Shape bias_shape;
    int axis;
  };
  for (const Case& c :
       {Case{"", {3, 4}, 1}, Case{"bias_param { axis: 0 }", {2}, 0},
        Case{"bias_param { axis: -1 }", {5}, 3}, Case{"bias_param { axis: 2 }", {4, 5}, 2},
        Case{"bias_param { axis: 3 }", {}, 0}}) {
    SCOPED_TRACE(c.param);
    auto layer = MakeLayer("name: 'bias' type: 'Bias' " + c.param);
    Blob x(Shape{2, 3, 4, 5}), b(c.bias_shape), y;
    testing::FillGaussian(&x, 1.f, 2);
    testing::FillGaussian(&b, 1.f, 3);
    layer->SetUp({&x, &b}, {&y});
    EXPECT_TRUE(layer->blobs().empty());
    layer->Forward({&x, &b}, {&y});
    for (int i = 0; i < x.count(); ++i)
      ASSERT_FLOAT_EQ(y.cpu_data()[i],
                      x.cpu_data()[i] + b.cpu_data()[ParamIndex(x, c.axis, b.num_axes(), i)]);
  }
}

TEST(BiasLayer, GradientLearned) {
  auto layer = MakeLayer("name: 'bias' type: 'Bias' bias_param { filler { type: 'gaussian' } }");
  Blob x(Shape{2, 3, 2, 2}), y;
  testing::FillGaussian(&x, 1.f, 4);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(BiasLayer, GradientSecondBottom) {
  auto layer = MakeLayer("name: 'bias' type: 'Bias' bias_param { axis: 2 num_axes: 2 }");
  Blob x(Shape{2, 3, 2, 2}), b(Shape{2, 2}), y;
  testing::FillGaussian(&x, 1.f, 5);
  testing::FillGaussian(&b, 1.f, 6);
  testing::GradientChecker().Check(layer.get(), {&x, &b}, {&y});
}

TEST(BiasLayer, InPlace) {
  auto layer =
      MakeLayer("name: 'bias' type: 'Bias' bias_param { filler { type: 'constant' value: 2 } }");
  Blob x(Shape{2, 3}), original(Shape{2, 3});
  testing::FillGaussian(&x, 1.f, 7);
  original.CopyFrom(x);
  layer->SetUp({&x}, {&x});
  layer->Forward({&x}, {&x});
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(x.cpu_data()[i], original.cpu_data()[i] + 2.f);
  for (int i = 0; i < 6; ++i) x.mutable_cpu_diff()[i] = static_cast<float>(i);
  cpu_set(3, 0.f, layer->blobs()[0]->mutable_cpu_diff());
  layer->Backward({&x}, {true}, {&x});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(x.cpu_diff()[i], static_cast<float>(i));
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_diff()[0], 0.f + 3.f);
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_diff()[2], 2.f + 5.f);
}

TEST(BiasLayer, BadShapes) {
  Blob x(Shape{2, 3, 4}), wrong(Shape{4}), y;
  ExpectError(
      [&] {
        MakeLayer("name: 'bad' type: 'Bias'")->SetUp({&x, &wrong}, {&y});
      },
      "does not match");
  ExpectError(
      [&] { MakeLayer("name: 'bad' type: 'Bias' bias_param { axis: 3 }")->SetUp({&x}, {&y}); },
      "axis 3");
  ExpectError(
      [&] { MakeLayer("name: 'bad' type: 'Bias' bias_param { num_axes: 3 }")->SetUp({&x}, {&y}); },
      "past the end");
  ExpectError(
      [&] { MakeLayer("name: 'bad' type: 'Bias' bias_param { num_axes: -2 }")->SetUp({&x}, {&y}); },
      "num_axes");
}

// ---------------------------------------------------------------------------------------
// Scale

TEST(ScaleLayer, DefaultIsIdentityWithCaffeBlobLayout) {
  auto layer = MakeLayer("name: 'scale' type: 'Scale' scale_param { bias_term: true }");
  EXPECT_STREQ(layer->type(), "Scale");
  Blob x(Shape{2, 3, 2}), y;
  testing::FillGaussian(&x, 1.f, 8);
  layer->SetUp({&x}, {&y});
  ASSERT_EQ(layer->blobs().size(), 2u);  // [scale, bias]
  EXPECT_EQ(layer->blobs()[0]->shape(), Shape{3});
  EXPECT_EQ(layer->blobs()[1]->shape(), Shape{3});
  EXPECT_EQ(layer->blobs()[0]->cpu_data()[1], 1.f);
  EXPECT_EQ(layer->blobs()[1]->cpu_data()[1], 0.f);
  layer->Forward({&x}, {&y});
  for (int i = 0; i < x.count(); ++i) EXPECT_EQ(y.cpu_data()[i], x.cpu_data()[i]);
}

TEST(ScaleLayer, ForwardLearnedWithBias) {
  auto layer = MakeLayer(
      "name: 'scale' type: 'Scale' scale_param { axis: 1 num_axes: 2 bias_term: true "
      "filler { type: 'gaussian' } bias_filler { type: 'uniform' min: -1 max: 1 } }");
  Blob x(Shape{2, 3, 2, 2}), y;
  testing::FillGaussian(&x, 1.f, 9);
  layer->SetUp({&x}, {&y});
  EXPECT_EQ(layer->blobs()[0]->shape(), (Shape{3, 2}));
  EXPECT_EQ(layer->blobs()[1]->shape(), (Shape{3, 2}));
  layer->Forward({&x}, {&y});
  const float* s = layer->blobs()[0]->cpu_data();
  const float* b = layer->blobs()[1]->cpu_data();
  for (int i = 0; i < x.count(); ++i) {
    const int d = ParamIndex(x, 1, 2, i);
    EXPECT_FLOAT_EQ(y.cpu_data()[i], s[d] * x.cpu_data()[i] + b[d]) << i;
  }
}

TEST(ScaleLayer, ForwardSecondBottom) {
  struct Case {
    std::string param;
    Shape scale_shape;
    int axis;
  };
  for (const Case& c :
       {Case{"", {3, 4}, 1}, Case{"scale_param { axis: 0 }", {2, 3}, 0},
        Case{"scale_param { axis: -2 }", {4, 5}, 2}, Case{"scale_param { axis: 1 }", {}, 0},
        Case{"scale_param { axis: 0 }", {2, 3, 4, 5}, 0}}) {
    SCOPED_TRACE(c.param + " scale " + shape_string(c.scale_shape));
    auto layer = MakeLayer("name: 'scale' type: 'Scale' " + c.param);
    Blob x(Shape{2, 3, 4, 5}), s(c.scale_shape), y;
    testing::FillGaussian(&x, 1.f, 10);
    testing::FillGaussian(&s, 1.f, 11);
    layer->SetUp({&x, &s}, {&y});
    EXPECT_TRUE(layer->blobs().empty());
    layer->Forward({&x, &s}, {&y});
    for (int i = 0; i < x.count(); ++i)
      ASSERT_FLOAT_EQ(y.cpu_data()[i],
                      x.cpu_data()[i] * s.cpu_data()[ParamIndex(x, c.axis, s.num_axes(), i)]);
  }
}

TEST(ScaleLayer, SecondBottomWithBiasHasOnlyTheBiasBlob) {
  auto layer = MakeLayer(
      "name: 'scale' type: 'Scale' scale_param { bias_term: true "
      "bias_filler { type: 'constant' value: 0.5 } }");
  Blob x(Shape{2, 3, 2}), s(Shape{3}), y;
  testing::FillGaussian(&x, 1.f, 12);
  testing::FillGaussian(&s, 1.f, 13);
  layer->SetUp({&x, &s}, {&y});
  ASSERT_EQ(layer->blobs().size(), 1u);
  EXPECT_EQ(layer->blobs()[0]->shape(), Shape{3});
  layer->Forward({&x, &s}, {&y});
  for (int i = 0; i < x.count(); ++i)
    EXPECT_FLOAT_EQ(y.cpu_data()[i], x.cpu_data()[i] * s.cpu_data()[(i / 2) % 3] + 0.5f);
}

TEST(ScaleLayer, GradientLearned) {
  auto layer = MakeLayer("name: 'scale' type: 'Scale' scale_param { filler { type: 'gaussian' } }");
  Blob x(Shape{2, 3, 2, 2}), y;
  testing::FillGaussian(&x, 1.f, 14);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(ScaleLayer, GradientLearnedWithBias) {
  auto layer = MakeLayer(
      "name: 'scale' type: 'Scale' scale_param { axis: 1 num_axes: -1 bias_term: true "
      "filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }");
  Blob x(Shape{2, 3, 2}), y;
  testing::FillGaussian(&x, 1.f, 15);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(ScaleLayer, GradientTwoBottoms) {
  auto layer = MakeLayer("name: 'scale' type: 'Scale' scale_param { axis: 0 }");
  Blob x(Shape{2, 3, 2, 2}), s(Shape{2, 3}), y;
  testing::FillGaussian(&x, 1.f, 16);
  testing::FillGaussian(&s, 1.f, 17);
  testing::GradientChecker().Check(layer.get(), {&x, &s}, {&y});
}

TEST(ScaleLayer, GradientTwoBottomsWithBias) {
  auto layer = MakeLayer(
      "name: 'scale' type: 'Scale' scale_param { bias_term: true "
      "bias_filler { type: 'gaussian' } }");
  Blob x(Shape{2, 3, 2, 2}), s(Shape{3, 2}), y;
  testing::FillGaussian(&x, 1.f, 18);
  testing::FillGaussian(&s, 1.f, 19);
  testing::GradientChecker().Check(layer.get(), {&x, &s}, {&y});
}

TEST(ScaleLayer, GradientScalar) {
  auto layer = MakeLayer(
      "name: 'scale' type: 'Scale' scale_param { num_axes: 0 bias_term: true "
      "filler { type: 'constant' value: -1.5 } }");
  Blob x(Shape{2, 3, 2}), y;
  testing::FillGaussian(&x, 1.f, 20);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
  EXPECT_EQ(layer->blobs()[0]->num_axes(), 0);
}

TEST(ScaleLayer, InPlaceMatchesSeparate) {
  const std::string text =
      "name: 'scale' type: 'Scale' scale_param { bias_term: true "
      "filler { type: 'constant' value: 1.7 } bias_filler { type: 'constant' value: -0.2 } }";
  Blob x(Shape{2, 3, 4});
  testing::FillGaussian(&x, 1.f, 21);
  std::vector<float> dtop(x.count());
  for (int i = 0; i < x.count(); ++i) dtop[i] = std::sin(0.3f * i);

  auto separate = MakeLayer(text);
  Blob bottom(x.shape()), top;
  bottom.CopyFrom(x);
  separate->SetUp({&bottom}, {&top});
  separate->Forward({&bottom}, {&top});
  std::copy(dtop.begin(), dtop.end(), top.mutable_cpu_diff());
  separate->Backward({&top}, {true}, {&bottom});

  auto inplace = MakeLayer(text);
  Blob blob(x.shape());
  blob.CopyFrom(x);
  inplace->SetUp({&blob}, {&blob});
  inplace->Forward({&blob}, {&blob});
  for (int i = 0; i < x.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_data()[i], top.cpu_data()[i]);
  std::copy(dtop.begin(), dtop.end(), blob.mutable_cpu_diff());
  inplace->Backward({&blob}, {true}, {&blob});
  for (int i = 0; i < x.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_diff()[i], bottom.cpu_diff()[i]);
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < 3; ++i)
      EXPECT_FLOAT_EQ(inplace->blobs()[p]->cpu_diff()[i], separate->blobs()[p]->cpu_diff()[i]);
}

TEST(ScaleLayer, ParameterGradientsAccumulate) {
  auto layer = MakeLayer("name: 'scale' type: 'Scale' scale_param { bias_term: true }");
  Blob x(Shape{1, 2}), y;
  x.mutable_cpu_data()[0] = 2.f;
  x.mutable_cpu_data()[1] = -3.f;
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  y.mutable_cpu_diff()[0] = 1.f;
  y.mutable_cpu_diff()[1] = 0.5f;
  for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  layer->Backward({&y}, {true}, {&x});
  layer->Backward({&y}, {true}, {&x});
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_diff()[0], 2 * 2.f);
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_diff()[1], 2 * -1.5f);
  EXPECT_FLOAT_EQ(layer->blobs()[1]->cpu_diff()[0], 2 * 1.f);
  EXPECT_FLOAT_EQ(layer->blobs()[1]->cpu_diff()[1], 2 * 0.5f);
  EXPECT_FLOAT_EQ(x.cpu_diff()[1], 0.5f);
}

TEST(ScaleLayer, ThreadsAgree) {
  std::vector<float> out[2], grad[2], sgrad[2];
  for (int run = 0; run < 2; ++run) {
    Context::set_num_threads(run + 1);
    auto layer = MakeLayer(
        "name: 'scale' type: 'Scale' scale_param { bias_term: true filler { type: 'gaussian' } "
        "bias_filler { type: 'gaussian' } }");
    Blob x(Shape{8, 16, 50, 50}), y;
    testing::FillGaussian(&x, 1.f, 22);
    Context::reseed(5, 5);
    layer->SetUp({&x}, {&y});
    layer->Forward({&x}, {&y});
    for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = std::cos(0.01f * i);
    for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    layer->Backward({&y}, {true}, {&x});
    out[run].assign(y.cpu_data(), y.cpu_data() + y.count());
    grad[run].assign(x.cpu_diff(), x.cpu_diff() + x.count());
    sgrad[run].assign(layer->blobs()[0]->cpu_diff(), layer->blobs()[0]->cpu_diff() + 16);
  }
  Context::set_num_threads(1);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(grad[0], grad[1]);
  EXPECT_EQ(sgrad[0], sgrad[1]);
}

TEST(ScaleLayer, BadParameters) {
  Blob x(Shape{2, 3, 4}), y;
  ExpectError(
      [&] { MakeLayer("name: 'bad' type: 'Scale' scale_param { axis: 3 }")->SetUp({&x}, {&y}); },
      "axis 3");
  ExpectError(
      [&] { MakeLayer("name: 'bad' type: 'Scale' scale_param { axis: -4 }")->SetUp({&x}, {&y}); },
      "out of range");
  ExpectError(
      [&] {
        MakeLayer("name: 'bad' type: 'Scale' scale_param { num_axes: 3 }")->SetUp({&x}, {&y});
      },
      "past the end");
  Blob s(Shape{4, 3});
  ExpectError([&] { MakeLayer("name: 'bad' type: 'Scale'")->SetUp({&x, &s}, {&y}); }, "4 3 (12)");
  Blob three(Shape{3});
  ExpectError(
      [&] {
        MakeLayer("name: 'bad' type: 'Scale'")->SetUp({&x, &three, &three}, {&y});
      },
      "bottom");
  // Loaded weights of the wrong shape (blobs stored in the LayerParameter).
  ExpectError(
      [&] {
        MakeLayer(
            "name: 'bad' type: 'Scale' blobs { shape { dim: 4 } data: 1 data: 1 data: 1 data: 1 }")
            ->SetUp({&x}, {&y});
      },
      "does not match");
  // Too many loaded blobs for the parameters.
  ExpectError(
      [&] {
        MakeLayer(
            "name: 'bad' type: 'Scale' blobs { shape { dim: 3 } data: 1 data: 1 data: 1 } "
            "blobs { shape { dim: 3 } data: 1 data: 1 data: 1 }")
            ->SetUp({&x}, {&y});
      },
      "parameter blob");
}

}  // namespace
}  // namespace crema
