// BatchNorm: TRAIN statistics and Caffe's three running-sum blobs, global statistics,
// gradients in both modes, in place, the lr_mult 0 pinning, bad weights, and BatchNorm +
// Scale weights round-tripping through a .caffemodel in Caffe's layout.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
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

using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

// Reference TRAIN forward: per channel mean and biased variance over N and spatial.
void ReferenceTrain(const Blob& x, float eps, std::vector<float>* y, std::vector<double>* mean,
                    std::vector<double>* var) {
  const int N = x.shape(0), C = x.shape(1), S = x.count(2);
  mean->assign(C, 0.0);
  var->assign(C, 0.0);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s) (*mean)[c] += x.cpu_data()[(n * C + c) * S + s];
  for (int c = 0; c < C; ++c) (*mean)[c] /= N * S;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s) {
        const double d = x.cpu_data()[(n * C + c) * S + s] - (*mean)[c];
        (*var)[c] += d * d;
      }
  for (int c = 0; c < C; ++c) (*var)[c] /= N * S;
  y->resize(x.count());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int s = 0; s < S; ++s) {
        const int i = (n * C + c) * S + s;
        (*y)[i] = static_cast<float>((x.cpu_data()[i] - (*mean)[c]) / std::sqrt((*var)[c] + eps));
      }
}

TEST(BatchNormLayer, TrainHandExampleAndRunningSums) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm'");  // phase TRAIN: batch statistics
  EXPECT_STREQ(layer->type(), "BatchNorm");
  Blob x(Shape{4, 2}), y;
  // channel 0: 1 2 3 4 (mean 2.5, var 1.25); channel 1: 2 2 2 6 (mean 3, var 3)
  SetValues(&x, {1.f, 2.f, 2.f, 2.f, 3.f, 2.f, 4.f, 6.f});
  layer->SetUp({&x}, {&y});
  ASSERT_EQ(layer->blobs().size(), 3u);
  EXPECT_EQ(layer->blobs()[0]->shape(), Shape{2});
  EXPECT_EQ(layer->blobs()[1]->shape(), Shape{2});
  EXPECT_EQ(layer->blobs()[2]->shape(), Shape{1});
  for (int p = 0; p < 3; ++p) {
    EXPECT_EQ(layer->blobs()[p]->asum_data(), 0.f);
    EXPECT_FALSE(layer->param_propagate_down(p));
  }
  layer->Forward({&x}, {&y});
  const float eps = 1e-5f;
  const std::vector<float> x0 = {1, 2, 3, 4}, x1 = {2, 2, 2, 6};
  for (int n = 0; n < 4; ++n) {
    EXPECT_NEAR(y.cpu_data()[2 * n], (x0[n] - 2.5f) / std::sqrt(1.25f + eps), 1e-6) << n;
    EXPECT_NEAR(y.cpu_data()[2 * n + 1], (x1[n] - 3.f) / std::sqrt(3.f + eps), 1e-6) << n;
  }
  const float* mean_sum = layer->blobs()[0]->cpu_data();
  const float* var_sum = layer->blobs()[1]->cpu_data();
  const float* factor = layer->blobs()[2]->cpu_data();
  EXPECT_FLOAT_EQ(factor[0], 1.f);
  EXPECT_FLOAT_EQ(mean_sum[0], 2.5f);
  EXPECT_FLOAT_EQ(mean_sum[1], 3.f);
  EXPECT_FLOAT_EQ(var_sum[0], 1.25f * 4 / 3);  // unbiased: m / (m - 1)
  EXPECT_FLOAT_EQ(var_sum[1], 3.f * 4 / 3);

  // Second batch: 2 x: means 5, 6; variances 5, 12.
  for (int i = 0; i < 8; ++i) x.mutable_cpu_data()[i] *= 2.f;
  layer->Forward({&x}, {&y});
  EXPECT_FLOAT_EQ(factor[0], 0.999f + 1.f);
  EXPECT_FLOAT_EQ(mean_sum[0], 5.f + 0.999f * 2.5f);
  EXPECT_FLOAT_EQ(mean_sum[1], 6.f + 0.999f * 3.f);
  EXPECT_FLOAT_EQ(var_sum[0], 5.f * 4 / 3 + 0.999f * (1.25f * 4 / 3));
  EXPECT_FLOAT_EQ(var_sum[1], 12.f * 4 / 3 + 0.999f * 4.f);
  // The output uses this batch's statistics only.
  EXPECT_NEAR(y.cpu_data()[0], (2.f - 5.f) / std::sqrt(5.f + eps), 1e-6);
}

