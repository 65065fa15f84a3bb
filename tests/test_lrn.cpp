// LRN: hand-computed answers and a direct reference for both normalisation regions,
// gradient checks, and the local_size error.
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
using testing::SetValues;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& lrn_param, const std::string& name = "norm") {
  return MakeLayer("name: '" + name + "' type: 'LRN' lrn_param { " + lrn_param + " }");
}

// Direct formulas (double precision).
std::vector<float> ReferenceAcross(const Blob& x, int size, double alpha, double beta, double k) {
  const int N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3), r = (size - 1) / 2;
  std::vector<float> y(x.count());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < HW; ++s) {
        double sum = 0;
        for (int q = std::max(0, c - r); q <= std::min(C - 1, c + r); ++q) {
          const double v = x.cpu_data()[(n * C + q) * HW + s];
          sum += v * v;
        }
        const double scale = k + alpha / size * sum;
        const int i = (n * C + c) * HW + s;
        y[i] = static_cast<float>(x.cpu_data()[i] * std::pow(scale, -beta));
      }
  return y;
}

std::vector<float> ReferenceWithin(const Blob& x, int size, double alpha, double beta) {
  const int P = x.shape(0) * x.shape(1), H = x.shape(2), W = x.shape(3), r = (size - 1) / 2;
  std::vector<float> y(x.count());
  for (int p = 0; p < P; ++p)
    for (int h = 0; h < H; ++h)
      for (int w = 0; w < W; ++w) {
        double sum = 0;
        for (int a = std::max(0, h - r); a <= std::min(H - 1, h + r); ++a)
          for (int b = std::max(0, w - r); b <= std::min(W - 1, w + r); ++b) {
            const double v = x.cpu_data()[(p * H + a) * W + b];
            sum += v * v;
          }
        const double base = 1 + alpha * sum / (size * size);
        const int i = (p * H + h) * W + w;
        y[i] = static_cast<float>(x.cpu_data()[i] * std::pow(base, -beta));
      }
  return y;
}

TEST(LRNLayer, HandComputedAcross) {
  auto lrn = Make("local_size: 3 alpha: 3 beta: 1 k: 1");
  Blob x(Shape{1, 3, 1, 1}), y;
  SetValues(&x, {1, 2, 3});
  lrn->SetUp({&x}, {&y});
  lrn->Forward({&x}, {&y});
  // scale = 1 + (3/3) * {1+4, 1+4+9, 4+9} = {6, 15, 14}.
  EXPECT_FLOAT_EQ(y.cpu_data()[0], 1.f / 6);
  EXPECT_FLOAT_EQ(y.cpu_data()[1], 2.f / 15);
  EXPECT_FLOAT_EQ(y.cpu_data()[2], 3.f / 14);
}

TEST(LRNLayer, HandComputedWithin) {
  // k is not used WITHIN_CHANNEL; the divisor is local_size^2 = 9 even at the border.
  auto lrn = Make("local_size: 3 alpha: 9 beta: 1 k: 5 norm_region: WITHIN_CHANNEL");
  Blob x(Shape{1, 1, 1, 3}), y;
  SetValues(&x, {1, 2, 3});
  lrn->SetUp({&x}, {&y});
  lrn->Forward({&x}, {&y});
  // base = 1 + 9 * {5, 14, 13} / 9 = {6, 15, 14}.
  EXPECT_FLOAT_EQ(y.cpu_data()[0], 1.f / 6);
  EXPECT_FLOAT_EQ(y.cpu_data()[1], 2.f / 15);
  EXPECT_FLOAT_EQ(y.cpu_data()[2], 3.f / 14);
}

TEST(LRNLayer, MatchesReference) {
  Blob x(Shape{2, 7, 3, 4});
  testing::FillGaussian(&x, 2.f, 3);
  for (const float beta : {0.75f, 0.6f}) {
    auto across = Make("local_size: 5 alpha: 0.5 k: 2 beta: " + std::to_string(beta));
    Blob y;
    across->SetUp({&x}, {&y});
    across->Forward({&x}, {&y});
    const auto ref = ReferenceAcross(x, 5, 0.5, beta, 2);
    for (int i = 0; i < y.count(); ++i)
      EXPECT_NEAR(y.cpu_data()[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << i;

    auto within =
        Make("local_size: 3 alpha: 0.5 norm_region: WITHIN_CHANNEL beta: " + std::to_string(beta));
    within->SetUp({&x}, {&y});
    within->Forward({&x}, {&y});
    const auto ref_w = ReferenceWithin(x, 3, 0.5, beta);
    for (int i = 0; i < y.count(); ++i)
      EXPECT_NEAR(y.cpu_data()[i], ref_w[i], 1e-5f * (1 + std::fabs(ref_w[i]))) << i;
  }
}

TEST(LRNLayer, GradientAcross) {
  for (const std::string param :
       {"local_size: 3 alpha: 1 beta: 0.75", "local_size: 5 alpha: 2 beta: 0.6 k: 1.5"}) {
    auto lrn = Make(param);
    Blob x(Shape{2, 7, 3, 2}), y;
    testing::FillGaussian(&x, 1.f, 4);
    testing::GradientCheckOptions options;
    options.threshold = 2e-3f;
    testing::GradientChecker(options).Check(lrn.get(), {&x}, {&y});
  }
}

TEST(LRNLayer, GradientWithin) {
  for (const std::string param : {"local_size: 3 alpha: 1 beta: 0.75 norm_region: WITHIN_CHANNEL",
                                  "local_size: 5 alpha: 2 beta: 0.6 norm_region: WITHIN_CHANNEL"}) {
    auto lrn = Make(param);
    Blob x(Shape{2, 2, 5, 6}), y;
    testing::FillGaussian(&x, 1.f, 5);
    testing::GradientCheckOptions options;
    options.threshold = 2e-3f;
    testing::GradientChecker(options).Check(lrn.get(), {&x}, {&y});
  }
}

TEST(LRNLayer, EvenLocalSizeIsAnError) {
  auto lrn = Make("local_size: 4", "norm1");
  Blob x(Shape{1, 5, 2, 2}), y;
  try {
    lrn->SetUp({&x}, {&y});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("norm1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("local_size"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace crema
