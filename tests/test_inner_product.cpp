// InnerProduct: known answers, transpose equivalence, axis handling, gradients (both
// layouts), accumulation of parameter gradients and the shape errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

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

using testing::Diffs;
using testing::MakeLayer;
using testing::SetValues;
using testing::Values;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& ip_param, const std::string& name = "ip") {
  return MakeLayer("name: '" + name + "' type: 'InnerProduct' inner_product_param { " + ip_param +
                   " }");
}

TEST(InnerProductLayer, HandComputed) {
  auto ip = Make("num_output: 2");
  Blob x(Shape{2, 3}), y;
  SetValues(&x, {1, 2, 3, -1, 0, 2});
  ip->SetUp({&x}, {&y});
  ASSERT_EQ(y.shape(), (Shape{2, 2}));
  ASSERT_EQ(ip->blobs()[0]->shape(), (Shape{2, 3}));
  SetValues(ip->blobs()[0].get(), {1, 0, 1, 2, -1, 0.5f});
  SetValues(ip->blobs()[1].get(), {10, 20});
  ip->Forward({&x}, {&y});
  // Row 0: [1+3, 2-2+1.5] + b; row 1: [-1+2, -2+1] + b.
  EXPECT_EQ(Values(y), (std::vector<float>{14, 21.5f, 11, 19}));
  EXPECT_DOUBLE_EQ(ip->ForwardFlops({&x}, {&y}), 2.0 * 2 * 2 * 3);

  // Backward: dW = dy^T x, db = column sums, dx = dy W.
  SetValues(&y, {0, 0, 0, 0});
  std::copy_n(std::vector<float>{1, 0, 2, 1}.begin(), 4, y.mutable_cpu_diff());
  for (auto& p : ip->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  ip->Backward({&y}, {true}, {&x});
  EXPECT_EQ(Diffs(*ip->blobs()[0]), (std::vector<float>{1 - 2, 2 + 0, 3 + 4, -1, 0, 2}));
  EXPECT_EQ(Diffs(*ip->blobs()[1]), (std::vector<float>{3, 1}));
  EXPECT_EQ(Diffs(x), (std::vector<float>{1, 0, 1, 2 + 2, -1, 2 + 0.5f}));
}

TEST(InnerProductLayer, TransposeMatchesTransposedWeights) {
  auto plain = Make(
      "num_output: 4 weight_filler { type: 'gaussian' } "
      "bias_filler { type: 'gaussian' }");
  auto trans = Make("num_output: 4 transpose: true");
  Blob x(Shape{3, 2, 5}), y1, y2;
  testing::FillGaussian(&x, 1.f, 2);
  plain->SetUp({&x}, {&y1});
  trans->SetUp({&x}, {&y2});
  ASSERT_EQ(trans->blobs()[0]->shape(), (Shape{10, 4}));
  const Blob& w = *plain->blobs()[0];
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 10; ++k)
      trans->blobs()[0]->mutable_cpu_data()[k * 4 + n] = w.cpu_data()[n * 10 + k];
  trans->blobs()[1]->CopyFrom(*plain->blobs()[1]);
  plain->Forward({&x}, {&y1});
  trans->Forward({&x}, {&y2});
  ASSERT_EQ(y1.shape(), (Shape{3, 4}));
  for (int i = 0; i < y1.count(); ++i) EXPECT_NEAR(y1.cpu_data()[i], y2.cpu_data()[i], 1e-5f);
}

TEST(InnerProductLayer, Axis) {
  auto ip = Make("num_output: 3 axis: 2 bias_term: false weight_filler { type: 'gaussian' }");
  Blob x(Shape{2, 4, 5, 2}), y;
  testing::FillGaussian(&x, 1.f, 3);
  ip->SetUp({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(ip->blobs().size(), 1u);
  ip->Forward({&x}, {&y});
  const float* w = ip->blobs()[0]->cpu_data();
  for (int m = 0; m < 8; ++m)
    for (int n = 0; n < 3; ++n) {
      double s = 0;
      for (int k = 0; k < 10; ++k) s += double(w[n * 10 + k]) * x.cpu_data()[m * 10 + k];
      EXPECT_NEAR(y.cpu_data()[m * 3 + n], s, 1e-5);
    }
}

TEST(InnerProductLayer, Gradient) {
  auto ip = Make(
      "num_output: 5 weight_filler { type: 'gaussian' } "
      "bias_filler { type: 'gaussian' }");
  Blob x(Shape{3, 2, 2, 2}), y;
  testing::FillGaussian(&x, 1.f, 4);
  testing::GradientChecker().Check(ip.get(), {&x}, {&y});
}

TEST(InnerProductLayer, GradientTranspose) {
  auto ip = Make(
      "num_output: 5 transpose: true weight_filler { type: 'gaussian' } "
      "bias_filler { type: 'gaussian' }");
  Blob x(Shape{3, 7}), y;
  testing::FillGaussian(&x, 1.f, 5);
  testing::GradientChecker().Check(ip.get(), {&x}, {&y});
}

TEST(InnerProductLayer, ParameterGradientsAccumulate) {
  auto ip = Make("num_output: 3 weight_filler { type: 'gaussian' }");
  Blob x(Shape{4, 5}), y;
  testing::FillGaussian(&x, 1.f, 6);
  ip->SetUp({&x}, {&y});
  ip->Forward({&x}, {&y});
  testing::FillGaussian(&y, 1.f, 7);
  cpu_copy(y.count(), y.cpu_data(), y.mutable_cpu_diff());
  for (auto& p : ip->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  ip->Backward({&y}, {false}, {&x});
  const auto w1 = Diffs(*ip->blobs()[0]), b1 = Diffs(*ip->blobs()[1]);
  ip->Backward({&y}, {false}, {&x});
  for (size_t i = 0; i < w1.size(); ++i) EXPECT_FLOAT_EQ(ip->blobs()[0]->cpu_diff()[i], 2 * w1[i]);
  for (size_t i = 0; i < b1.size(); ++i) EXPECT_FLOAT_EQ(ip->blobs()[1]->cpu_diff()[i], 2 * b1[i]);
}

TEST(InnerProductLayer, InputSizeMayNotChange) {
  auto ip = Make("num_output: 3", "fc7");
  Blob x(Shape{2, 6}), y;
  ip->SetUp({&x}, {&y});
  x.Reshape(Shape{5, 6});  // more rows: fine
  ip->Forward({&x}, {&y});
  EXPECT_EQ(y.shape(), (Shape{5, 3}));
  x.Reshape(Shape{2, 7});
  try {
    ip->Forward({&x}, {&y});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fc7"), std::string::npos) << msg;
    EXPECT_NE(msg.find(x.shape_string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(ip->blobs()[0]->shape_string()), std::string::npos) << msg;
  }
}

TEST(InnerProductLayer, BadParameters) {
  auto ip = Make("num_output: 0", "fc0");
  Blob x(Shape{2, 6}), y;
  EXPECT_THROW(ip->SetUp({&x}, {&y}), Error);
  auto bad_axis = Make("num_output: 2 axis: 3", "fc_axis");
  try {
    bad_axis->SetUp({&x}, {&y});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc_axis"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace crema
