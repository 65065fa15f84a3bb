// Flatten, Reshape, Split, Concat, Slice, Eltwise, Silence: shapes, values, gradients and
// parameter errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"
#include "crema/net.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::Diffs;
using testing::ErrorOf;
using testing::MakeLayer;
using testing::SetValues;
using testing::Values;

using Shape = std::vector<int>;

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

void Iota(Blob* b, float start = 0.f) {
  for (int i = 0; i < b->count(); ++i) b->mutable_cpu_data()[i] = start + i;
}

// ---------------------------------------------------------------------------------------
// Views: Reshape, Flatten, a one-bottom Concat and a one-top Slice make their top a view
// of the bottom's data and diff. A bottom whose own diff is shared (a Parameter layer's top
// shares the parameter's) must still receive the gradient.

TEST(ViewLayers, GradientReachesASharedBottomDiff) {
  const char* views[] = {
      "type: 'Reshape' reshape_param { shape { dim: 0 dim: -1 } }",
      "type: 'Flatten'",
      "type: 'Concat'",
      "type: 'Slice'",
  };
  for (const char* view : views) {
    SCOPED_TRACE(view);
    pb::NetParameter param;
    ReadProtoFromTextString(
        std::string("layer { name: 'x' type: 'Parameter' top: 'x' "
                    "  parameter_param { shape { dim: 2 dim: 3 dim: 2 } } }"
                    "layer { name: 'zero' type: 'DummyData' top: 'zero' "
                    "  dummy_data_param { shape { dim: 2 dim: 6 } } }"
                    "layer { name: 'view' bottom: 'x' top: 'y' ") +
            view +
            " }"
            "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'y' bottom: 'zero' top: 'l' }",
        &param, "view net");
    Net net(param);
    Blob* x = net.layer_by_name("x")->blobs()[0].get();
    Iota(x, 1.f);
    net.ForwardBackward();
    // loss = sum(y^2) / (2 * 2), so d loss / d x = x / 2.
    std::vector<float> expected = Values(*x);
    for (float& v : expected) v /= 2.f;
    EXPECT_EQ(Diffs(*x), expected);
  }
}

// ---------------------------------------------------------------------------------------
// Flatten

TEST(FlattenLayer, Shapes) {
  Blob bottom(Shape{2, 3, 4, 5}), top;
  Iota(&bottom);
  auto layer = MakeLayer("name: 'flat' type: 'Flatten'");
  EXPECT_STREQ(layer->type(), "Flatten");
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 60}));
  EXPECT_EQ(Values(top), Values(bottom));
  EXPECT_EQ(top.cpu_data(), bottom.cpu_data());  // shared, not copied

  auto middle = MakeLayer("name: 'flat' type: 'Flatten' flatten_param { axis: 1 end_axis: 2 }");
  middle->SetUp({&bottom}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 12, 5}));
  auto tail = MakeLayer("name: 'flat' type: 'Flatten' flatten_param { axis: -2 }");
  tail->SetUp({&bottom}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 3, 20}));
  auto all = MakeLayer("name: 'flat' type: 'Flatten' flatten_param { axis: 0 }");
  all->SetUp({&bottom}, {&top});
  EXPECT_EQ(top.shape(), (Shape{120}));
}

TEST(FlattenLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 41);
  auto layer = MakeLayer("name: 'flat' type: 'Flatten'");
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(FlattenLayer, Errors) {
  Blob bottom(Shape{2, 3}), top;
  auto layer = MakeLayer("name: 'flat_bad' type: 'Flatten' flatten_param { axis: 3 }");
  EXPECT_CONTAINS(ErrorOf([&] { layer->SetUp({&bottom}, {&top}); }), "flat_bad");
  auto inplace = MakeLayer("name: 'flat_ip' type: 'Flatten'");
  EXPECT_CONTAINS(ErrorOf([&] { inplace->SetUp({&bottom}, {&bottom}); }), "flat_ip");
}

