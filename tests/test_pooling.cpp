// Pooling: output sizes (CEIL / FLOOR, the padded-last-window rule), known answers for MAX,
// AVE (with the padded divisor), STOCHASTIC and global pooling, gradients and errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/layer_registry.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::Diffs;
using testing::MakeLayer;
using testing::SetValues;
using testing::Values;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& pool_param, const std::string& extra = "",
                            const std::string& name = "pool") {
  return MakeLayer("name: '" + name + "' type: 'Pooling' " + extra + " pooling_param { " +
                   pool_param + " }");
}

std::vector<float> Iota(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i + 1);
  return v;
}

Shape OutShape(const std::string& param, const Shape& in) {
  auto pool = Make(param);
  Blob x(in), y;
  pool->SetUp({&x}, {&y});
  return y.shape();
}

TEST(PoolingLayer, OutputSizeCeilAndFloor) {
  // 6x6, kernel 3, stride 2: (6 - 3) / 2 = 1.5 -> CEIL 3, FLOOR 2.
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2", {1, 1, 6, 6}), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2 round_mode: FLOOR", {1, 1, 6, 6}),
            (Shape{1, 1, 2, 2}));
  // Exact fit: both 3.
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2 round_mode: FLOOR", {1, 1, 7, 7}),
            (Shape{1, 1, 3, 3}));
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2", {1, 1, 7, 7}), (Shape{1, 1, 3, 3}));
  // Rectangular.
  EXPECT_EQ(OutShape("kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1", {2, 3, 5, 6}),
            (Shape{2, 3, 3, 4}));
}

TEST(PoolingLayer, PaddedLastWindowRule) {
  // 5x5, kernel 2, stride 2, pad 1: CEIL gives ceil(5/2) + 1 = 4, but window 3 would start
  // at 3*2 - 1 = 5, in the padding: dropped -> 3.
  EXPECT_EQ(OutShape("kernel_size: 2 stride: 2 pad: 1", {1, 1, 5, 5}), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(OutShape("kernel_size: 2 stride: 2 pad: 1 round_mode: FLOOR", {1, 1, 5, 5}),
            (Shape{1, 1, 3, 3}));
  // 4x4, kernel 3, stride 2, pad 1: CEIL 3 and the last window starts at 3 (inside): kept.
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2 pad: 1", {1, 1, 4, 4}), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(OutShape("kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", {1, 1, 4, 4}),
            (Shape{1, 1, 2, 2}));
}

TEST(PoolingLayer, MaxCeilAndFloor) {
  for (const bool ceil : {true, false}) {
    auto pool = Make(std::string("kernel_size: 3 stride: 2") + (ceil ? "" : " round_mode: FLOOR"));
    Blob x(Shape{1, 1, 6, 6}), y;
    SetValues(&x, Iota(36));
    pool->SetUp({&x}, {&y});
    pool->Forward({&x}, {&y});
    // Each window's maximum is its bottom-right element 6*h + w + 1.
    if (ceil)
      EXPECT_EQ(Values(y), (std::vector<float>{15, 17, 18, 27, 29, 30, 33, 35, 36}));
    else
      EXPECT_EQ(Values(y), (std::vector<float>{15, 17, 27, 29}));
  }
}

TEST(PoolingLayer, MaxMaskTopAndTies) {
  auto pool = Make("kernel_size: 2 stride: 2");
  Blob x(Shape{1, 2, 2, 4}), y, mask;
  // Channel 0: window 0 all equal (first wins), window 1 max at the last element.
  // Channel 1: negative values, max in the middle.
  SetValues(&x, {5, 5, 1, 2, 5, 5, 3, 9, -4, -2, -8, -1, -3, -5, -7, -6});
  pool->SetUp({&x}, {&y, &mask});
  pool->Forward({&x}, {&y, &mask});
  EXPECT_EQ(Values(y), (std::vector<float>{5, 9, -2, -1}));
  EXPECT_EQ(Values(mask), (std::vector<float>{0, 7, 1, 3}));
  std::copy_n(std::vector<float>{1, 2, 3, 4}.begin(), 4, y.mutable_cpu_diff());
  pool->Backward({&y, &mask}, {true}, {&x});
  EXPECT_EQ(Diffs(x), (std::vector<float>{1, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0}));
}

TEST(PoolingLayer, MaxOverlappingWindowsAccumulate) {
  // 1x3 row pooled by kernel 1x2, stride 1: the middle element is the max of both windows.
  auto pool = Make("kernel_h: 1 kernel_w: 2 stride: 1");
  Blob x(Shape{1, 1, 1, 3}), y;
  SetValues(&x, {1, 7, 2});
  pool->SetUp({&x}, {&y});
  pool->Forward({&x}, {&y});
  EXPECT_EQ(Values(y), (std::vector<float>{7, 7}));
  std::copy_n(std::vector<float>{0.5f, 0.25f}.begin(), 2, y.mutable_cpu_diff());
  pool->Backward({&y}, {true}, {&x});
  EXPECT_EQ(Diffs(x), (std::vector<float>{0, 0.75f, 0}));
}

