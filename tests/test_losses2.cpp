// ContrastiveLoss, HingeLoss, InfogainLoss, MultinomialLogisticLoss and
// SigmoidCrossEntropyLoss: known answers, normalisations, gradients and errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::ErrorOf;
using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

float LossOf(Layer* layer, const BlobVec& bottom, Blob* top) {
  layer->SetUp(bottom, {top});
  const float weighted = layer->Forward(bottom, {top});
  EXPECT_EQ(top->num_axes(), 0);
  (void)weighted;
  return top->cpu_data()[0];
}

// --------------------------------------------------------------------------- Contrastive

struct PairCase {
  Blob a{Shape{3, 2}}, b{Shape{3, 2}}, sim{Shape{3}};
  PairCase() {
    SetValues(&a, {1, 2, 0, 0, 3, 0});
    SetValues(&b, {1, 0, 0.3f, 0.4f, 0, 4});
    SetValues(&sim, {1, 0, 0});  // distances 2 (similar), 0.5 and 5 (dissimilar)
  }
};

TEST(ContrastiveLossLayer, Forward) {
  PairCase c;
  Blob top;
  auto layer = MakeLayer("name: 'cl' type: 'ContrastiveLoss'");
  EXPECT_NEAR(LossOf(layer.get(), {&c.a, &c.b, &c.sim}, &top), (4 + 0.25) / 3 / 2, 1e-6);
  auto legacy = MakeLayer(
      "name: 'cl' type: 'ContrastiveLoss' contrastive_loss_param { legacy_version: true }");
  EXPECT_NEAR(LossOf(legacy.get(), {&c.a, &c.b, &c.sim}, &top), (4 + 0.75) / 3 / 2, 1e-6);
  auto wide = MakeLayer("name: 'cl' type: 'ContrastiveLoss' contrastive_loss_param { margin: 6 }");
  EXPECT_NEAR(LossOf(wide.get(), {&c.a, &c.b, &c.sim}, &top), (4 + 5.5 * 5.5 + 1) / 3 / 2, 1e-5);
}

TEST(ContrastiveLossLayer, Gradient) {
  for (const char* legacy : {"false", "true"}) {
    Blob a(Shape{4, 3}), b(Shape{4, 3}), sim(Shape{4}), top;
    SetValues(&a, {0.1f, 0.5f, -0.2f, 0.3f, 0.1f, 0.0f, 1.0f, -0.4f, 0.2f, 0.0f, 0.3f, 0.6f});
    SetValues(&b, {0.4f, 0.2f, 0.1f, -0.2f, 0.3f, 0.5f, 0.8f, 0.1f, -0.3f, 0.2f, 0.2f, 0.1f});
    SetValues(&sim, {1, 0, 0, 1});
    auto layer = MakeLayer(std::string("name: 'cl' type: 'ContrastiveLoss' loss_weight: 2 "
                                       "contrastive_loss_param { margin: 1.5 legacy_version: ") +
                           legacy + " }");
    testing::GradientCheckOptions o;
    o.bottoms_to_check = {0, 1};
    o.step = 1e-3f;
    o.threshold = 2e-3f;  // Caffe's gradient adds 1e-4 to the distance
    testing::GradientChecker(o).Check(layer.get(), {&a, &b, &sim}, {&top});
  }
}

TEST(ContrastiveLossLayer, Errors) {
  Blob a(Shape{3, 2}), b(Shape{3, 3}), sim(Shape{3}), top;
  auto layer = MakeLayer("name: 'cl' type: 'ContrastiveLoss'");
  EXPECT_NE(ErrorOf([&] { layer->SetUp({&a, &b, &sim}, {&top}); }).find("'cl'"), std::string::npos);
  Blob b2(Shape{3, 2}), sim2(Shape{2});
  EXPECT_NE(ErrorOf([&] {
              layer->SetUp({&a, &b2, &sim2}, {&top});
            }).find("one value per pair"),
            std::string::npos);
}

// --------------------------------------------------------------------------------- Hinge

TEST(HingeLossLayer, Forward) {
  Blob x(Shape{2, 3}), label(Shape{2}), top;
  SetValues(&x, {1, -0.5f, 0.2f, 0.3f, 2, -2});
  SetValues(&label, {0, 1});
  auto l1 = MakeLayer("name: 'h' type: 'HingeLoss'");
  EXPECT_NEAR(LossOf(l1.get(), {&x, &label}, &top), 3.0 / 2, 1e-6);
  auto l2 = MakeLayer("name: 'h' type: 'HingeLoss' hinge_loss_param { norm: L2 }");
  EXPECT_NEAR(LossOf(l2.get(), {&x, &label}, &top), 3.38 / 2, 1e-6);
}

