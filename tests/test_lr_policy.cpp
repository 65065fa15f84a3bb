// Learning-rate policies of the SGD family (solvers/sgd.hpp), against values computed by
// hand from Caffe's formulas.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <string>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "solvers/sgd.hpp"

namespace crema {
namespace {

pb::SolverParameter Params(const std::string& text) {
  pb::SolverParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param)) << text;
  return param;
}

float Rate(const pb::SolverParameter& param, int iter, int* step) {
  return ComputeLearningRate(param, iter, step);
}

float Rate(const pb::SolverParameter& param, int iter) {
  int step = 0;
  return ComputeLearningRate(param, iter, &step);
}

TEST(SolverLrPolicy, Fixed) {
  const pb::SolverParameter p = Params("lr_policy: 'fixed' base_lr: 0.01 gamma: 0.5");
  EXPECT_FLOAT_EQ(Rate(p, 0), 0.01f);
  EXPECT_FLOAT_EQ(Rate(p, 7), 0.01f);
  EXPECT_FLOAT_EQ(Rate(p, 100000), 0.01f);
}

TEST(SolverLrPolicy, Step) {
  const pb::SolverParameter p = Params("lr_policy: 'step' base_lr: 0.01 gamma: 0.1 stepsize: 10");
  int step = 0;
  EXPECT_FLOAT_EQ(Rate(p, 0, &step), 0.01f);
  EXPECT_EQ(step, 0);
  EXPECT_FLOAT_EQ(Rate(p, 9, &step), 0.01f);
  EXPECT_EQ(step, 0);
  EXPECT_FLOAT_EQ(Rate(p, 10, &step), 0.001f);
  EXPECT_EQ(step, 1);
  EXPECT_FLOAT_EQ(Rate(p, 25, &step), 0.0001f);
  EXPECT_EQ(step, 2);
  // The step is derived from the iteration, not accumulated.
  EXPECT_FLOAT_EQ(Rate(p, 3, &step), 0.01f);
  EXPECT_EQ(step, 0);
}

TEST(SolverLrPolicy, Exp) {
  const pb::SolverParameter p = Params("lr_policy: 'exp' base_lr: 0.01 gamma: 0.5");
  EXPECT_FLOAT_EQ(Rate(p, 0), 0.01f);
  EXPECT_FLOAT_EQ(Rate(p, 1), 0.005f);
  EXPECT_FLOAT_EQ(Rate(p, 3), 0.00125f);
  EXPECT_FLOAT_EQ(Rate(p, 10), 0.01f / 1024);
}

TEST(SolverLrPolicy, Inv) {
  const pb::SolverParameter p = Params("lr_policy: 'inv' base_lr: 0.01 gamma: 0.0001 power: 0.75");
  EXPECT_FLOAT_EQ(Rate(p, 0), 0.01f);
  // (1 + 1)^-0.75 = 0.59460355750
  EXPECT_NEAR(Rate(p, 10000), 0.0059460355750f, 1e-9);
  // (1 + 3)^-0.75 = 2^-1.5 = 0.35355339059
  EXPECT_NEAR(Rate(p, 30000), 0.0035355339059f, 1e-9);
  // (1 + 0.01)^-0.75 = 0.99256502902
  EXPECT_NEAR(Rate(p, 100), 0.0099256502902f, 1e-9);
}

