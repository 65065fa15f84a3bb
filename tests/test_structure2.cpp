// ArgMax, BatchReindex, Filter, Crop, Embed, Parameter, Reduction, Tile, Im2col and SPP:
// known answers, gradient checks and parameter errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/im2col.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
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

// ---------------------------------------------------------------------------------- ArgMax

TEST(ArgMaxLayer, FlattenedTopK) {
  auto layer = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { top_k: 2 }");
  Blob x(Shape{2, 5}), y;
  SetValues(&x, {1, 5, 3, 5, 0, /**/ -1, -2, 7, 6, 7});
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2}));
  // Equal values: the larger index ranks first.
  EXPECT_EQ(Values(y), (std::vector<float>{3, 1, 4, 2}));
}

TEST(ArgMaxLayer, FlattenedOutMaxVal) {
  auto layer = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { top_k: 2 out_max_val: true }");
  Blob x(Shape{2, 1, 2, 2}), y;
  SetValues(&x, {0.5f, 2, -1, 1, /**/ 9, 8, 7, 6});
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2, 1}));
  EXPECT_EQ(Values(y), (std::vector<float>{1, 3, 2, 1, /**/ 0, 1, 9, 8}));
}

TEST(ArgMaxLayer, Axis) {
  Blob x(Shape{2, 3, 2}), y;
  // x[n, c, i]
  SetValues(&x, {1, 6, 4, 2, 3, 5, /**/ 0, -1, 0, -3, 2, -2});
  auto layer = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { axis: 1 }");
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(Values(y), (std::vector<float>{1, 0, 2, 0}));
  auto values =
      MakeLayer("name: 'am' type: 'ArgMax' argmax_param { axis: -2 top_k: 2 out_max_val: true }");
  values->SetUp({&x}, {&y});
  values->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(Values(y), (std::vector<float>{4, 6, 3, 5, /**/ 2, -1, 0, -2}));
}

TEST(ArgMaxLayer, Errors) {
  Blob x(Shape{2, 3}), y;
  auto big = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { top_k: 4 }");
  EXPECT_NE(ErrorOf([&] { big->SetUp({&x}, {&y}); }).find("'am'"), std::string::npos);
  auto axis = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { axis: 2 }");
  EXPECT_NE(ErrorOf([&] { axis->SetUp({&x}, {&y}); }).find("axis 2"), std::string::npos);
  auto zero = MakeLayer("name: 'am' type: 'ArgMax' argmax_param { top_k: 0 }");
  EXPECT_NE(ErrorOf([&] { zero->SetUp({&x}, {&y}); }).find("top_k"), std::string::npos);
}

// ---------------------------------------------------------------------------- BatchReindex

TEST(BatchReindexLayer, ForwardBackward) {
  auto layer = MakeLayer("name: 'br' type: 'BatchReindex'");
  Blob x(Shape{3, 2}), idx(Shape{4}), y;
  SetValues(&x, {1, 2, 3, 4, 5, 6});
  SetValues(&idx, {2, 0, 2, 1});
  layer->SetUp({&x, &idx}, {&y});
  layer->Forward({&x, &idx}, {&y});
  EXPECT_EQ(y.shape(), (Shape{4, 2}));
  EXPECT_EQ(Values(y), (std::vector<float>{5, 6, 1, 2, 5, 6, 3, 4}));
  SetValues(&x, {0, 0, 0, 0, 0, 0});
  std::copy_n(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}.begin(), 8, y.mutable_cpu_diff());
  layer->Backward({&y}, {true, false}, {&x, &idx});
  EXPECT_EQ(Diffs(x), (std::vector<float>{3, 4, 7, 8, 1 + 5, 2 + 6}));
}

TEST(BatchReindexLayer, Gradient) {
  auto layer = MakeLayer("name: 'br' type: 'BatchReindex'");
  Blob x(Shape{3, 2, 2}), idx(Shape{5}), y;
  testing::FillGaussian(&x);
  SetValues(&idx, {1, 1, 0, 2, 1});
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  testing::GradientChecker(o).Check(layer.get(), {&x, &idx}, {&y});
}

TEST(BatchReindexLayer, Errors) {
  auto layer = MakeLayer("name: 'br' type: 'BatchReindex'");
  Blob x(Shape{3, 2}), idx(Shape{2}), y;
  SetValues(&idx, {0, 3});
  layer->SetUp({&x, &idx}, {&y});
  EXPECT_NE(ErrorOf([&] { layer->Forward({&x, &idx}, {&y}); }).find("'br'"), std::string::npos);
  Blob idx2(Shape{2, 1});
  EXPECT_NE(ErrorOf([&] { layer->SetUp({&x, &idx2}, {&y}); }).find("one axis"), std::string::npos);
}

