// SoftmaxWithLoss and EuclideanLoss: known answers under every normalization, loss weights,
// gradients, and errors for bad labels and shapes.
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

using testing::ErrorOf;
using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

// Scores of shape (2, 3, 2): outer 2, 3 classes, inner 2 -> four positions:
//   (0,0): [1 2 3] label 2  -> -log(0.66524096) = 0.40760596
//   (0,1): [1 1 1] label 0  ->  log 3           = 1.09861229
//   (1,0): [3 2 1] label 0  ->                    0.40760596
//   (1,1): [5 -5 0] label -1 (ignored when ignore_label: -1)
struct SoftmaxLossCase {
  Blob scores{Shape{2, 3, 2}};
  Blob labels{Shape{2, 2}};
  SoftmaxLossCase() {
    SetValues(&scores, {1, 1, 2, 1, 3, 1, 3, 5, 2, -5, 1, 0});
    SetValues(&labels, {2, 0, 0, -1});
  }
};
constexpr double kLossSum = 0.4076059644 * 2 + 1.0986122887;

float SoftmaxLossWith(const std::string& loss_param) {
  auto layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss' loss_param { " + loss_param + " }");
  SoftmaxLossCase c;
  Blob top;
  layer->SetUp({&c.scores, &c.labels}, {&top});
  const float weighted = layer->Forward({&c.scores, &c.labels}, {&top});
  EXPECT_EQ(top.num_axes(), 0);
  EXPECT_FLOAT_EQ(weighted, top.cpu_data()[0]);  // default loss_weight 1
  return top.cpu_data()[0];
}

TEST(SoftmaxWithLossLayer, ForwardNormalizations) {
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalization: FULL"), kLossSum / 4, 1e-6);
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalization: VALID"), kLossSum / 3, 1e-6);
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1"), kLossSum / 3, 1e-6);  // VALID default
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalization: BATCH_SIZE"), kLossSum / 2, 1e-6);
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalization: NONE"), kLossSum, 1e-6);
  // The deprecated `normalize`: true -> VALID, false -> BATCH_SIZE; `normalization` wins.
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalize: true"), kLossSum / 3, 1e-6);
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalize: false"), kLossSum / 2, 1e-6);
  EXPECT_NEAR(SoftmaxLossWith("ignore_label: -1 normalize: false normalization: FULL"),
              kLossSum / 4, 1e-6);
}

TEST(SoftmaxWithLossLayer, AllIgnoredGivesZero) {
  auto layer = MakeLayer(
      "name: 'loss' type: 'SoftmaxWithLoss' loss_param { ignore_label: 1 normalization: VALID "
      "}");
  Blob scores(Shape{2, 3}), labels(Shape{2}), top;
  testing::FillGaussian(&scores, 1.f, 31);
  SetValues(&labels, {1, 1});
  layer->SetUp({&scores, &labels}, {&top});
  layer->Forward({&scores, &labels}, {&top});
  EXPECT_EQ(top.cpu_data()[0], 0.f);  // 0 / max(0, 1), not NaN
  layer->Backward({&top}, {true, false}, {&scores, &labels});
  for (int i = 0; i < scores.count(); ++i) EXPECT_EQ(scores.cpu_diff()[i], 0.f);
}