TEST(SolverLrPolicy, MultiStep) {
  const pb::SolverParameter p =
      Params("lr_policy: 'multistep' base_lr: 0.1 gamma: 0.1 stepvalue: 3 stepvalue: 5");
  const float expected[] = {0.1f, 0.1f, 0.1f, 0.01f, 0.01f, 0.001f, 0.001f, 0.001f};
  int step = 0;
  for (int iter = 0; iter < 8; ++iter) {
    EXPECT_NEAR(Rate(p, iter, &step), expected[iter], 1e-9) << "iteration " << iter;
  }
  EXPECT_EQ(step, 2);
  // Caffe moves on by at most one step per call: jumping straight to iteration 10 from
  // step 0 takes two calls to reach the second step.
  step = 0;
  EXPECT_NEAR(Rate(p, 10, &step), 0.01f, 1e-9);
  EXPECT_EQ(step, 1);
  EXPECT_NEAR(Rate(p, 10, &step), 0.001f, 1e-9);
  EXPECT_EQ(step, 2);
  // Past the last step value nothing changes any more.
  EXPECT_NEAR(Rate(p, 1000, &step), 0.001f, 1e-9);
  EXPECT_EQ(step, 2);
}

TEST(SolverLrPolicy, Poly) {
  const pb::SolverParameter p = Params("lr_policy: 'poly' base_lr: 0.01 power: 2 max_iter: 100");
  EXPECT_FLOAT_EQ(Rate(p, 0), 0.01f);
  EXPECT_NEAR(Rate(p, 50), 0.0025f, 1e-10);
  EXPECT_NEAR(Rate(p, 90), 0.0001f, 1e-10);
  EXPECT_NEAR(Rate(p, 100), 0.f, 1e-12);
  const pb::SolverParameter linear = Params("lr_policy: 'poly' base_lr: 0.2 power: 1 max_iter: 8");
  EXPECT_NEAR(Rate(linear, 2), 0.15f, 1e-8);
  EXPECT_NEAR(Rate(linear, 6), 0.05f, 1e-8);
}

TEST(SolverLrPolicy, Sigmoid) {
  const pb::SolverParameter p =
      Params("lr_policy: 'sigmoid' base_lr: 0.01 gamma: 0.1 stepsize: 20");
  EXPECT_NEAR(Rate(p, 20), 0.005f, 1e-9);
  // 1 / (1 + e^2) = 0.11920292202
  EXPECT_NEAR(Rate(p, 0), 0.0011920292202f, 1e-9);
  // 1 / (1 + e^-2) = 0.88079707798
  EXPECT_NEAR(Rate(p, 40), 0.0088079707798f, 1e-9);
}

TEST(SolverLrPolicy, UnknownPolicyListsTheKnownOnes) {
  for (const char* text : {"lr_policy: 'cosine' base_lr: 0.1", "base_lr: 0.1"}) {
    const pb::SolverParameter p = Params(text);
    try {
      CheckLearningRatePolicy(p);
      FAIL() << "expected crema::Error for " << text;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("Unknown learning rate policy"), std::string::npos) << message;
      for (const char* name : {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"}) {
        EXPECT_NE(message.find(name), std::string::npos) << message;
      }
    }
    EXPECT_THROW(Rate(p, 0), Error);
  }
}

TEST(SolverLrPolicy, BadHyperParameters) {
  EXPECT_THROW(CheckLearningRatePolicy(Params("lr_policy: 'step' base_lr: 0.1 gamma: 0.1")),
               Error);  // stepsize missing
  EXPECT_THROW(Rate(Params("lr_policy: 'step' base_lr: 0.1 gamma: 0.1"), 3), Error);
  EXPECT_THROW(CheckLearningRatePolicy(Params("lr_policy: 'sigmoid' base_lr: 0.1 gamma: 1")),
               Error);
  EXPECT_THROW(CheckLearningRatePolicy(Params("lr_policy: 'exp' base_lr: 0.1 gamma: -0.5")), Error);
  EXPECT_THROW(CheckLearningRatePolicy(Params("lr_policy: 'poly' base_lr: 0.1 power: 1")),
               Error);  // max_iter missing
  EXPECT_NO_THROW(CheckLearningRatePolicy(Params("lr_policy: 'fixed' base_lr: 0.1")));
  EXPECT_NO_THROW(CheckLearningRatePolicy(
      Params("lr_policy: 'multistep' base_lr: 0.1 gamma: 0.1 stepvalue: 10")));
}

}  // namespace
}  // namespace crema