// ---------------------------------------------------------------------------------------
// Reshape

Shape ReshapeTo(const std::string& param, const Shape& in) {
  Blob bottom(in), top;
  auto layer = MakeLayer("name: 'rs' type: 'Reshape' reshape_param { " + param + " }");
  layer->SetUp({&bottom}, {&top});
  return top.shape();
}

TEST(ReshapeLayer, Shapes) {
  EXPECT_EQ(ReshapeTo("shape { dim: 0 dim: -1 }", {2, 3, 4}), (Shape{2, 12}));
  EXPECT_EQ(ReshapeTo("shape { dim: -1 dim: 4 }", {2, 3, 4}), (Shape{6, 4}));
  EXPECT_EQ(ReshapeTo("shape { dim: 4 dim: 0 dim: 2 }", {2, 3, 4}), (Shape{4, 3, 2}));
  EXPECT_EQ(ReshapeTo("shape { dim: 3 dim: 1 } axis: 1 num_axes: 1", {2, 3, 4}),
            (Shape{2, 3, 1, 4}));
  EXPECT_EQ(ReshapeTo("shape { dim: 1 } axis: 1 num_axes: 0", {2, 3, 4}), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(ReshapeTo("shape { dim: 1 dim: 1 } axis: -1 num_axes: 0", {2, 3}), (Shape{2, 3, 1, 1}));
  EXPECT_EQ(ReshapeTo("shape { dim: -1 } axis: -2", {2, 3, 4}), (Shape{2, 3, 4}));
  EXPECT_EQ(ReshapeTo("shape { dim: -1 } axis: 1", {2, 3, 4}), (Shape{2, 12}));
  EXPECT_EQ(ReshapeTo("shape { }", {1, 1}), (Shape{}));
}

TEST(ReshapeLayer, SharesData) {
  Blob bottom(Shape{2, 6}), top;
  Iota(&bottom);
  auto layer = MakeLayer("name: 'rs' type: 'Reshape' reshape_param { shape { dim: 3 dim: -1 } }");
  EXPECT_STREQ(layer->type(), "Reshape");
  layer->SetUp({&bottom}, {&top});
  layer->Forward({&bottom}, {&top});
  EXPECT_EQ(top.shape(), (Shape{3, 4}));
  EXPECT_EQ(top.cpu_data(), bottom.cpu_data());
  EXPECT_EQ(Values(top), Values(bottom));
}

TEST(ReshapeLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2}), top;
  testing::FillGaussian(&bottom, 1.f, 42);
  auto layer = MakeLayer("name: 'rs' type: 'Reshape' reshape_param { shape { dim: -1 dim: 2 } }");
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&top});
}

TEST(ReshapeLayer, Errors) {
  Blob bottom(Shape{2, 3, 4}), top;
  auto two = MakeLayer("name: 'rs2' type: 'Reshape' reshape_param { shape { dim: -1 dim: -1 } }");
  const std::string msg = ErrorOf([&] { two->SetUp({&bottom}, {&top}); });
  EXPECT_CONTAINS(msg, "rs2");
  EXPECT_CONTAINS(msg, "-1");
  auto count = MakeLayer("name: 'rs3' type: 'Reshape' reshape_param { shape { dim: 5 dim: -1 } }");
  EXPECT_CONTAINS(ErrorOf([&] { count->SetUp({&bottom}, {&top}); }), "rs3");
  auto total = MakeLayer("name: 'rs4' type: 'Reshape' reshape_param { shape { dim: 5 dim: 5 } }");
  EXPECT_CONTAINS(ErrorOf([&] { total->SetUp({&bottom}, {&top}); }), "rs4");
  auto copy = MakeLayer(
      "name: 'rs5' type: 'Reshape' reshape_param { shape { dim: 0 dim: 0 dim: 0 "
      "dim: 0 } }");
  EXPECT_CONTAINS(ErrorOf([&] { copy->SetUp({&bottom}, {&top}); }), "rs5");
  auto axis = MakeLayer("name: 'rs6' type: 'Reshape' reshape_param { shape { dim: 1 } axis: 5 }");
  EXPECT_CONTAINS(ErrorOf([&] { axis->SetUp({&bottom}, {&top}); }), "rs6");
}