TEST(HingeLossLayer, Gradient) {
  for (const char* norm : {"L1", "L2"}) {
    Blob x(Shape{3, 4}), label(Shape{3}), top;
    SetValues(&x, {0.5f, -0.3f, 0.2f, 1.4f, -1.6f, 0.1f, 0.7f, -0.2f, 0.4f, 0.3f, -0.6f, 2.0f});
    SetValues(&label, {3, 0, 2});
    auto layer = MakeLayer(std::string("name: 'h' type: 'HingeLoss' loss_weight: 3 "
                                       "hinge_loss_param { norm: ") +
                           norm + " }");
    testing::GradientCheckOptions o;
    o.bottoms_to_check = {0};
    o.step = 1e-3f;
    testing::GradientChecker(o).Check(layer.get(), {&x, &label}, {&top});
  }
}

TEST(HingeLossLayer, Errors) {
  Blob x(Shape{2, 3}), label(Shape{2}), top;
  SetValues(&label, {0, 3});
  auto layer = MakeLayer("name: 'hinge' type: 'HingeLoss'");
  layer->SetUp({&x, &label}, {&top});
  const std::string e = ErrorOf([&] { layer->Forward({&x, &label}, {&top}); });
  EXPECT_NE(e.find("'hinge'"), std::string::npos) << e;
  EXPECT_NE(e.find("label 3"), std::string::npos) << e;
}

// ------------------------------------------------------------------------------ Infogain

// Reference: softmax along axis 1 of x [outer, K, inner], then -sum_k H[l,k] log p_k.
double InfogainReference(const Blob& x, const Blob& label, const std::vector<float>& H, int ignore,
                         bool has_ignore, int* valid) {
  const int outer = x.shape(0), K = x.shape(1), inner = x.count(2);
  double loss = 0;
  *valid = 0;
  for (int o = 0; o < outer; ++o)
    for (int i = 0; i < inner; ++i) {
      const int l = static_cast<int>(label.cpu_data()[o * inner + i]);
      if (has_ignore && l == ignore) continue;
      double mx = -1e30, z = 0;
      for (int k = 0; k < K; ++k) mx = std::max<double>(mx, x.cpu_data()[(o * K + k) * inner + i]);
      for (int k = 0; k < K; ++k) z += std::exp(x.cpu_data()[(o * K + k) * inner + i] - mx);
      for (int k = 0; k < K; ++k) {
        const double p = std::exp(x.cpu_data()[(o * K + k) * inner + i] - mx) / z;
        loss -= H[l * K + k] * std::log(p);
      }
      ++*valid;
    }
  return loss;
}

struct InfogainCase {
  Blob x{Shape{2, 3, 2}}, label{Shape{2, 2}}, H{Shape{1, 1, 3, 3}};
  std::vector<float> h = {1.0f, 0.2f, 0.0f, 0.1f, 0.8f, 0.3f, 0.0f, 0.5f, 1.5f};
  InfogainCase() {
    SetValues(&x, {1, -1, 2, 0.5f, 0.3f, 3, /**/ -2, 1, 0, 0, 4, -1});
    SetValues(&label, {2, 0, 1, 1});
    SetValues(&H, h);
  }
};