// ---------------------------------------------------------------------------------- Filter

TEST(FilterLayer, ForwardBackward) {
  auto layer = MakeLayer("name: 'f' type: 'Filter'");
  Blob a(Shape{4, 2}), b(Shape{4}), sel(Shape{4, 1}), ya, yb;
  SetValues(&a, {1, 2, 3, 4, 5, 6, 7, 8});
  SetValues(&b, {10, 20, 30, 40});
  SetValues(&sel, {0, 1, 0, 1});
  layer->SetUp({&a, &b, &sel}, {&ya, &yb});
  EXPECT_EQ(ya.shape(), (Shape{4, 2}));  // all rows at setup, as in Caffe
  layer->Forward({&a, &b, &sel}, {&ya, &yb});
  EXPECT_EQ(ya.shape(), (Shape{2, 2}));
  EXPECT_EQ(Values(ya), (std::vector<float>{3, 4, 7, 8}));
  EXPECT_EQ(Values(yb), (std::vector<float>{20, 40}));
  SetValues(&ya, {0, 0, 0, 0});
  std::copy_n(std::vector<float>{1, 2, 3, 4}.begin(), 4, ya.mutable_cpu_diff());
  std::copy_n(std::vector<float>{-1, -2, -3, -4}.begin(), 4, a.mutable_cpu_diff());
  layer->Backward({&ya, &yb}, {true, false, false}, {&a, &b, &sel});
  EXPECT_EQ(Diffs(a), (std::vector<float>{0, 0, 1, 2, 0, 0, 3, 4}));
}

TEST(FilterLayer, Gradient) {
  auto layer = MakeLayer("name: 'f' type: 'Filter'");
  Blob a(Shape{4, 3}), sel(Shape{4}), y;
  testing::FillGaussian(&a);
  SetValues(&sel, {1, 0, 1, 1});
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  testing::GradientChecker(o).Check(layer.get(), {&a, &sel}, {&y});
}

TEST(FilterLayer, Errors) {
  auto layer = MakeLayer("name: 'f' type: 'Filter'");
  Blob a(Shape{4, 3}), sel(Shape{3}), y;
  EXPECT_NE(ErrorOf([&] { layer->SetUp({&a, &sel}, {&y}); }).find("'f'"), std::string::npos);
  Blob sel2(Shape{4, 2});
  auto layer2 = MakeLayer("name: 'f' type: 'Filter'");
  EXPECT_NE(ErrorOf([&] { layer2->SetUp({&a, &sel2}, {&y}); }).find("size 1"), std::string::npos);
}

// ------------------------------------------------------------------------------------ Crop

TEST(CropLayer, ForwardDefaultsAndOffsets) {
  Blob x(Shape{2, 2, 4, 5}), ref(Shape{1, 1, 2, 3}), y;
  for (int i = 0; i < x.count(); ++i) x.mutable_cpu_data()[i] = static_cast<float>(i);
  auto layer = MakeLayer("name: 'c' type: 'Crop' crop_param { offset: 1 offset: 2 }");
  layer->SetUp({&x, &ref}, {&y});
  layer->Forward({&x, &ref}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2, 3}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 2; ++h)
        for (int w = 0; w < 3; ++w) EXPECT_EQ(y.data_at(n, c, h, w), x.data_at(n, c, h + 1, w + 2));
  // axis 1, one offset for every cropped axis.
  auto all = MakeLayer("name: 'c' type: 'Crop' crop_param { axis: 1 offset: 1 }");
  all->SetUp({&x, &ref}, {&y});
  all->Forward({&x, &ref}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2, 3}));
  EXPECT_EQ(y.data_at(1, 0, 1, 2), x.data_at(1, 1, 2, 3));
  // No offsets: the top-left corner.
  auto none = MakeLayer("name: 'c' type: 'Crop'");
  none->SetUp({&x, &ref}, {&y});
  none->Forward({&x, &ref}, {&y});
  EXPECT_EQ(y.data_at(1, 1, 1, 2), x.data_at(1, 1, 1, 2));
}