TEST(BatchNormLayer, MovingAverageFractionAndEps) {
  auto layer = MakeLayer(
      "name: 'bn' type: 'BatchNorm' batch_norm_param { moving_average_fraction: 0.5 eps: 0.1 }");
  Blob x(Shape{2, 1}), y;
  SetValues(&x, {1.f, 3.f});  // mean 2, var 1
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_NEAR(y.cpu_data()[0], -1.f / std::sqrt(1.1f), 1e-6);
  SetValues(&x, {0.f, 4.f});  // mean 2, var 4
  layer->Forward({&x}, {&y});
  EXPECT_FLOAT_EQ(layer->blobs()[2]->cpu_data()[0], 1.5f);
  EXPECT_FLOAT_EQ(layer->blobs()[0]->cpu_data()[0], 2.f + 0.5f * 2.f);
  EXPECT_FLOAT_EQ(layer->blobs()[1]->cpu_data()[0], 8.f + 0.5f * 2.f);
}

TEST(BatchNormLayer, TrainForward4DMatchesReference) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm'");
  Blob x(Shape{3, 4, 2, 3}), y;
  testing::FillGaussian(&x, 2.f, 1);
  for (int i = 0; i < x.count(); ++i) x.mutable_cpu_data()[i] += static_cast<float>(i % 5);
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  std::vector<float> ref;
  std::vector<double> mean, var;
  ReferenceTrain(x, 1e-5f, &ref, &mean, &var);
  for (int i = 0; i < x.count(); ++i) EXPECT_NEAR(y.cpu_data()[i], ref[i], 2e-6) << i;
  const int m = 3 * 6;
  for (int c = 0; c < 4; ++c) {
    EXPECT_NEAR(layer->blobs()[0]->cpu_data()[c], mean[c], 1e-5);
    EXPECT_NEAR(layer->blobs()[1]->cpu_data()[c], var[c] * m / (m - 1), 1e-5);
  }
}

TEST(BatchNormLayer, TestPhaseUsesGlobalStats) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm' phase: TEST");
  Blob x(Shape{2, 2, 1, 2}), y;
  SetValues(&x, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f});
  layer->SetUp({&x}, {&y});
  // Stored sums with factor 2: mean (1, 4), variance (0.25, 9).
  SetValues(layer->blobs()[0].get(), {2.f, 8.f});
  SetValues(layer->blobs()[1].get(), {0.5f, 18.f});
  SetValues(layer->blobs()[2].get(), {2.f});
  layer->Forward({&x}, {&y});
  const float eps = 1e-5f;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int s = 0; s < 2; ++s) {
        const int i = (n * 2 + c) * 2 + s;
        const float mu = c == 0 ? 1.f : 4.f, var = c == 0 ? 0.25f : 9.f;
        EXPECT_NEAR(y.cpu_data()[i], (x.cpu_data()[i] - mu) / std::sqrt(var + eps), 1e-5) << i;
      }
  // The statistics are not touched in TEST.
  EXPECT_EQ(layer->blobs()[2]->cpu_data()[0], 2.f);
  EXPECT_EQ(layer->blobs()[0]->cpu_data()[0], 2.f);
  // A zero factor means zero mean and variance: y = x / sqrt(eps).
  layer->blobs()[2]->mutable_cpu_data()[0] = 0.f;
  layer->Forward({&x}, {&y});
  EXPECT_NEAR(y.cpu_data()[3], 4.f / std::sqrt(eps), 1e-2);
}

TEST(BatchNormLayer, UseGlobalStatsOverridesThePhase) {
  auto layer = MakeLayer(
      "name: 'bn' type: 'BatchNorm' phase: TEST batch_norm_param { use_global_stats: false }");
  Blob x(Shape{2, 1}), y;
  SetValues(&x, {1.f, 3.f});
  layer->SetUp({&x}, {&y});
  layer->Forward({&x}, {&y});
  EXPECT_NEAR(y.cpu_data()[0], -1.f / std::sqrt(1.f + 1e-5f), 1e-6);
  EXPECT_EQ(layer->blobs()[2]->cpu_data()[0], 1.f);
  auto global =
      MakeLayer("name: 'bn' type: 'BatchNorm' batch_norm_param { use_global_stats: true }");
  global->SetUp({&x}, {&y});
  global->Forward({&x}, {&y});
  EXPECT_EQ(global->blobs()[2]->cpu_data()[0], 0.f);
}