// ---------------------------------------------------------------------------------------
// Split

TEST(SplitLayer, ForwardBackward) {
  Blob bottom(Shape{2, 3}), a, b, c;
  Iota(&bottom, 1.f);
  auto layer = MakeLayer("name: 'split' type: 'Split'");
  EXPECT_STREQ(layer->type(), "Split");
  layer->SetUp({&bottom}, {&a, &b, &c});
  layer->Forward({&bottom}, {&a, &b, &c});
  for (Blob* t : {&a, &b, &c}) {
    EXPECT_EQ(t->shape(), bottom.shape());
    EXPECT_EQ(Values(*t), Values(bottom));
  }
  for (int i = 0; i < 6; ++i) {
    a.mutable_cpu_diff()[i] = i;
    b.mutable_cpu_diff()[i] = 10.f * i;
    c.mutable_cpu_diff()[i] = 100.f * i;
  }
  layer->Backward({&a, &b, &c}, {true}, {&bottom});
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(bottom.cpu_diff()[i], 111.f * i);
}

TEST(SplitLayer, Gradient) {
  Blob bottom(Shape{2, 3, 2}), a, b;
  testing::FillGaussian(&bottom, 1.f, 43);
  auto layer = MakeLayer("name: 'split' type: 'Split'");
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&a, &b});
}

// ---------------------------------------------------------------------------------------
// Concat

TEST(ConcatLayer, Axis0) {
  Blob a(Shape{2, 3}), b(Shape{1, 3}), top;
  Iota(&a, 0.f);
  Iota(&b, 100.f);
  auto layer = MakeLayer("name: 'cat' type: 'Concat' concat_param { axis: 0 }");
  EXPECT_STREQ(layer->type(), "Concat");
  layer->SetUp({&a, &b}, {&top});
  layer->Forward({&a, &b}, {&top});
  EXPECT_EQ(top.shape(), (Shape{3, 3}));
  EXPECT_EQ(Values(top), (std::vector<float>{0, 1, 2, 3, 4, 5, 100, 101, 102}));
}

TEST(ConcatLayer, Axis1) {
  Blob a(Shape{2, 1, 2}), b(Shape{2, 2, 2}), top;
  Iota(&a, 0.f);                                         // [[0 1]] [[2 3]]
  Iota(&b, 10.f);                                        // [[10 11][12 13]] [[14 15][16 17]]
  auto layer = MakeLayer("name: 'cat' type: 'Concat'");  // default axis 1
  layer->SetUp({&a, &b}, {&top});
  layer->Forward({&a, &b}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(Values(top), (std::vector<float>{0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}));
  for (int i = 0; i < top.count(); ++i) top.mutable_cpu_diff()[i] = top.cpu_data()[i] * 2;
  layer->Backward({&top}, {true, true}, {&a, &b});
  for (int i = 0; i < a.count(); ++i) EXPECT_EQ(a.cpu_diff()[i], 2 * a.cpu_data()[i]);
  for (int i = 0; i < b.count(); ++i) EXPECT_EQ(b.cpu_diff()[i], 2 * b.cpu_data()[i]);
}

TEST(ConcatLayer, DeprecatedConcatDimAndNegativeAxis) {
  Blob a(Shape{2, 3}), b(Shape{2, 4}), top;
  auto dim = MakeLayer("name: 'cat' type: 'Concat' concat_param { concat_dim: 1 }");
  dim->SetUp({&a, &b}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 7}));
  auto neg = MakeLayer("name: 'cat' type: 'Concat' concat_param { axis: -1 }");
  neg->SetUp({&a, &b}, {&top});
  EXPECT_EQ(top.shape(), (Shape{2, 7}));
  auto both = MakeLayer("name: 'cat_both' type: 'Concat' concat_param { axis: 1 concat_dim: 1 }");
  EXPECT_CONTAINS(ErrorOf([&] { both->SetUp({&a, &b}, {&top}); }), "cat_both");
}