TEST(CropLayer, Gradient) {
  Blob x(Shape{2, 2, 4, 4}), ref(Shape{2, 2, 2, 3}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer("name: 'c' type: 'Crop' crop_param { offset: 1 offset: 0 }");
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  testing::GradientChecker(o).Check(layer.get(), {&x, &ref}, {&y});
}

TEST(CropLayer, Errors) {
  Blob x(Shape{1, 1, 4, 5}), ref(Shape{1, 1, 2, 3}), y;
  auto out = MakeLayer("name: 'crop1' type: 'Crop' crop_param { offset: 3 offset: 1 }");
  const std::string e = ErrorOf([&] { out->SetUp({&x, &ref}, {&y}); });
  EXPECT_NE(e.find("'crop1'"), std::string::npos) << e;
  EXPECT_NE(e.find("offset 3"), std::string::npos) << e;
  EXPECT_NE(e.find("size 2"), std::string::npos) << e;
  auto count = MakeLayer("name: 'crop1' type: 'Crop' crop_param { offset: 1 offset: 1 offset: 1 }");
  EXPECT_NE(ErrorOf([&] { count->SetUp({&x, &ref}, {&y}); }).find("3 offsets"), std::string::npos);
  auto axis = MakeLayer("name: 'crop1' type: 'Crop' crop_param { axis: 4 }");
  EXPECT_NE(ErrorOf([&] { axis->SetUp({&x, &ref}, {&y}); }).find("axis 4"), std::string::npos);
}

// ----------------------------------------------------------------------------------- Embed

TEST(EmbedLayer, Forward) {
  auto layer = MakeLayer(
      "name: 'emb' type: 'Embed' embed_param { input_dim: 4 num_output: 3 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }");
  Blob ids(Shape{2, 2}), y;
  SetValues(&ids, {3, 0, 3, 1});
  layer->SetUp({&ids}, {&y});
  EXPECT_EQ(layer->blobs()[0]->shape(), (Shape{4, 3}));
  EXPECT_EQ(layer->blobs()[1]->shape(), (Shape{3}));
  layer->Forward({&ids}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  const float* W = layer->blobs()[0]->cpu_data();
  const float* b = layer->blobs()[1]->cpu_data();
  for (int m = 0; m < 4; ++m)
    for (int j = 0; j < 3; ++j)
      EXPECT_FLOAT_EQ(y.cpu_data()[m * 3 + j],
                      W[static_cast<int>(ids.cpu_data()[m]) * 3 + j] + b[j]);
}

TEST(EmbedLayer, BackwardAccumulatesRepeatedIds) {
  auto layer = MakeLayer("name: 'emb' type: 'Embed' embed_param { input_dim: 3 num_output: 2 }");
  Blob ids(Shape{3}), y;
  SetValues(&ids, {2, 0, 2});
  layer->SetUp({&ids}, {&y});
  layer->Forward({&ids}, {&y});
  std::copy_n(std::vector<float>{1, 2, 3, 4, 5, 6}.begin(), 6, y.mutable_cpu_diff());
  for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  layer->Backward({&y}, {false}, {&ids});
  EXPECT_EQ(Diffs(*layer->blobs()[0]), (std::vector<float>{3, 4, 0, 0, 1 + 5, 2 + 6}));
  EXPECT_EQ(Diffs(*layer->blobs()[1]), (std::vector<float>{9, 12}));
}

TEST(EmbedLayer, Gradient) {
  // The ids are not differentiable, so only the parameters are checked: central
  // differences of sum(w * y) against Backward's accumulated parameter gradients.
  auto layer = MakeLayer(
      "name: 'emb' type: 'Embed' embed_param { input_dim: 5 num_output: 3 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }");
  Blob ids(Shape{4}), y;
  SetValues(&ids, {4, 1, 1, 0});
  layer->SetUp({&ids}, {&y});
  std::vector<float> w(y.count());
  for (int i = 0; i < y.count(); ++i) w[i] = 0.1f * (i % 7) - 0.3f;
  auto objective = [&] {
    layer->Forward({&ids}, {&y});
    double s = 0;
    for (int i = 0; i < y.count(); ++i) s += w[i] * y.cpu_data()[i];
    return s;
  };
  layer->Forward({&ids}, {&y});
  std::copy(w.begin(), w.end(), y.mutable_cpu_diff());
  for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  layer->Backward({&y}, {false}, {&ids});
  for (auto& p : layer->blobs()) {
    for (int j = 0; j < p->count(); ++j) {
      const float orig = p->cpu_data()[j];
      p->mutable_cpu_data()[j] = orig + 1e-2f;
      const double plus = objective();
      p->mutable_cpu_data()[j] = orig - 1e-2f;
      const double minus = objective();
      p->mutable_cpu_data()[j] = orig;
      EXPECT_NEAR(p->cpu_diff()[j], (plus - minus) / 2e-2, 1e-3) << j;
    }
  }
}

TEST(EmbedLayer, Errors) {
  Blob ids(Shape{3}), y;
  SetValues(&ids, {0, 4, 1});
  auto layer = MakeLayer("name: 'emb1' type: 'Embed' embed_param { input_dim: 4 num_output: 2 }");
  layer->SetUp({&ids}, {&y});
  const std::string e = ErrorOf([&] { layer->Forward({&ids}, {&y}); });
  EXPECT_NE(e.find("'emb1'"), std::string::npos) << e;
  EXPECT_NE(e.find("index 4"), std::string::npos) << e;
  SetValues(&ids, {0, -1, 1});
  EXPECT_NE(ErrorOf([&] { layer->Forward({&ids}, {&y}); }).find("index -1"), std::string::npos);
  auto no_dim = MakeLayer("name: 'emb1' type: 'Embed' embed_param { num_output: 2 }");
  EXPECT_NE(ErrorOf([&] { no_dim->SetUp({&ids}, {&y}); }).find("input_dim"), std::string::npos);
}

// ------------------------------------------------------------------------------- Parameter

TEST(ParameterLayer, ExposesItsBlob) {
  auto layer = MakeLayer("name: 'p' type: 'Parameter' parameter_param { shape { dim: 2 dim: 3 } }");
  Blob y;
  layer->SetUp({}, {&y});
  ASSERT_EQ(layer->blobs().size(), 1u);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  SetValues(layer->blobs()[0].get(), {1, 2, 3, 4, 5, 6});
  layer->Forward({}, {&y});
  EXPECT_EQ(Values(y), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  y.mutable_cpu_diff()[4] = 7.f;
  layer->Backward({&y}, {}, {});
  EXPECT_EQ(layer->blobs()[0]->cpu_diff()[4], 7.f);
}

// ------------------------------------------------------------------------------- Reduction

TEST(ReductionLayer, Operations) {
  Blob x(Shape{2, 2, 3}), y;
  SetValues(&x, {1, -2, 3, 0, 4, -5, /**/ 1, 1, 1, 1, 1, -1});
  auto run = [&](const std::string& param) {
    auto layer = MakeLayer("name: 'r' type: 'Reduction' reduction_param { " + param + " }");
    layer->SetUp({&x}, {&y});
    layer->Forward({&x}, {&y});
    return Values(y);
  };
  EXPECT_EQ(run("operation: SUM"), (std::vector<float>{5}));
  EXPECT_EQ(y.num_axes(), 0);
  EXPECT_EQ(run("operation: SUM axis: 1"), (std::vector<float>{1, 4}));
  EXPECT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(run("operation: ASUM axis: 1"), (std::vector<float>{15, 6}));
  EXPECT_EQ(run("operation: SUMSQ axis: -1 coeff: 2"), (std::vector<float>{28, 82, 6, 6}));
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  const std::vector<float> mean = run("operation: MEAN axis: 1 coeff: 3");
  EXPECT_FLOAT_EQ(mean[0], 3.f / 6);
  EXPECT_FLOAT_EQ(mean[1], 12.f / 6);
}

TEST(ReductionLayer, Gradients) {
  for (const char* op : {"SUM", "ASUM", "SUMSQ", "MEAN"}) {
    auto layer =
        MakeLayer(std::string("name: 'r' type: 'Reduction' reduction_param { operation: ") + op +
                  " axis: 1 coeff: -1.5 }");
    Blob x(Shape{2, 3, 2}), y;
    testing::FillGaussian(&x);
    testing::GradientCheckOptions o;
    o.kink_range = 0.02f;  // |x| at 0 for ASUM
    testing::GradientChecker(o).Check(layer.get(), {&x}, {&y});
  }
}

TEST(ReductionLayer, Errors) {
  Blob x(Shape{2, 3}), y;
  auto layer = MakeLayer("name: 'red' type: 'Reduction' reduction_param { axis: 2 }");
  const std::string e = ErrorOf([&] { layer->SetUp({&x}, {&y}); });
  EXPECT_NE(e.find("'red'"), std::string::npos) << e;
  EXPECT_NE(e.find("axis 2"), std::string::npos) << e;
  auto neg = MakeLayer("name: 'red' type: 'Reduction' reduction_param { axis: -3 }");
  EXPECT_NE(ErrorOf([&] { neg->SetUp({&x}, {&y}); }).find("axis -3"), std::string::npos);
}

// ------------------------------------------------------------------------------------ Tile

TEST(TileLayer, Forward) {
  Blob x(Shape{2, 2, 2}), y;
  SetValues(&x, {1, 2, 3, 4, 5, 6, 7, 8});
  auto layer = MakeLayer("name: 't' type: 'Tile' tile_param { axis: 1 tiles: 2 }");
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 4, 2}));
  EXPECT_EQ(Values(y), (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8}));
  auto last = MakeLayer("name: 't' type: 'Tile' tile_param { axis: -1 tiles: 3 }");
  last->SetUp({&x}, {&y});
  last->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 6}));
  EXPECT_EQ(y.cpu_data()[0], 1.f);
  EXPECT_EQ(y.cpu_data()[2], 1.f);
  EXPECT_EQ(y.cpu_data()[5], 2.f);
  EXPECT_EQ(y.cpu_data()[6], 3.f);
}