TEST(BatchNormLayer, GradientTrain) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm'");
  Blob x(Shape{2, 3, 2, 2}), y;
  testing::FillGaussian(&x, 1.f, 2);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(BatchNormLayer, GradientTrain2D) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.01 }");
  Blob x(Shape{5, 3}), y;
  testing::FillGaussian(&x, 1.5f, 3);
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
}

TEST(BatchNormLayer, GradientGlobalStats) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm' phase: TEST");
  Blob x(Shape{2, 3, 2}), y;
  testing::FillGaussian(&x, 1.f, 4);
  layer->SetUp({&x}, {&y});
  SetValues(layer->blobs()[0].get(), {0.3f, -0.6f, 1.2f});
  SetValues(layer->blobs()[1].get(), {1.5f, 0.9f, 3.f});
  SetValues(layer->blobs()[2].get(), {1.5f});
  testing::GradientChecker().Check(layer.get(), {&x}, {&y});
  // dx = dy / sqrt(var + eps) exactly.
  for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = 1.f;
  layer->Backward({&y}, {true}, {&x});
  // element 2 is channel 1: variance 0.9 / 1.5 = 0.6
  EXPECT_NEAR(x.cpu_diff()[2], 1.f / std::sqrt(0.6f + 1e-5f), 1e-6);
}

void ExpectInPlaceMatches(const std::string& text) {
  Blob x(Shape{3, 2, 2, 3});
  testing::FillGaussian(&x, 1.f, 5);
  std::vector<float> dtop(x.count());
  for (int i = 0; i < x.count(); ++i) dtop[i] = std::sin(0.7f * i);
  auto prepare = [](Layer* layer) {
    if (layer->phase() == Phase::TEST) {
      SetValues(layer->blobs()[0].get(), {0.5f, -1.f});
      SetValues(layer->blobs()[1].get(), {2.f, 0.5f});
      SetValues(layer->blobs()[2].get(), {1.f});
    }
  };
  auto separate = MakeLayer(text);
  Blob bottom(x.shape()), top;
  bottom.CopyFrom(x);
  separate->SetUp({&bottom}, {&top});
  prepare(separate.get());
  separate->Forward({&bottom}, {&top});
  std::copy(dtop.begin(), dtop.end(), top.mutable_cpu_diff());
  separate->Backward({&top}, {true}, {&bottom});

  auto inplace = MakeLayer(text);
  Blob blob(x.shape());
  blob.CopyFrom(x);
  inplace->SetUp({&blob}, {&blob});
  prepare(inplace.get());
  inplace->Forward({&blob}, {&blob});
  for (int i = 0; i < x.count(); ++i) EXPECT_FLOAT_EQ(blob.cpu_data()[i], top.cpu_data()[i]);
  // A later in-place layer may overwrite the top; the backward must not depend on it.
  for (int i = 0; i < x.count(); ++i) blob.mutable_cpu_data()[i] = 123.f;
  std::copy(dtop.begin(), dtop.end(), blob.mutable_cpu_diff());
  inplace->Backward({&blob}, {true}, {&blob});
  for (int i = 0; i < x.count(); ++i)
    EXPECT_NEAR(blob.cpu_diff()[i], bottom.cpu_diff()[i], 1e-6) << i;
  for (int p = 0; p < 3; ++p)
    for (int i = 0; i < inplace->blobs()[p]->count(); ++i)
      EXPECT_EQ(inplace->blobs()[p]->cpu_data()[i], separate->blobs()[p]->cpu_data()[i]);
}

TEST(BatchNormLayer, InPlaceTrain) {
  ExpectInPlaceMatches("name: 'bn' type: 'BatchNorm'");
}
TEST(BatchNormLayer, InPlaceGlobal) {
  ExpectInPlaceMatches("name: 'bn' type: 'BatchNorm' phase: TEST");
}