TEST(SoftmaxWithLossLayer, DefaultLossWeightAndProbTop) {
  pb::LayerParameter p;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "name: 'loss' type: 'SoftmaxWithLoss' loss_param { ignore_label: -1 }", &p));
  auto layer = LayerRegistry::Create(p);
  EXPECT_TRUE(layer->AutoTopBlobs());
  EXPECT_TRUE(layer->AllowForceBackward(0));
  EXPECT_FALSE(layer->AllowForceBackward(1));
  ASSERT_EQ(layer->layer_param().loss_weight_size(), 1);
  EXPECT_EQ(layer->layer_param().loss_weight(0), 1.f);
  SoftmaxLossCase c;
  Blob loss, prob;
  // With a second top and no loss_weight given, the probabilities get weight 0.
  layer->SetUp({&c.scores, &c.labels}, {&loss, &prob});
  EXPECT_EQ(layer->loss(0), 1.f);
  EXPECT_EQ(layer->loss(1), 0.f);
  layer->Forward({&c.scores, &c.labels}, {&loss, &prob});
  EXPECT_NEAR(loss.cpu_data()[0], kLossSum / 3, 1e-6);
  ASSERT_EQ(prob.shape(), c.scores.shape());
  // Position (0,0): softmax of [1 2 3] along the class axis (stride 2).
  EXPECT_NEAR(prob.cpu_data()[0], 0.0900305732, 1e-6);
  EXPECT_NEAR(prob.cpu_data()[2], 0.2447284711, 1e-6);
  EXPECT_NEAR(prob.cpu_data()[4], 0.6652409558, 1e-6);
  // Explicit weights are kept as given.
  p.add_loss_weight(0.5f);
  p.add_loss_weight(0.f);
  layer = LayerRegistry::Create(p);
  layer->SetUp({&c.scores, &c.labels}, {&loss, &prob});
  EXPECT_EQ(layer->loss(0), 0.5f);
  EXPECT_NEAR(layer->Forward({&c.scores, &c.labels}, {&loss, &prob}), 0.5 * kLossSum / 3, 1e-6);
}

TEST(SoftmaxWithLossLayer, LossWeightScalesBackward) {
  auto layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss' loss_weight: 2");
  Blob scores(Shape{1, 3}), labels(Shape{1}), top;
  SetValues(&scores, {1, 2, 3});
  SetValues(&labels, {0});
  layer->SetUp({&scores, &labels}, {&top});
  const float weighted = layer->Forward({&scores, &labels}, {&top});
  const double expected_loss = -std::log(0.0900305732);
  EXPECT_NEAR(top.cpu_data()[0], expected_loss, 1e-5);
  EXPECT_NEAR(weighted, 2 * expected_loss, 1e-5);
  layer->Backward({&top}, {true, false}, {&scores, &labels});
  EXPECT_NEAR(scores.cpu_diff()[0], 2 * (0.0900305732 - 1), 1e-6);
  EXPECT_NEAR(scores.cpu_diff()[1], 2 * 0.2447284711, 1e-6);
  EXPECT_NEAR(scores.cpu_diff()[2], 2 * 0.6652409558, 1e-6);
}

void CheckSoftmaxLossGradient(const std::string& loss_param) {
  SCOPED_TRACE(loss_param);
  auto layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss' loss_param { " + loss_param + " }");
  Blob scores(Shape{2, 4, 3}), labels(Shape{2, 3}), top;
  testing::FillGaussian(&scores, 1.f, 32);
  SetValues(&labels, {0, 3, 1, 2, 5, 3});  // 5 is the ignore label below
  testing::GradientCheckOptions opt;
  opt.bottoms_to_check = {0};
  testing::GradientChecker(opt).Check(layer.get(), {&scores, &labels}, {&top});
}

TEST(SoftmaxWithLossLayer, GradientFull) {
  CheckSoftmaxLossGradient("ignore_label: 5 normalization: FULL");
}
TEST(SoftmaxWithLossLayer, GradientValid) {
  CheckSoftmaxLossGradient("ignore_label: 5 normalization: VALID");
}
TEST(SoftmaxWithLossLayer, GradientBatchSize) {
  CheckSoftmaxLossGradient("ignore_label: 5 normalization: BATCH_SIZE");
}
TEST(SoftmaxWithLossLayer, GradientNone) {
  CheckSoftmaxLossGradient("ignore_label: 5 normalization: NONE");
}