TEST(ConcatLayer, GradientAxis1) {
  Blob a(Shape{2, 2, 3}), b(Shape{2, 1, 3}), c(Shape{2, 3, 3}), top;
  testing::FillGaussian(&a, 1.f, 44);
  testing::FillGaussian(&b, 1.f, 45);
  testing::FillGaussian(&c, 1.f, 46);
  auto layer = MakeLayer("name: 'cat' type: 'Concat'");
  testing::GradientChecker().Check(layer.get(), {&a, &b, &c}, {&top});
}

TEST(ConcatLayer, GradientAxis0) {
  Blob a(Shape{1, 2, 3}), b(Shape{2, 2, 3}), top;
  testing::FillGaussian(&a, 1.f, 47);
  testing::FillGaussian(&b, 1.f, 48);
  auto layer = MakeLayer("name: 'cat' type: 'Concat' concat_param { axis: 0 }");
  testing::GradientChecker().Check(layer.get(), {&a, &b}, {&top});
}

TEST(ConcatLayer, SingleBottom) {
  Blob a(Shape{2, 3}), top;
  testing::FillGaussian(&a, 1.f, 49);
  auto layer = MakeLayer("name: 'cat' type: 'Concat'");
  layer->SetUp({&a}, {&top});
  layer->Forward({&a}, {&top});
  EXPECT_EQ(Values(top), Values(a));
  testing::GradientChecker().Check(layer.get(), {&a}, {&top});
}

TEST(ConcatLayer, ShapeMismatch) {
  Blob a(Shape{2, 3, 4}), b(Shape{2, 5, 5}), top;
  auto layer = MakeLayer("name: 'cat_bad' type: 'Concat'");
  const std::string msg = ErrorOf([&] { layer->SetUp({&a, &b}, {&top}); });
  EXPECT_CONTAINS(msg, "cat_bad");
  EXPECT_CONTAINS(msg, a.shape_string());
  EXPECT_CONTAINS(msg, b.shape_string());
  Blob c(Shape{2, 3});
  const std::string axes = ErrorOf([&] { layer->SetUp({&a, &c}, {&top}); });
  EXPECT_CONTAINS(axes, c.shape_string());
  auto range = MakeLayer("name: 'cat_ax' type: 'Concat' concat_param { axis: 3 }");
  EXPECT_CONTAINS(ErrorOf([&] { range->SetUp({&a, &a}, {&top}); }), "cat_ax");
}

// ---------------------------------------------------------------------------------------
// Slice