TEST(PoolingLayer, AveCeilClipsToImage) {
  auto pool = Make("pool: AVE kernel_size: 3 stride: 2");
  Blob x(Shape{1, 1, 6, 6}), y;
  SetValues(&x, Iota(36));
  pool->SetUp({&x}, {&y});
  pool->Forward({&x}, {&y});
  // Without padding the divisor is the clipped window: last window {29, 30, 35, 36}.
  EXPECT_FLOAT_EQ(y.cpu_data()[0], 8.f);  // mean of rows 0..2, cols 0..2
  EXPECT_FLOAT_EQ(y.cpu_data()[2], (5 + 6 + 11 + 12 + 17 + 18) / 6.f);
  EXPECT_FLOAT_EQ(y.cpu_data()[8], 32.5f);
}

TEST(PoolingLayer, AvePaddingDivisor) {
  {
    // 3x3 ones, kernel 3, stride 1, pad 1: the divisor is always 9 (window within the
    // padded image), so corners give 4/9 and edges 6/9.
    auto pool = Make("pool: AVE kernel_size: 3 stride: 1 pad: 1");
    Blob x(Shape{1, 1, 3, 3}), y;
    SetValues(&x, std::vector<float>(9, 1.f));
    pool->SetUp({&x}, {&y});
    pool->Forward({&x}, {&y});
    const float a = 4.f / 9, b = 6.f / 9;
    const std::vector<float> expected = {a, b, a, b, 1, b, a, b, a};
    for (int i = 0; i < 9; ++i) EXPECT_FLOAT_EQ(y.cpu_data()[i], expected[i]) << i;
  }
  {
    // 4x4 ones, kernel 3, stride 2, pad 1 (output 3x3): the last windows reach past the
    // padded image [-1, 5) and their divisor is clipped to it.
    auto pool = Make("pool: AVE kernel_size: 3 stride: 2 pad: 1");
    Blob x(Shape{1, 1, 4, 4}), y;
    SetValues(&x, std::vector<float>(16, 1.f));
    pool->SetUp({&x}, {&y});
    ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
    pool->Forward({&x}, {&y});
    const std::vector<float> expected = {4.f / 9, 6.f / 9, 1.f / 3, 6.f / 9, 1.f,
                                         0.5f,    1.f / 3, 0.5f,    0.25f};
    for (int i = 0; i < 9; ++i) EXPECT_FLOAT_EQ(y.cpu_data()[i], expected[i]) << i;
  }
}

TEST(PoolingLayer, GlobalPooling) {
  Blob x(Shape{2, 3, 4, 5});
  testing::FillGaussian(&x, 1.f, 3);
  for (const std::string method : {"MAX", "AVE"}) {
    auto pool = Make("pool: " + method + " global_pooling: true");
    Blob y;
    pool->SetUp({&x}, {&y});
    ASSERT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
    pool->Forward({&x}, {&y});
    for (int p = 0; p < 6; ++p) {
      const float* plane = x.cpu_data() + p * 20;
      const float expected = method == "MAX" ? *std::max_element(plane, plane + 20)
                                             : std::accumulate(plane, plane + 20, 0.f) / 20;
      EXPECT_NEAR(y.cpu_data()[p], expected, 1e-6f);
    }
  }
  // A new spatial size changes the kernel with it.
  auto pool = Make("pool: AVE global_pooling: true");
  Blob y;
  pool->SetUp({&x}, {&y});
  x.Reshape(Shape{1, 1, 2, 2});
  SetValues(&x, {1, 2, 3, 6});
  pool->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(y.cpu_data()[0], 3.f);
}

// Distinct values 0.1 apart so a +-0.01 step never changes the argmax.
void FillDistinct(Blob* x, unsigned seed) {
  std::vector<float> v(x->count());
  for (int i = 0; i < x->count(); ++i) v[i] = 0.1f * (i - x->count() / 2);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  SetValues(x, v);
}

TEST(PoolingLayer, GradientMax) {
  for (const std::string param : {"kernel_size: 3 stride: 2", "kernel_size: 3 stride: 2 pad: 1",
                                  "kernel_h: 2 kernel_w: 3 stride: 1 pad: 1"}) {
    auto pool = Make(param);
    Blob x(Shape{2, 2, 5, 6}), y;
    FillDistinct(&x, 1);
    testing::GradientChecker().Check(pool.get(), {&x}, {&y});
  }
}

