// MVN: per-(sample, channel) or per-sample normalisation against a reference loop, Caffe's
// 4-axis top shape, gradients in every mode, in place, bad shapes.
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

// Reference: rows of `dim` elements, y = (x - mean) / (std + eps) or x - mean.
std::vector<float> Reference(const Blob& x, int rows, bool normalize, double eps) {
  const int dim = x.count() / rows;
  std::vector<float> y(x.count());
  for (int r = 0; r < rows; ++r) {
    const float* xr = x.cpu_data() + r * dim;
    double mean = 0, var = 0;
    for (int i = 0; i < dim; ++i) mean += xr[i];
    mean /= dim;
    for (int i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim;
    for (int i = 0; i < dim; ++i)
      y[r * dim + i] =
          static_cast<float>(normalize ? (xr[i] - mean) / (std::sqrt(var) + eps) : xr[i] - mean);
  }
  return y;
}

struct Mode {
  std::string param;
  bool normalize;
  bool across;
};

const std::vector<Mode> kModes = {
    {"", true, false},
    {"mvn_param { normalize_variance: false }", false, false},
    {"mvn_param { across_channels: true }", true, true},
    {"mvn_param { normalize_variance: false across_channels: true }", false, true},
    {"mvn_param { eps: 0.1 }", true, false},
};

TEST(MVNLayer, ForwardMatchesReference) {
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.param);
    auto layer = MakeLayer("name: 'mvn' type: 'MVN' " + mode.param);
    EXPECT_STREQ(layer->type(), "MVN");
    Blob x(Shape{2, 3, 4, 5}), y;
    testing::FillGaussian(&x, 2.f, 1);
    for (int i = 0; i < x.count(); ++i) x.mutable_cpu_data()[i] += 0.1f * (i / 20);
    layer->SetUp({&x}, {&y});
    layer->Forward({&x}, {&y});
    EXPECT_EQ(y.shape(), x.shape());
    const double eps = mode.param.find("eps") != std::string::npos ? 0.1 : 1e-9;
    const auto ref = Reference(x, mode.across ? 2 : 6, mode.normalize, eps);
    for (int i = 0; i < x.count(); ++i) EXPECT_NEAR(y.cpu_data()[i], ref[i], 2e-6) << i;
  }
}

TEST(MVNLayer, HandExample) {
  auto layer = MakeLayer("name: 'mvn' type: 'MVN'");
  Blob x(Shape{1, 2, 1, 2}), y;
  // rows (1, 3) and (10, 10): mean 2, std 1 -> (-1, 1); constant row -> 0 (eps keeps it finite)
  x.mutable_cpu_data()[0] = 1.f;
  x.mutable_cpu_data()[1] = 3.f;
  x.mutable_cpu_data()[2] = 10.f;
  x.mutable_cpu_data()[3] = 10.f;
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_NEAR(y.cpu_data()[0], -1.f, 1e-6);
  EXPECT_NEAR(y.cpu_data()[1], 1.f, 1e-6);
  EXPECT_EQ(y.cpu_data()[2], 0.f);
  EXPECT_EQ(y.cpu_data()[3], 0.f);
}

TEST(MVNLayer, TopGetsTheLegacyFourAxisShape) {
  auto layer = MakeLayer("name: 'mvn' type: 'MVN'");
  Blob x(Shape{3, 5}), y;
  testing::FillGaussian(&x, 1.f, 2);
  layer->SetUp({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{3, 5, 1, 1}));
  layer->Forward({&x}, {&y});
  // Each (n, c) row has a single element: x - mean = 0.
  EXPECT_EQ(y.asum_data(), 0.f);
  auto across = MakeLayer("name: 'mvn' type: 'MVN' mvn_param { across_channels: true }");
  across->SetUp({&x}, {&y});
  across->Forward({&x}, {&y});
  const auto ref = Reference(x, 3, true, 1e-9);
  for (int i = 0; i < x.count(); ++i) EXPECT_NEAR(y.cpu_data()[i], ref[i], 2e-6);
}

TEST(MVNLayer, Gradient) {
  for (const Mode& mode : kModes) {
    // Caffe's backward formula is the exact derivative only up to O(eps / std) (eps is
    // added to the standard deviation): check it with the default, tiny eps.
    if (mode.param.find("eps") != std::string::npos) continue;
    SCOPED_TRACE(mode.param);
    auto layer = MakeLayer("name: 'mvn' type: 'MVN' " + mode.param);
    Blob x(Shape{2, 3, 2, 3}), y;
    testing::FillGaussian(&x, 1.f, 3);
    testing::GradientChecker().Check(layer.get(), {&x}, {&y});
  }
}

TEST(MVNLayer, InPlace) {
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(mode.param);
    const std::string text = "name: 'mvn' type: 'MVN' " + mode.param;
    Blob x(Shape{2, 3, 4, 2});
    testing::FillGaussian(&x, 1.f, 4);
    std::vector<float> dtop(x.count());
    for (int i = 0; i < x.count(); ++i) dtop[i] = std::sin(0.4f * i);
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
    for (int i = 0; i < x.count(); ++i)
      EXPECT_NEAR(blob.cpu_diff()[i], bottom.cpu_diff()[i], 1e-5) << i;
  }
}

TEST(MVNLayer, BackwardIgnoresAnOverwrittenTop) {
  // Not in place, the backward recomputes y from x: a later in-place layer that changed
  // the top data does not change the gradient.
  auto layer = MakeLayer("name: 'mvn' type: 'MVN'");
  Blob x(Shape{2, 2, 3}), y;
  testing::FillGaussian(&x, 1.f, 5);
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = std::cos(1.f * i);
  layer->Backward({&y}, {true}, {&x});
  std::vector<float> expected(x.cpu_diff(), x.cpu_diff() + x.count());
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_data()[i] = -7.f;
  layer->Backward({&y}, {true}, {&x});
  for (int i = 0; i < x.count(); ++i) EXPECT_EQ(x.cpu_diff()[i], expected[i]);
}

TEST(MVNLayer, ThreadsAgree) {
  std::vector<float> out[2], grad[2];
  for (int run = 0; run < 2; ++run) {
    Context::set_num_threads(run + 1);
    auto layer = MakeLayer("name: 'mvn' type: 'MVN'");
    Blob x(Shape{8, 16, 30, 30}), y;
    testing::FillGaussian(&x, 1.f, 6);
    layer->SetUp({&x}, {&y});
    layer->Forward({&x}, {&y});
    for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = std::cos(0.01f * i);
    layer->Backward({&y}, {true}, {&x});
    out[run].assign(y.cpu_data(), y.cpu_data() + y.count());
    grad[run].assign(x.cpu_diff(), x.cpu_diff() + x.count());
  }
  Context::set_num_threads(1);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(grad[0], grad[1]);
}

TEST(MVNLayer, TooManyAxes) {
  auto layer = MakeLayer("name: 'bad' type: 'MVN'");
  Blob x(Shape{2, 2, 2, 2, 2}), y;
  try {
    layer->SetUp({&x}, {&y});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bad'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2 2 2 2 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace crema
