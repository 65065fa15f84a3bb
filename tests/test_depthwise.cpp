// DepthwiseConvolutionLayer: identical results to ConvolutionLayer (forward, input, weight
// and bias gradients) over strides, padding, dilation, channel multipliers and
// rectangular kernels; the fallback for group != channels; a gradient check; the engine
// choice of CreateConvolutionLayer.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/math_functions.hpp"
#include "layers/convolution.hpp"
#include "layers/depthwise_convolution.hpp"
#include "layers/engines.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::LayerParam;

using Shape = std::vector<int>;

pb::LayerParameter Param(const std::string& conv_param) {
  return LayerParam("name: 'dw' type: 'Convolution' convolution_param { " + conv_param +
                    " weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }");
}

void ExpectClose(const Blob& a, const Blob& b, bool diff, float tol, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const float* x = diff ? a.cpu_diff() : a.cpu_data();
  const float* y = diff ? b.cpu_diff() : b.cpu_data();
  for (int i = 0; i < a.count(); ++i)
    ASSERT_NEAR(x[i], y[i], tol * std::max(1.f, std::fabs(y[i]))) << what << " element " << i;
}

// Runs both layers on the same data, weights and top gradient and compares everything.
void CompareWithConvolution(const std::string& conv_param, const Shape& shape, bool expect_direct) {
  SCOPED_TRACE(conv_param);
  const pb::LayerParameter p = Param(conv_param);
  ConvolutionLayer ref(p);
  DepthwiseConvolutionLayer dw(p);
  Blob x(shape), x2(shape), y_ref, y_dw;
  testing::FillGaussian(&x);
  x2.CopyFrom(x);
  ref.SetUp({&x}, {&y_ref});
  dw.SetUp({&x2}, {&y_dw});
  EXPECT_EQ(dw.is_depthwise(), expect_direct);
  ASSERT_EQ(ref.blobs().size(), dw.blobs().size());
  for (size_t i = 0; i < ref.blobs().size(); ++i) {
    ASSERT_EQ(ref.blobs()[i]->shape(), dw.blobs()[i]->shape());
    dw.blobs()[i]->CopyFrom(*ref.blobs()[i]);
  }
  ref.Forward({&x}, {&y_ref});
  dw.Forward({&x2}, {&y_dw});
  ExpectClose(y_dw, y_ref, false, 1e-5f, "forward");

  Blob dy(y_ref.shape());
  testing::FillGaussian(&dy, 1.f, 11);
  cpu_copy(dy.count(), dy.cpu_data(), y_ref.mutable_cpu_diff());
  cpu_copy(dy.count(), dy.cpu_data(), y_dw.mutable_cpu_diff());
  // Parameter gradients accumulate: start both from the same nonzero values.
  for (size_t i = 0; i < ref.blobs().size(); ++i) {
    cpu_set(ref.blobs()[i]->count(), 0.5f, ref.blobs()[i]->mutable_cpu_diff());
    cpu_set(dw.blobs()[i]->count(), 0.5f, dw.blobs()[i]->mutable_cpu_diff());
  }
  ref.Backward({&y_ref}, {true}, {&x});
  dw.Backward({&y_dw}, {true}, {&x2});
  ExpectClose(x2, x, true, 1e-5f, "input gradient");
  ExpectClose(*dw.blobs()[0], *ref.blobs()[0], true, 1e-4f, "weight gradient");
  if (ref.blobs().size() > 1)
    ExpectClose(*dw.blobs()[1], *ref.blobs()[1], true, 1e-4f, "bias gradient");
}