TEST(TileLayer, Gradient) {
  Blob x(Shape{2, 3, 2}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer("name: 't' type: 'Tile' tile_param { axis: 1 tiles: 3 }");
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(TileLayer, Errors) {
  Blob x(Shape{2, 3}), y;
  auto zero = MakeLayer("name: 'tile0' type: 'Tile' tile_param { tiles: 0 }");
  const std::string e = ErrorOf([&] { zero->SetUp({&x}, {&y}); });
  EXPECT_NE(e.find("'tile0'"), std::string::npos) << e;
  EXPECT_NE(e.find("tiles"), std::string::npos) << e;
  auto missing = MakeLayer("name: 'tile0' type: 'Tile' tile_param { axis: 0 }");
  EXPECT_NE(ErrorOf([&] { missing->SetUp({&x}, {&y}); }).find("tiles"), std::string::npos);
  auto axis = MakeLayer("name: 'tile0' type: 'Tile' tile_param { axis: 2 tiles: 2 }");
  EXPECT_NE(ErrorOf([&] { axis->SetUp({&x}, {&y}); }).find("axis 2"), std::string::npos);
}

// ---------------------------------------------------------------------------------- Im2col

TEST(Im2colLayer, Forward) {
  Blob x(Shape{2, 3, 5, 4}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer(
      "name: 'i' type: 'Im2col' convolution_param { kernel_size: 3 stride: 2 pad: 1 "
      "dilation: 1 }");
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 27, 3, 2}));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          for (int oh = 0; oh < 3; ++oh)
            for (int ow = 0; ow < 2; ++ow) {
              const int h = oh * 2 - 1 + i, w = ow * 2 - 1 + j;
              const float expect = h >= 0 && h < 5 && w >= 0 && w < 4 ? x.data_at(n, c, h, w) : 0;
              EXPECT_EQ(y.data_at(n, (c * 3 + i) * 3 + j, oh, ow), expect);
            }
}