TEST(PoolingLayer, GradientMaxWithMaskTop) {
  auto pool = Make("kernel_size: 2 stride: 2");
  Blob x(Shape{2, 2, 4, 5}), y, mask;
  FillDistinct(&x, 2);
  testing::GradientCheckOptions options;
  testing::GradientChecker checker(options);
  // The mask top is piecewise constant; its weights only add zero derivatives.
  checker.Check(pool.get(), {&x}, {&y, &mask});
}

TEST(PoolingLayer, GradientAve) {
  for (const std::string param :
       {"pool: AVE kernel_size: 3 stride: 2", "pool: AVE kernel_size: 3 stride: 2 pad: 1",
        "pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 1",
        "pool: AVE global_pooling: true"}) {
    auto pool = Make(param);
    Blob x(Shape{2, 2, 5, 4}), y;
    testing::FillGaussian(&x, 1.f, 4);
    testing::GradientChecker().Check(pool.get(), {&x}, {&y});
  }
}

TEST(PoolingLayer, StochasticTest) {
  auto pool = Make("pool: STOCHASTIC kernel_size: 2 stride: 2", "phase: TEST");
  Blob x(Shape{1, 1, 2, 4}), y;
  SetValues(&x, {1, 2, 0, 0, 3, 4, 0, 0});
  pool->SetUp({&x}, {&y});
  pool->Forward({&x}, {&y});
  // sum(x^2) / sum(x) = 30 / 10; an all-zero window gives 0.
  EXPECT_EQ(Values(y), (std::vector<float>{3, 0}));
}

TEST(PoolingLayer, StochasticTrainSamplesByValue) {
  auto pool =
      Make("pool: STOCHASTIC kernel_h: 1 kernel_w: 2 stride_h: 1 stride_w: 2", "phase: TRAIN");
  const int n = 4000;
  Blob x(Shape{1, 1, n, 2}), y;
  for (int i = 0; i < n; ++i) {
    x.mutable_cpu_data()[2 * i] = 1.f;
    x.mutable_cpu_data()[2 * i + 1] = 3.f;
  }
  pool->SetUp({&x}, {&y});
  Context::reseed(3, 3);
  pool->Forward({&x}, {&y});
  int threes = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(y.cpu_data()[i] == 1.f || y.cpu_data()[i] == 3.f);
    threes += y.cpu_data()[i] == 3.f;
  }
  EXPECT_NEAR(threes / static_cast<double>(n), 0.75, 0.04);
  // The gradient goes to the chosen element.
  for (int i = 0; i < n; ++i) y.mutable_cpu_diff()[i] = 1.f + i;
  pool->Backward({&y}, {true}, {&x});
  for (int i = 0; i < n; ++i) {
    const bool three = y.cpu_data()[i] == 3.f;
    EXPECT_EQ(x.cpu_diff()[2 * i], three ? 0.f : 1.f + i);
    EXPECT_EQ(x.cpu_diff()[2 * i + 1], three ? 1.f + i : 0.f);
  }
}

void ExpectSetUpError(const std::string& param, const Shape& shape, const std::string& fragment,
                      int tops = 1) {
  auto pool = Make(param, "", "bad_pool");
  Blob x(shape), y0, y1;
  BlobVec top = {&y0};
  if (tops == 2) top.push_back(&y1);
  try {
    pool->SetUp({&x}, top);
    ADD_FAILURE() << "no error for " << param;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad_pool"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(PoolingLayer, BadParameters) {
  ExpectSetUpError("kernel_size: 2 pad: 2", {1, 1, 4, 4}, "smaller than the kernel");
  ExpectSetUpError("global_pooling: true kernel_size: 2", {1, 1, 4, 4}, "global_pooling");
  ExpectSetUpError("global_pooling: true stride: 2", {1, 1, 4, 4}, "global_pooling");
  ExpectSetUpError("kernel_size: 2 kernel_h: 2 kernel_w: 2", {1, 1, 4, 4}, "kernel_size OR");
  ExpectSetUpError("stride: 2", {1, 1, 4, 4}, "kernel_size OR");
  ExpectSetUpError("kernel_h: 2", {1, 1, 4, 4}, "kernel_size OR");
  ExpectSetUpError("kernel_size: 0", {1, 1, 4, 4}, "nonzero");
  ExpectSetUpError("kernel_size: 2 stride: 0", {1, 1, 4, 4}, "stride");
  ExpectSetUpError("kernel_size: 2 pad: 1 pad_h: 1 pad_w: 1", {1, 1, 4, 4}, "pad OR");
  ExpectSetUpError("pool: STOCHASTIC kernel_size: 3 pad: 1", {1, 1, 4, 4}, "padding");
  ExpectSetUpError("kernel_size: 5 round_mode: FLOOR", {1, 1, 4, 4}, "empty output");
  ExpectSetUpError("kernel_size: 2", {1, 4, 4}, "4 axes");
  ExpectSetUpError("pool: AVE kernel_size: 2", {1, 1, 4, 4}, "", /*tops=*/2);
}

}  // namespace
}  // namespace crema