TEST(SliceLayer, SlicePoints) {
  Blob bottom(Shape{2, 5, 2}), a, b, c;
  Iota(&bottom);
  auto layer = MakeLayer(
      "name: 'slice' type: 'Slice' slice_param { axis: 1 slice_point: 1 slice_point: 3 }");
  EXPECT_STREQ(layer->type(), "Slice");
  layer->SetUp({&bottom}, {&a, &b, &c});
  layer->Forward({&bottom}, {&a, &b, &c});
  EXPECT_EQ(a.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(b.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(c.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(Values(a), (std::vector<float>{0, 1, 10, 11}));
  EXPECT_EQ(Values(b), (std::vector<float>{2, 3, 4, 5, 12, 13, 14, 15}));
  EXPECT_EQ(Values(c), (std::vector<float>{6, 7, 8, 9, 16, 17, 18, 19}));
  for (Blob* t : {&a, &b, &c})
    for (int i = 0; i < t->count(); ++i) t->mutable_cpu_diff()[i] = -t->cpu_data()[i];
  layer->Backward({&a, &b, &c}, {true}, {&bottom});
  for (int i = 0; i < bottom.count(); ++i) EXPECT_EQ(bottom.cpu_diff()[i], -float(i));
}

TEST(SliceLayer, EqualSplitAxis0) {
  Blob bottom(Shape{4, 3}), a, b;
  Iota(&bottom);
  auto layer = MakeLayer("name: 'slice' type: 'Slice' slice_param { axis: 0 }");
  layer->SetUp({&bottom}, {&a, &b});
  layer->Forward({&bottom}, {&a, &b});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(Values(a), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(Values(b), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  auto dim = MakeLayer("name: 'slice' type: 'Slice' slice_param { slice_dim: 1 slice_point: 2 }");
  dim->SetUp({&bottom}, {&a, &b});
  EXPECT_EQ(a.shape(), (Shape{4, 2}));
  EXPECT_EQ(b.shape(), (Shape{4, 1}));
}

TEST(SliceLayer, Gradient) {
  Blob bottom(Shape{2, 6, 2}), a, b, c;
  testing::FillGaussian(&bottom, 1.f, 50);
  auto layer =
      MakeLayer("name: 'slice' type: 'Slice' slice_param { slice_point: 1 slice_point: 4 }");
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&a, &b, &c});
}

TEST(SliceLayer, GradientEqualSplit) {
  Blob bottom(Shape{4, 2, 3}), a, b;
  testing::FillGaussian(&bottom, 1.f, 51);
  auto layer = MakeLayer("name: 'slice' type: 'Slice' slice_param { axis: 0 }");
  testing::GradientChecker().Check(layer.get(), {&bottom}, {&a, &b});
}

TEST(SliceLayer, Errors) {
  Blob bottom(Shape{2, 5}), a, b, c;
  auto range = MakeLayer("name: 'sl_range' type: 'Slice' slice_param { slice_point: 5 }");
  std::string msg = ErrorOf([&] { range->SetUp({&bottom}, {&a, &b}); });
  EXPECT_CONTAINS(msg, "sl_range");
  EXPECT_CONTAINS(msg, "slice_point 5");
  auto order =
      MakeLayer("name: 'sl_order' type: 'Slice' slice_param { slice_point: 3 slice_point: 2 }");
  msg = ErrorOf([&] { order->SetUp({&bottom}, {&a, &b, &c}); });
  EXPECT_CONTAINS(msg, "sl_order");
  auto zero = MakeLayer("name: 'sl_zero' type: 'Slice' slice_param { slice_point: 0 }");
  EXPECT_CONTAINS(ErrorOf([&] { zero->SetUp({&bottom}, {&a, &b}); }), "sl_zero");
  auto count = MakeLayer("name: 'sl_count' type: 'Slice' slice_param { slice_point: 1 }");
  EXPECT_CONTAINS(ErrorOf([&] { count->SetUp({&bottom}, {&a, &b, &c}); }), "sl_count");
  auto uneven = MakeLayer("name: 'sl_even' type: 'Slice'");
  EXPECT_CONTAINS(ErrorOf([&] { uneven->SetUp({&bottom}, {&a, &b}); }), "sl_even");
}

// ---------------------------------------------------------------------------------------
// Eltwise

struct ThreeBlobs {
  Blob a{Shape{2, 3, 2}}, b{Shape{2, 3, 2}}, c{Shape{2, 3, 2}};
  ThreeBlobs() {
    testing::FillGaussian(&a, 1.f, 52);
    testing::FillGaussian(&b, 1.f, 53);
    testing::FillGaussian(&c, 1.f, 54);
  }
  BlobVec vec() { return {&a, &b, &c}; }
};

TEST(EltwiseLayer, SumWithCoeffs) {
  ThreeBlobs in;
  Blob top;
  auto layer = MakeLayer(
      "name: 'sum' type: 'Eltwise' eltwise_param { operation: SUM coeff: 1 coeff: -0.5 "
      "coeff: 2 }");
  EXPECT_STREQ(layer->type(), "Eltwise");
  layer->SetUp(in.vec(), {&top});
  layer->Forward(in.vec(), {&top});
  for (int i = 0; i < top.count(); ++i)
    EXPECT_NEAR(top.cpu_data()[i],
                in.a.cpu_data()[i] - 0.5f * in.b.cpu_data()[i] + 2.f * in.c.cpu_data()[i], 1e-6);
}

TEST(EltwiseLayer, SumDefaultIsPlainSum) {
  Blob a(Shape{3}), b(Shape{3}), top;
  SetValues(&a, {1, 2, 3});
  SetValues(&b, {10, 20, 30});
  auto layer = MakeLayer("name: 'sum' type: 'Eltwise'");
  layer->SetUp({&a, &b}, {&top});
  layer->Forward({&a, &b}, {&top});
  EXPECT_EQ(Values(top), (std::vector<float>{11, 22, 33}));
}

TEST(EltwiseLayer, Prod) {
  ThreeBlobs in;
  Blob top;
  auto layer = MakeLayer("name: 'prod' type: 'Eltwise' eltwise_param { operation: PROD }");
  layer->SetUp(in.vec(), {&top});
  layer->Forward(in.vec(), {&top});
  for (int i = 0; i < top.count(); ++i)
    EXPECT_NEAR(top.cpu_data()[i], in.a.cpu_data()[i] * in.b.cpu_data()[i] * in.c.cpu_data()[i],
                1e-6);
}

TEST(EltwiseLayer, MaxAndArgmaxBackward) {
  Blob a(Shape{4}), b(Shape{4}), c(Shape{4}), top;
  SetValues(&a, {5, 1, 2, 0});
  SetValues(&b, {1, 6, 2, 0});
  SetValues(&c, {0, 0, 7, 0});
  auto layer = MakeLayer("name: 'max' type: 'Eltwise' eltwise_param { operation: MAX }");
  layer->SetUp({&a, &b, &c}, {&top});
  layer->Forward({&a, &b, &c}, {&top});
  EXPECT_EQ(Values(top), (std::vector<float>{5, 6, 7, 0}));
  SetValues(&top, {5, 6, 7, 0});
  for (int i = 0; i < 4; ++i) top.mutable_cpu_diff()[i] = i + 1.f;
  layer->Backward({&top}, {true, true, true}, {&a, &b, &c});
  // Element 3 is a three-way tie: the second bottom wins (the first must be strictly
  // greater, later ones strictly greater than the running max).
  EXPECT_EQ(Diffs(a), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(Diffs(b), (std::vector<float>{0, 2, 0, 4}));
  EXPECT_EQ(Diffs(c), (std::vector<float>{0, 0, 3, 0}));
}

TEST(EltwiseLayer, GradientSumCoeffs) {
  ThreeBlobs in;
  Blob top;
  auto layer = MakeLayer(
      "name: 'sum' type: 'Eltwise' eltwise_param { operation: SUM coeff: 1 coeff: -0.5 "
      "coeff: 2 }");
  testing::GradientChecker().Check(layer.get(), in.vec(), {&top});
}

TEST(EltwiseLayer, SumInPlaceGradients) {
  // top == bottom 0: the layer must still give dx_k = c_k dy to every bottom, although
  // bottom 0's gradient overwrites dy.
  Blob a(Shape{3}), b(Shape{3});
  SetValues(&a, {1, 2, 3});
  SetValues(&b, {10, 20, 30});
  auto layer = MakeLayer("name: 'sum' type: 'Eltwise' eltwise_param { coeff: 2 coeff: 3 }");
  layer->SetUp({&a, &b}, {&a});
  layer->Forward({&a, &b}, {&a});
  EXPECT_EQ(Values(a), (std::vector<float>{32, 64, 96}));
  const float dy[] = {1, -1, 0.5f};
  std::copy(dy, dy + 3, a.mutable_cpu_diff());
  layer->Backward({&a}, {true, true}, {&a, &b});
  EXPECT_EQ(Diffs(a), (std::vector<float>{2, -2, 1}));
  EXPECT_EQ(Diffs(b), (std::vector<float>{3, -3, 1.5f}));
}

TEST(EltwiseLayer, GradientProdStable) {
  ThreeBlobs in;
  Blob top;
  auto layer = MakeLayer("name: 'prod' type: 'Eltwise' eltwise_param { operation: PROD }");
  testing::GradientChecker().Check(layer.get(), in.vec(), {&top});
}

TEST(EltwiseLayer, GradientProdUnstable) {
  ThreeBlobs in;
  Blob top;
  auto layer = MakeLayer(
      "name: 'prod' type: 'Eltwise' eltwise_param { operation: PROD stable_prod_grad: false }");
  testing::GradientChecker().Check(layer.get(), in.vec(), {&top});
}

TEST(EltwiseLayer, GradientMax) {
  // Well separated values so that no perturbation changes the winner.
  Blob a(Shape{2, 3, 2}), b(Shape{2, 3, 2}), c(Shape{2, 3, 2}), top;
  for (int i = 0; i < 12; ++i) {
    a.mutable_cpu_data()[i] = static_cast<float>((i * 7) % 12) * 0.3f;
    b.mutable_cpu_data()[i] = static_cast<float>((i * 5 + 3) % 12) * 0.3f + 0.1f;
    c.mutable_cpu_data()[i] = static_cast<float>((i * 11 + 6) % 12) * 0.3f + 0.2f;
  }
  auto layer = MakeLayer("name: 'max' type: 'Eltwise' eltwise_param { operation: MAX }");
  testing::GradientChecker().Check(layer.get(), {&a, &b, &c}, {&top});
}

TEST(EltwiseLayer, Errors) {
  Blob a(Shape{2, 3}), b(Shape{3, 2}), top;
  auto layer = MakeLayer("name: 'elt_shape' type: 'Eltwise'");
  const std::string msg = ErrorOf([&] { layer->SetUp({&a, &b}, {&top}); });
  EXPECT_CONTAINS(msg, "elt_shape");
  EXPECT_CONTAINS(msg, a.shape_string());
  EXPECT_CONTAINS(msg, b.shape_string());
  Blob c(Shape{2, 3});
  auto coeffs = MakeLayer("name: 'elt_coeff' type: 'Eltwise' eltwise_param { coeff: 1 }");
  EXPECT_CONTAINS(ErrorOf([&] { coeffs->SetUp({&a, &c}, {&top}); }), "elt_coeff");
  auto prod = MakeLayer(
      "name: 'elt_prod' type: 'Eltwise' eltwise_param { operation: PROD coeff: 1 coeff: 2 }");
  EXPECT_CONTAINS(ErrorOf([&] { prod->SetUp({&a, &c}, {&top}); }), "elt_prod");
}

// ---------------------------------------------------------------------------------------
// Silence

TEST(SilenceLayer, ZeroesBottomDiffs) {
  Blob a(Shape{2, 3}), b(Shape{4});
  for (Blob* x : {&a, &b})
    for (int i = 0; i < x->count(); ++i) x->mutable_cpu_diff()[i] = 3.f;
  auto layer = MakeLayer("name: 'silence' type: 'Silence'");
  EXPECT_STREQ(layer->type(), "Silence");
  layer->SetUp({&a, &b}, {});
  layer->Forward({&a, &b}, {});
  layer->Backward({}, {true, false}, {&a, &b});
  EXPECT_EQ(Diffs(a), std::vector<float>(6, 0.f));
  EXPECT_EQ(Diffs(b), std::vector<float>(4, 3.f));
  Blob top;
  EXPECT_CONTAINS(ErrorOf([&] { MakeLayer("name: 'sil2' type: 'Silence'")->SetUp({&a}, {&top}); }),
                  "sil2");
}

}  // namespace
}  // namespace crema