TEST(Im2colLayer, Gradient) {
  Blob x(Shape{2, 2, 4, 3}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer(
      "name: 'i' type: 'Im2col' convolution_param { kernel_h: 2 kernel_w: 3 stride: 1 pad: 1 "
      "dilation: 2 }");
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(Im2colLayer, Errors) {
  Blob x(Shape{1, 1, 4, 4}), y;
  auto zero = MakeLayer("name: 'im' type: 'Im2col' convolution_param { kernel_size: 0 }");
  EXPECT_NE(ErrorOf([&] { zero->SetUp({&x}, {&y}); }).find("'im'"), std::string::npos);
  auto big = MakeLayer("name: 'im' type: 'Im2col' convolution_param { kernel_size: 5 }");
  EXPECT_NE(ErrorOf([&] { big->SetUp({&x}, {&y}); }).find("exceeds"), std::string::npos);
}

// ------------------------------------------------------------------------------------- SPP

// Max/average of x[n, c] over rows [h0, h1) x columns [w0, w1) clipped to the image; the
// average divides by the window size clipped to the padded image, as Pooling does.
float Pool(const Blob& x, int n, int c, int h0, int h1, int w0, int w1, bool max, int pool_size) {
  float best = -1e30f, sum = 0;
  for (int h = std::max(h0, 0); h < std::min(h1, x.shape(2)); ++h)
    for (int w = std::max(w0, 0); w < std::min(w1, x.shape(3)); ++w) {
      best = std::max(best, x.data_at(n, c, h, w));
      sum += x.data_at(n, c, h, w);
    }
  return max ? best : sum / pool_size;
}

TEST(SPPLayer, ForwardMax) {
  // 5 x 6 image, pyramid 3: level 0 kernel 5x6 (1 bin), level 1 kernel 3x3 pad 1/0
  // (2x2 bins), level 2 kernel 2x2 pad 2/1 (4x4... clipped by Pooling's rounding).
  Blob x(Shape{2, 2, 5, 6}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer("name: 's' type: 'SPP' spp_param { pyramid_height: 2 pool: MAX }");
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  // Level 0: 1 bin per channel; level 1: kernel (3, 3), pad ((6-5+1)/2 = 1, 0): 2x2 bins.
  ASSERT_EQ(y.shape(), (Shape{2, 2 * 1 + 2 * 4}));
  for (int n = 0; n < 2; ++n) {
    const float* row = y.cpu_data() + n * 10;
    for (int c = 0; c < 2; ++c) {
      EXPECT_EQ(row[c], Pool(x, n, c, 0, 5, 0, 6, true, 0));
      for (int bh = 0; bh < 2; ++bh)
        for (int bw = 0; bw < 2; ++bw)
          EXPECT_EQ(row[2 + c * 4 + bh * 2 + bw],
                    Pool(x, n, c, bh * 3 - 1, bh * 3 + 2, bw * 3, bw * 3 + 3, true, 0));
    }
  }
}

TEST(SPPLayer, ForwardAveAndHeightOne) {
  Blob x(Shape{1, 2, 4, 4}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer("name: 's' type: 'SPP' spp_param { pyramid_height: 3 pool: AVE }");
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{1, 2 * (1 + 4 + 16)}));
  const float* row = y.cpu_data();
  EXPECT_NEAR(row[1], Pool(x, 0, 1, 0, 4, 0, 4, false, 16), 1e-6);
  EXPECT_NEAR(row[2 + 4 + 3], Pool(x, 0, 1, 2, 4, 2, 4, false, 4), 1e-6);  // level 1, c 1
  EXPECT_NEAR(row[2 + 8 + 16 + 5], x.data_at(0, 1, 1, 1), 1e-6);           // level 2, c 1
  auto one = MakeLayer("name: 's' type: 'SPP' spp_param { pyramid_height: 1 pool: MAX }");
  one->SetUp({&x}, {&y});
  one->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(y.cpu_data()[0], Pool(x, 0, 0, 0, 4, 0, 4, true, 0));
}

TEST(SPPLayer, ReshapesWithTheBottom) {
  Blob x(Shape{1, 1, 4, 4}), y;
  testing::FillGaussian(&x);
  auto layer = MakeLayer("name: 's' type: 'SPP' spp_param { pyramid_height: 2 }");
  layer->SetUp({&x}, {&y});
  x.Reshape({2, 1, 7, 5});
  testing::FillGaussian(&x, 1.f, 3);
  layer->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  EXPECT_EQ(y.cpu_data()[5], Pool(x, 1, 0, 0, 7, 0, 5, true, 0));
}

TEST(SPPLayer, Gradient) {
  for (const char* pool : {"MAX", "AVE"}) {
    Blob x(Shape{2, 2, 4, 5}), y;
    testing::FillGaussian(&x);
    auto layer = MakeLayer(
        std::string("name: 's' type: 'SPP' spp_param { pyramid_height: 2 pool: ") + pool + " }");
    testing::GradientChecker().Check(layer.get(), {&x}, {&y});
  }
}

TEST(SPPLayer, Errors) {
  Blob x(Shape{1, 1, 4, 4}), y;
  auto zero = MakeLayer("name: 'spp' type: 'SPP' spp_param { pyramid_height: 0 }");
  EXPECT_NE(ErrorOf([&] { zero->SetUp({&x}, {&y}); }).find("'spp'"), std::string::npos);
  Blob flat(Shape{2, 3}), y2;
  auto layer = MakeLayer("name: 'spp' type: 'SPP' spp_param { pyramid_height: 2 }");
  EXPECT_NE(ErrorOf([&] { layer->SetUp({&flat}, {&y2}); }).find("4 axes"), std::string::npos);
}

}  // namespace
}  // namespace crema