TEST(BatchNormLayer, ThreadsAgree) {
  std::vector<float> out[2], grad[2], stats[2];
  for (int run = 0; run < 2; ++run) {
    Context::set_num_threads(run + 1);
    auto layer = MakeLayer("name: 'bn' type: 'BatchNorm'");
    Blob x(Shape{8, 16, 40, 40}), y;
    testing::FillGaussian(&x, 1.f, 6);
    layer->SetUp({&x}, {&y});
    layer->Forward({&x}, {&y});
    for (int i = 0; i < y.count(); ++i) y.mutable_cpu_diff()[i] = std::cos(0.01f * i);
    layer->Backward({&y}, {true}, {&x});
    out[run].assign(y.cpu_data(), y.cpu_data() + y.count());
    grad[run].assign(x.cpu_diff(), x.cpu_diff() + x.count());
    stats[run].assign(layer->blobs()[1]->cpu_data(), layer->blobs()[1]->cpu_data() + 16);
  }
  Context::set_num_threads(1);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(grad[0], grad[1]);
  EXPECT_EQ(stats[0], stats[1]);
}

TEST(BatchNormLayer, StatisticsArePinnedToLrMultZero) {
  auto layer = MakeLayer("name: 'bn' type: 'BatchNorm'");
  Blob x(Shape{2, 3}), y;
  layer->SetUp({&x}, {&y});
  ASSERT_EQ(layer->layer_param().param_size(), 3);
  for (int p = 0; p < 3; ++p) EXPECT_EQ(layer->layer_param().param(p).lr_mult(), 0.f);
  // Explicit lr_mult 0 is fine, anything else is an error naming the layer.
  MakeLayer("name: 'bn' type: 'BatchNorm' param { lr_mult: 0 } param { lr_mult: 0 }")
      ->SetUp({&x}, {&y});
  auto bad = MakeLayer("name: 'bad' type: 'BatchNorm' param { lr_mult: 0 } param { lr_mult: 1 }");
  try {
    bad->SetUp({&x}, {&y});
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bad'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lr_mult"), std::string::npos) << e.what();
  }
}

TEST(BatchNormLayer, BadWeightsAndShapes) {
  Blob x(Shape{2, 3, 2}), y;
  auto expect_error = [&](const std::string& text, const std::string& part, Blob* bottom) {
    try {
      auto layer = MakeLayer(text);
      layer->SetUp({bottom}, {&y});
      FAIL() << "expected crema::Error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'bad'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  // Two blobs only.
  expect_error(
      "name: 'bad' type: 'BatchNorm' blobs { shape { dim: 3 } data: 0 data: 0 data: 0 }"
      " blobs { shape { dim: 3 } data: 0 data: 0 data: 0 }",
      "3 parameter blobs", &x);
  // Statistics for 2 channels, bottom with 3.
  expect_error(
      "name: 'bad' type: 'BatchNorm' blobs { shape { dim: 2 } data: 0 data: 0 }"
      " blobs { shape { dim: 2 } data: 0 data: 0 } blobs { shape { dim: 1 } data: 1 }",
      "3 channels", &x);
  // The channel count may not change after setup.
  auto layer = MakeLayer("name: 'bad' type: 'BatchNorm'");
  layer->SetUp({&x}, {&y});
  Blob other(Shape{2, 4, 2});
  EXPECT_THROW(layer->Forward({&other}, {&y}), Error);
}

// ---------------------------------------------------------------------------------------
// BatchNorm + Scale in a net, and their weights through a .caffemodel.

const char* kBnScaleNet = R"(
  name: "bn_scale"
  layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 dim: 2 dim: 2 } } }
  layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }
  layer { name: "scale" type: "Scale" bottom: "x" top: "x"
          scale_param { bias_term: true filler { type: "gaussian" std: 1 }
                        bias_filler { type: "gaussian" std: 1 } } }
)";

pb::NetParameter NetParam(Phase phase) {
  pb::NetParameter param;
  ReadProtoFromTextString(kBnScaleNet, &param, "bn_scale net");
  param.mutable_state()->set_phase(static_cast<pb::Phase>(phase));
  return param;
}