TEST(InfogainLossLayer, ForwardThirdBottom) {
  InfogainCase c;
  Blob top;
  int valid = 0;
  const double sum = InfogainReference(c.x, c.label, c.h, 0, false, &valid);
  auto layer = MakeLayer("name: 'ig' type: 'InfogainLoss'");
  EXPECT_NEAR(LossOf(layer.get(), {&c.x, &c.label, &c.H}, &top), sum / 4, 1e-5);
  auto batch =
      MakeLayer("name: 'ig' type: 'InfogainLoss' loss_param { normalization: BATCH_SIZE }");
  EXPECT_NEAR(LossOf(batch.get(), {&c.x, &c.label, &c.H}, &top), sum / 2, 1e-5);
  const double kept = InfogainReference(c.x, c.label, c.h, 1, true, &valid);
  EXPECT_EQ(valid, 2);
  auto ignore = MakeLayer("name: 'ig' type: 'InfogainLoss' loss_param { ignore_label: 1 }");
  EXPECT_NEAR(LossOf(ignore.get(), {&c.x, &c.label, &c.H}, &top), kept / 2, 1e-5);
  // Identity H: the softmax loss.
  Blob eye(Shape{3, 3});
  SetValues(&eye, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  const double ce = InfogainReference(c.x, c.label, {1, 0, 0, 0, 1, 0, 0, 0, 1}, 0, false, &valid);
  auto plain = MakeLayer("name: 'ig' type: 'InfogainLoss' loss_param { normalization: NONE }");
  EXPECT_NEAR(LossOf(plain.get(), {&c.x, &c.label, &eye}, &top), ce, 1e-5);
}

TEST(InfogainLossLayer, ForwardFromSourceAndProbTop) {
  InfogainCase c;
  pb::BlobProto proto;
  c.H.ToProto(&proto);
  const std::string path = ::testing::TempDir() + "/crema_infogain_H.binaryproto";
  WriteProtoToBinaryFile(proto, path);
  auto layer =
      MakeLayer("name: 'ig' type: 'InfogainLoss' infogain_loss_param { source: '" + path + "' }");
  Blob top, prob;
  layer->SetUp({&c.x, &c.label}, {&top, &prob});
  layer->Forward({&c.x, &c.label}, {&top, &prob});
  int valid = 0;
  EXPECT_NEAR(top.cpu_data()[0], InfogainReference(c.x, c.label, c.h, 0, false, &valid) / 4, 1e-5);
  ASSERT_EQ(prob.shape(), c.x.shape());
  EXPECT_NEAR(prob.cpu_data()[0] + prob.cpu_data()[2] + prob.cpu_data()[4], 1.0, 1e-6);
}

TEST(InfogainLossLayer, Gradient) {
  InfogainCase c;
  Blob top;
  auto layer =
      MakeLayer("name: 'ig' type: 'InfogainLoss' loss_weight: 2 loss_param { ignore_label: 0 }");
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  testing::GradientChecker(o).Check(layer.get(), {&c.x, &c.label, &c.H}, {&top});
}

TEST(InfogainLossLayer, Errors) {
  InfogainCase c;
  Blob top;
  auto no_h = MakeLayer("name: 'info' type: 'InfogainLoss'");
  EXPECT_NE(ErrorOf([&] {
              no_h->SetUp({&c.x, &c.label}, {&top});
            }).find("'info'"),
            std::string::npos);
  auto missing = MakeLayer(
      "name: 'info' type: 'InfogainLoss' infogain_loss_param { source: '/nonexistent/H' }");
  EXPECT_NE(ErrorOf([&] {
              missing->SetUp({&c.x, &c.label}, {&top});
            }).find("/nonexistent/H"),
            std::string::npos);
  Blob small(Shape{2, 2});
  auto wrong = MakeLayer("name: 'info' type: 'InfogainLoss'");
  EXPECT_NE(ErrorOf([&] {
              wrong->SetUp({&c.x, &c.label, &small}, {&top});
            }).find("3 x 3"),
            std::string::npos);
  auto legacy = MakeLayer("name: 'info' type: 'InfogainLoss' loss_param { normalize: true }");
  EXPECT_NE(ErrorOf([&] {
              legacy->SetUp({&c.x, &c.label, &c.H}, {&top});
            }).find("normalize"),
            std::string::npos);
  SetValues(&c.label, {2, 0, 5, 1});
  auto bad = MakeLayer("name: 'info' type: 'InfogainLoss'");
  bad->SetUp({&c.x, &c.label, &c.H}, {&top});
  EXPECT_NE(ErrorOf([&] {
              bad->Forward({&c.x, &c.label, &c.H}, {&top});
            }).find("label 5"),
            std::string::npos);
}

// ------------------------------------------------------------------ MultinomialLogistic

TEST(MultinomialLogisticLossLayer, ForwardBackward) {
  Blob p(Shape{2, 3}), label(Shape{2}), top;
  SetValues(&p, {0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f});
  SetValues(&label, {1, 2});
  auto layer = MakeLayer("name: 'mll' type: 'MultinomialLogisticLoss'");
  EXPECT_NEAR(LossOf(layer.get(), {&p, &label}, &top), -(std::log(0.5) + std::log(0.8)) / 2, 1e-6);
  // A zero probability is clamped to 1e-20.
  SetValues(&p, {0.2f, 0.0f, 0.8f, 0.1f, 0.1f, 0.8f});
  layer->Forward({&p, &label}, {&top});
  EXPECT_NEAR(top.cpu_data()[0], -(std::log(1e-20) + std::log(0.8)) / 2, 1e-3);
  SetValues(&p, {0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f});
  layer->Forward({&p, &label}, {&top});
  layer->Backward({&top}, {true, false}, {&p, &label});
  const std::vector<float> expect = {0, -1.f / (2 * 0.5f), 0, 0, 0, -1.f / (2 * 0.8f)};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(p.cpu_diff()[i], expect[i], 1e-6) << i;
}

TEST(MultinomialLogisticLossLayer, Gradient) {
  Blob p(Shape{3, 4}), label(Shape{3}), top;
  testing::FillUniform(&p, 0.2f, 1.f);
  SetValues(&label, {0, 3, 1});
  auto layer = MakeLayer("name: 'mll' type: 'MultinomialLogisticLoss' loss_weight: 0.5");
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  o.step = 1e-3f;
  testing::GradientChecker(o).Check(layer.get(), {&p, &label}, {&top});
}

TEST(MultinomialLogisticLossLayer, Errors) {
  Blob p(Shape{2, 3}), label(Shape{2}), top;
  SetValues(&label, {1, -1});
  auto layer = MakeLayer("name: 'mll' type: 'MultinomialLogisticLoss'");
  layer->SetUp({&p, &label}, {&top});
  EXPECT_NE(ErrorOf([&] {
              layer->Forward({&p, &label}, {&top});
            }).find("label -1"),
            std::string::npos);
  Blob labels3(Shape{3});
  EXPECT_NE(ErrorOf([&] {
              layer->SetUp({&p, &labels3}, {&top});
            }).find("'mll'"),
            std::string::npos);
}

// ------------------------------------------------------------------ SigmoidCrossEntropy

double SigmoidCE(double x, double t) {
  const double s = 1 / (1 + std::exp(-x));
  return -t * std::log(s) - (1 - t) * std::log(1 - s);
}

TEST(SigmoidCrossEntropyLossLayer, Forward) {
  Blob x(Shape{2, 2}), t(Shape{2, 2}), top;
  SetValues(&x, {1, -2, 0, 30});
  SetValues(&t, {1, 0, 0.5f, 0});
  const double sum = SigmoidCE(1, 1) + SigmoidCE(-2, 0) + SigmoidCE(0, 0.5) + 30.0;
  auto layer = MakeLayer("name: 'sce' type: 'SigmoidCrossEntropyLoss'");  // BATCH_SIZE default
  EXPECT_NEAR(LossOf(layer.get(), {&x, &t}, &top), sum / 2, 1e-5);
  auto full =
      MakeLayer("name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_param { normalization: FULL }");
  EXPECT_NEAR(LossOf(full.get(), {&x, &t}, &top), sum / 4, 1e-5);
  auto valid =
      MakeLayer("name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_param { normalize: true }");
  EXPECT_NEAR(LossOf(valid.get(), {&x, &t}, &top), sum / 4, 1e-5);
  // Very large logits stay finite.
  SetValues(&x, {200, -200, 100, -100});
  SetValues(&t, {0, 1, 1, 0});
  EXPECT_NEAR(LossOf(layer.get(), {&x, &t}, &top), (200 + 200) / 2.0, 1e-3);
}

TEST(SigmoidCrossEntropyLossLayer, IgnoreLabel) {
  Blob x(Shape{2, 2}), t(Shape{2, 2}), top;
  SetValues(&x, {1, -2, 0, 3});
  SetValues(&t, {1, -1, 0, -1});
  auto layer = MakeLayer(
      "name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: -1 "
      "normalization: VALID }");
  EXPECT_NEAR(LossOf(layer.get(), {&x, &t}, &top), (SigmoidCE(1, 1) + SigmoidCE(0, 0)) / 2, 1e-6);
  layer->Backward({&top}, {true, false}, {&x, &t});
  EXPECT_EQ(x.cpu_diff()[1], 0.f);
  EXPECT_EQ(x.cpu_diff()[3], 0.f);
  EXPECT_NEAR(x.cpu_diff()[0], (1 / (1 + std::exp(-1.0)) - 1) / 2, 1e-6);
  EXPECT_NEAR(x.cpu_diff()[2], 0.5 / 2, 1e-6);
}

TEST(SigmoidCrossEntropyLossLayer, Gradient) {
  Blob x(Shape{3, 4}), t(Shape{3, 4}), top;
  testing::FillGaussian(&x, 2.f);
  testing::FillUniform(&t, 0.f, 1.f, 5);
  auto layer = MakeLayer("name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_weight: 1.5");
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  testing::GradientChecker(o).Check(layer.get(), {&x, &t}, {&top});
}

TEST(SigmoidCrossEntropyLossLayer, Errors) {
  Blob x(Shape{2, 3}), t(Shape{2, 2}), top;
  auto layer = MakeLayer("name: 'sce1' type: 'SigmoidCrossEntropyLoss'");
  const std::string e = ErrorOf([&] { layer->SetUp({&x, &t}, {&top}); });
  EXPECT_NE(e.find("'sce1'"), std::string::npos) << e;
  EXPECT_NE(e.find("same count"), std::string::npos) << e;
}

}  // namespace
}  // namespace crema