TEST(SoftmaxWithLossLayer, GradientNoSpatial) {
  auto layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss'");
  Blob scores(Shape{3, 5}), labels(Shape{3}), top;
  testing::FillGaussian(&scores, 2.f, 33);
  SetValues(&labels, {4, 0, 2});
  testing::GradientCheckOptions opt;
  opt.bottoms_to_check = {0};
  testing::GradientChecker(opt).Check(layer.get(), {&scores, &labels}, {&top});
}

TEST(SoftmaxWithLossLayer, LabelOutOfRange) {
  auto layer = MakeLayer("name: 'myloss' type: 'SoftmaxWithLoss'");
  SoftmaxLossCase c;
  SetValues(&c.labels, {2, 0, 3, 1});
  Blob top;
  layer->SetUp({&c.scores, &c.labels}, {&top});
  const std::string msg = ErrorOf([&] { layer->Forward({&c.scores, &c.labels}, {&top}); });
  EXPECT_NE(msg.find("myloss"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label 3"), std::string::npos) << msg;
  // A negative label that is not the ignore label is just as wrong.
  SetValues(&c.labels, {2, 0, 0, -1});
  const std::string msg2 = ErrorOf([&] { layer->Forward({&c.scores, &c.labels}, {&top}); });
  EXPECT_NE(msg2.find("label -1"), std::string::npos) << msg2;
}

TEST(SoftmaxWithLossLayer, LabelCountMismatch) {
  auto layer = MakeLayer("name: 'myloss' type: 'SoftmaxWithLoss'");
  Blob scores(Shape{2, 3, 2}), labels(Shape{2, 3}), top;
  const std::string msg = ErrorOf([&] { layer->SetUp({&scores, &labels}, {&top}); });
  EXPECT_NE(msg.find("myloss"), std::string::npos) << msg;
  EXPECT_NE(msg.find(scores.shape_string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(labels.shape_string()), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------
// EuclideanLoss

TEST(EuclideanLossLayer, Forward) {
  auto layer = MakeLayer("name: 'l2' type: 'EuclideanLoss'");
  EXPECT_STREQ(layer->type(), "EuclideanLoss");
  Blob a(Shape{2, 2}), b(Shape{2, 2}), top;
  SetValues(&a, {1, 2, 3, 4});
  SetValues(&b, {0, 2, 1, 1});
  layer->SetUp({&a, &b}, {&top});
  const float weighted = layer->Forward({&a, &b}, {&top});
  // (1 + 0 + 4 + 9) / (2 * 2)
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 3.5f);
  EXPECT_FLOAT_EQ(weighted, 3.5f);
  layer->Backward({&top}, {true, true}, {&a, &b});
  const float grad[] = {0.5f, 0.f, 1.f, 1.5f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(a.cpu_diff()[i], grad[i]);
    EXPECT_FLOAT_EQ(b.cpu_diff()[i], -grad[i]);
  }
  EXPECT_TRUE(layer->AllowForceBackward(1));
}

TEST(EuclideanLossLayer, Gradient) {
  auto layer = MakeLayer("name: 'l2' type: 'EuclideanLoss'");
  Blob a(Shape{3, 2, 2}), b(Shape{3, 4}), top;
  testing::FillGaussian(&a, 1.f, 34);
  testing::FillGaussian(&b, 1.f, 35);
  testing::GradientChecker().Check(layer.get(), {&a, &b}, {&top});
}

TEST(EuclideanLossLayer, ShapeMismatch) {
  auto layer = MakeLayer("name: 'l2bad' type: 'EuclideanLoss'");
  Blob a(Shape{3, 4}), b(Shape{3, 5}), top;
  const std::string msg = ErrorOf([&] { layer->SetUp({&a, &b}, {&top}); });
  EXPECT_NE(msg.find("l2bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find(a.shape_string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(b.shape_string()), std::string::npos) << msg;
  Blob c(Shape{2, 4});
  const std::string msg2 = ErrorOf([&] { layer->SetUp({&a, &c}, {&top}); });
  EXPECT_NE(msg2.find(c.shape_string()), std::string::npos) << msg2;
}

}  // namespace
}  // namespace crema