TEST(BatchNormLayer, BatchNormScaleCaffemodelRoundTrip) {
  Net train(NetParam(Phase::TRAIN));
  // Two TRAIN forwards accumulate statistics.
  Blob* input = train.blob_by_name("x").get();
  for (int pass = 0; pass < 2; ++pass) {
    testing::FillGaussian(input, 1.f + pass, 30 + pass);
    train.Forward();
  }
  auto bn = train.layer_by_name("bn");
  auto scale = train.layer_by_name("scale");
  ASSERT_EQ(bn->blobs().size(), 3u);
  ASSERT_EQ(scale->blobs().size(), 2u);
  EXPECT_FLOAT_EQ(bn->blobs()[2]->cpu_data()[0], 1.999f);

  pb::NetParameter weights;
  train.ToProto(&weights);
  // Caffe's layout in the file: BatchNorm [C], [C], [1]; Scale [C], [C].
  const pb::LayerParameter* bn_proto = nullptr;
  const pb::LayerParameter* scale_proto = nullptr;
  for (const auto& l : weights.layer()) {
    if (l.name() == "bn") bn_proto = &l;
    if (l.name() == "scale") scale_proto = &l;
  }
  ASSERT_TRUE(bn_proto && scale_proto);
  ASSERT_EQ(bn_proto->blobs_size(), 3);
  EXPECT_EQ(bn_proto->blobs(0).shape().dim_size(), 1);
  EXPECT_EQ(bn_proto->blobs(0).shape().dim(0), 3);
  EXPECT_EQ(bn_proto->blobs(2).shape().dim(0), 1);
  ASSERT_EQ(scale_proto->blobs_size(), 2);

  char dir_template[] = "/tmp/crema_bn_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string path = dir + "/bn_scale.caffemodel";
  WriteProtoToBinaryFile(weights, path);

  Net test(NetParam(Phase::TEST));
  test.CopyTrainedLayersFrom(path);
  for (const char* name : {"bn", "scale"}) {
    auto source = train.layer_by_name(name);
    auto target = test.layer_by_name(name);
    ASSERT_EQ(target->blobs().size(), source->blobs().size()) << name;
    for (size_t p = 0; p < source->blobs().size(); ++p) {
      EXPECT_EQ(target->blobs()[p]->shape(), source->blobs()[p]->shape()) << name << " " << p;
      for (int i = 0; i < source->blobs()[p]->count(); ++i)
        EXPECT_EQ(target->blobs()[p]->cpu_data()[i], source->blobs()[p]->cpu_data()[i]);
    }
  }

  // The TEST net normalises with the stored statistics, then scales and shifts.
  Blob* test_input = test.blob_by_name("x").get();
  testing::FillGaussian(test_input, 1.f, 40);
  std::vector<float> x(test_input->cpu_data(), test_input->cpu_data() + test_input->count());
  test.Forward();
  const float* out = test.blob_by_name("x")->cpu_data();
  const float* mean_sum = bn->blobs()[0]->cpu_data();
  const float* var_sum = bn->blobs()[1]->cpu_data();
  const float factor = bn->blobs()[2]->cpu_data()[0];
  const float* s = scale->blobs()[0]->cpu_data();
  const float* b = scale->blobs()[1]->cpu_data();
  for (int i = 0; i < static_cast<int>(x.size()); ++i) {
    const int c = (i / 4) % 3;
    const double normalised = (x[i] - mean_sum[c] / factor) / std::sqrt(var_sum[c] / factor + 1e-5);
    EXPECT_NEAR(out[i], s[c] * normalised + b[c], 1e-4) << i;
  }
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

// Caffe gives the statistics lr_mult 0 through the layer's own LayerParameter, which its Net
// reads when it registers parameters (Net::AppendParam uses layers_[id]->layer_param()).
// crema's Net reads the net's copy instead, so the solver would still update (weight-decay)
// the statistics. Enable once Net::AppendParam reads layer->layer_param().
TEST(BatchNormLayer, NetSeesLrMultZero) {
  Net train(NetParam(Phase::TRAIN));
  const auto& lr = train.params_lr();
  // Params: bn's 3 statistics, then scale's 2.
  ASSERT_EQ(lr.size(), 5u);
  for (int p = 0; p < 3; ++p) EXPECT_EQ(lr[p], 0.f) << p;
  EXPECT_EQ(lr[3], 1.f);
}

}  // namespace
}  // namespace crema