TEST(DepthwiseConvolutionLayer, MatchesConvolution) {
  CompareWithConvolution("num_output: 4 group: 4 kernel_size: 3 pad: 1", {2, 4, 9, 7}, true);
  CompareWithConvolution("num_output: 6 group: 3 kernel_size: 3 stride: 2 pad: 1", {2, 3, 9, 8},
                         true);
  CompareWithConvolution("num_output: 4 group: 4 kernel_size: 3 dilation: 2 pad: 2", {2, 4, 8, 9},
                         true);
  CompareWithConvolution(
      "num_output: 8 group: 4 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 0 pad_w: 1 "
      "bias_term: false",
      {3, 4, 7, 6}, true);
  CompareWithConvolution("num_output: 5 group: 5 kernel_size: 5 stride: 3 pad: 2 dilation: 1",
                         {1, 5, 11, 10}, true);
  CompareWithConvolution("num_output: 2 group: 2 kernel_size: 1", {2, 2, 4, 4}, true);
  // Larger planes: the threaded paths of both implementations.
  CompareWithConvolution("num_output: 16 group: 16 kernel_size: 3 pad: 1", {4, 16, 28, 28}, true);
  CompareWithConvolution("num_output: 16 group: 16 kernel_size: 3 stride: 2 pad: 1",
                         {4, 16, 28, 28}, true);
}

TEST(DepthwiseConvolutionLayer, FallsBackWhenNotDepthwise) {
  CompareWithConvolution("num_output: 4 group: 2 kernel_size: 3 pad: 1", {2, 4, 6, 6}, false);
  CompareWithConvolution("num_output: 3 group: 1 kernel_size: 3", {1, 2, 5, 5}, false);
}

TEST(DepthwiseConvolutionLayer, Gradient) {
  DepthwiseConvolutionLayer layer(
      Param("num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 dilation: 1"));
  Blob x(Shape{2, 2, 5, 4}), y;
  testing::FillGaussian(&x);
  testing::GradientChecker().Check(&layer, {&x}, {&y});
  EXPECT_TRUE(layer.is_depthwise());
}

TEST(DepthwiseConvolutionLayer, GradientDilated) {
  DepthwiseConvolutionLayer layer(
      Param("num_output: 3 group: 3 kernel_size: 2 dilation: 2 pad: 1"));
  Blob x(Shape{1, 3, 4, 5}), y;
  testing::FillGaussian(&x);
  testing::GradientChecker().Check(&layer, {&x}, {&y});
}

TEST(DepthwiseConvolutionLayer, ThreadCountIndependent) {
  const pb::LayerParameter p = Param("num_output: 8 group: 8 kernel_size: 3 pad: 1");
  std::vector<std::vector<float>> results;
  const int saved = Context::num_threads();
  for (int threads : {1, 2}) {
    Context::set_num_threads(threads);
    DepthwiseConvolutionLayer layer(p);
    Blob x(Shape{3, 8, 12, 12}), y;
    testing::FillGaussian(&x);
    Context::reseed(5, 0);
    layer.SetUp({&x}, {&y});
    layer.Forward({&x}, {&y});
    testing::FillGaussian(&y, 1.f, 3);
    cpu_copy(y.count(), y.cpu_data(), y.mutable_cpu_diff());
    cpu_set(layer.blobs()[0]->count(), 0.f, layer.blobs()[0]->mutable_cpu_diff());
    layer.Backward({&y}, {true}, {&x});
    std::vector<float> r(x.cpu_diff(), x.cpu_diff() + x.count());
    r.insert(r.end(), layer.blobs()[0]->cpu_diff(),
             layer.blobs()[0]->cpu_diff() + layer.blobs()[0]->count());
    results.push_back(r);
  }
  Context::set_num_threads(saved);
  EXPECT_EQ(results[0], results[1]);
}

TEST(DepthwiseConvolutionLayer, EngineChoice) {
  auto grouped = CreateConvolutionLayer(Param("num_output: 4 group: 4 kernel_size: 3"));
  EXPECT_NE(dynamic_cast<DepthwiseConvolutionLayer*>(grouped.get()), nullptr);
  EXPECT_STREQ(grouped->type(), "Convolution");
  auto plain = CreateConvolutionLayer(Param("num_output: 4 kernel_size: 3"));
  EXPECT_EQ(dynamic_cast<DepthwiseConvolutionLayer*>(plain.get()), nullptr);
  EXPECT_NE(dynamic_cast<ConvolutionLayer*>(plain.get()), nullptr);
}

TEST(DepthwiseConvolutionLayer, Errors) {
  DepthwiseConvolutionLayer layer(Param("num_output: 4 group: 4 kernel_size: 0"));
  Blob x(Shape{1, 4, 5, 5}), y;
  try {
    layer.SetUp({&x}, {&y});
    FAIL() << "kernel 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dw'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace crema
