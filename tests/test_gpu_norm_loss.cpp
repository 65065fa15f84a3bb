// The GPU code of the normalisation layers (BatchNorm, LRN, MVN), Deconvolution, SPP and
// the losses ContrastiveLoss, HingeLoss, InfogainLoss, MultinomialLogisticLoss and
// SigmoidCrossEntropyLoss against the CPU path. Every test needs a CUDA device: in CPU-only
// builds, or when no device is visible, each one is skipped with "no CUDA device: GPU test
// skipped".
//
// For each layer: forward and backward in GPU mode equal the CPU path (relative 1e-4, fp32)
// for parameter settings that reach every branch, and the numerical gradient check passes
// in GPU mode with the options of the layer's CPU gradient test. Also: BatchNorm's running
// sums, in-place BatchNorm and MVN, and the label errors of the losses in GPU mode.
#include <string>
#include <vector>

#include "crema/io.hpp"
#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

// Forward and backward with the top being the bottom, once on the CPU and once on the GPU
// from the same data and top gradient: the outputs and input gradients must agree.
void CompareInPlace(const std::string& text, const std::vector<int>& shape) {
  std::vector<float> out[2], grad[2];
  for (int k = 0; k < 2; ++k) {
    std::shared_ptr<Layer> layer = MakeLayer(text);
    Blob x(shape);
    FillBlob(&x, Gaussian(), 17);
    layer->SetUp({&x}, {&x});
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    layer->Forward({&x}, {&x});
    Context::set_mode(Mode::CPU);
    out[k] = Data(x);
    Context::reseed(/*stream=*/778, 0);
    cpu_rng_gaussian(x.count(), 0.f, 1.f, x.mutable_cpu_diff());
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    layer->Backward({&x}, {true}, {&x});
    Context::set_mode(Mode::CPU);
    grad[k] = Diff(x);
  }
  ExpectClose(out[0], out[1].data(), text + ": in-place top");
  ExpectClose(grad[0], grad[1].data(), text + ": in-place bottom diff");
}

// ---------------------------------------------------------------------------------------
// BatchNorm
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, BatchNormTrainStatistics) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {{4, 3, 5, 6}}, {Gaussian()});
  CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {{6, 5}}, {Gaussian()});
  CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {{7}}, {Gaussian()});  // one channel
  CompareCpuGpu(
      "name: 'bn' type: 'BatchNorm' batch_norm_param { moving_average_fraction: 0.5 eps: 0.1 }",
      {{2, 4, 3, 2, 2}}, {Positive()});
  // One value per channel: m = 1, variance 0.
  CompareCpuGpu("name: 'bn' type: 'BatchNorm'", {{1, 3, 1, 1}}, {Gaussian()});
  GradientCheckGpu("name: 'bn' type: 'BatchNorm'", {{2, 3, 2, 2}}, {Gaussian()});
  GradientCheckGpu("name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.01 }", {{5, 3}},
                   {Gaussian()});
}

// Stored statistics (Caffe's layout: mean sum, variance sum, scale factor) in the prototxt.
const char kBatchNormStats[] =
    "blobs { shape { dim: 3 } data: 0.3 data: -0.6 data: 1.2 } "
    "blobs { shape { dim: 3 } data: 1.5 data: 0.9 data: 3 } "
    "blobs { shape { dim: 1 } data: 1.5 } ";

TEST_F(GpuLayers, BatchNormGlobalStatistics) {
  REQUIRE_GPU();
  const std::string test_phase =
      std::string("name: 'bn' type: 'BatchNorm' phase: TEST ") + kBatchNormStats;
  CompareCpuGpu(test_phase, {{2, 3, 4, 5}}, {Gaussian()});
  const std::string forced = std::string("name: 'bn' type: 'BatchNorm' ") + kBatchNormStats +
                             "batch_norm_param { use_global_stats: true eps: 0.001 }";
  CompareCpuGpu(forced, {{4, 3}}, {Gaussian()});
  // Factor 0 (nothing accumulated yet): mean and variance read as 0.
  CompareCpuGpu("name: 'bn' type: 'BatchNorm' phase: TEST", {{2, 3, 2, 2}}, {Gaussian()});
  GradientCheckGpu(test_phase, {{2, 3, 2}}, {Gaussian()});
}

TEST_F(GpuLayers, BatchNormRunningSumsMatchCpu) {
  REQUIRE_GPU();
  const std::string text =
      "name: 'bn' type: 'BatchNorm' batch_norm_param { moving_average_fraction: 0.9 }";
  std::vector<std::vector<float>> params[2];
  std::vector<float> tops[2];
  for (int k = 0; k < 2; ++k) {
    std::shared_ptr<Layer> layer = MakeLayer(text);
    Blob x(std::vector<int>{3, 4, 5, 2}), y;
    layer->SetUp({&x}, {&y});
    for (int iteration = 0; iteration < 3; ++iteration) {
      FillBlob(&x, Gaussian(), 50 + iteration);
      for (int i = 0; i < x.count(); ++i) x.mutable_cpu_data()[i] += 0.5f * (i / 10 % 4);
      Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
      layer->Forward({&x}, {&y});
      Context::set_mode(Mode::CPU);
    }
    for (const auto& p : layer->blobs()) params[k].push_back(Data(*p));
    tops[k] = Data(y);
  }
  ExpectClose(tops[0], tops[1].data(), "BatchNorm top");
  ASSERT_EQ(params[0].size(), 3u);
  ASSERT_EQ(params[1].size(), 3u);
  ExpectClose(params[0][0], params[1][0].data(), "BatchNorm mean sum");
  ExpectClose(params[0][1], params[1][1].data(), "BatchNorm variance sum");
  ExpectClose(params[0][2], params[1][2].data(), "BatchNorm factor");
}

TEST_F(GpuLayers, BatchNormInPlace) {
  REQUIRE_GPU();
  CompareInPlace("name: 'bn' type: 'BatchNorm'", {3, 2, 2, 3});
  CompareInPlace(std::string("name: 'bn' type: 'BatchNorm' phase: TEST ") + kBatchNormStats,
                 {2, 3, 2, 2});
}

// ---------------------------------------------------------------------------------------
// LRN
// ---------------------------------------------------------------------------------------

std::string Lrn(const std::string& param) {
  return "name: 'norm' type: 'LRN' lrn_param { " + param + " }";
}

TEST_F(GpuLayers, LRNAcrossChannels) {
  REQUIRE_GPU();
  CompareCpuGpu(Lrn(""), {{2, 16, 6, 5}}, {Gaussian()});  // 5, 1, 0.75, 1: Caffe's default
  CompareCpuGpu(Lrn("local_size: 3 alpha: 2 beta: 0.6 k: 1.5"), {{2, 7, 5, 4}}, {Gaussian()});
  CompareCpuGpu(Lrn("local_size: 7 alpha: 0.5"), {{1, 3, 2, 2}}, {Gaussian()});  // n > C
  testing::GradientCheckOptions o;
  o.threshold = 2e-3f;
  for (const std::string param :
       {"local_size: 3 alpha: 1 beta: 0.75", "local_size: 5 alpha: 2 beta: 0.6 k: 1.5"})
    GradientCheckGpu(Lrn(param), {{2, 7, 3, 2}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, LRNWithinChannel) {
  REQUIRE_GPU();
  CompareCpuGpu(Lrn("local_size: 3 alpha: 1 beta: 0.75 norm_region: WITHIN_CHANNEL"),
                {{2, 2, 5, 6}}, {Gaussian()});
  CompareCpuGpu(Lrn("local_size: 5 alpha: 2 beta: 0.6 norm_region: WITHIN_CHANNEL"), {{2, 3, 7, 4}},
                {Gaussian()});
  // The window is larger than the plane.
  CompareCpuGpu(Lrn("local_size: 5 alpha: 0.5 norm_region: WITHIN_CHANNEL"), {{1, 2, 2, 3}},
                {Gaussian()});
  testing::GradientCheckOptions o;
  o.threshold = 2e-3f;
  for (const std::string param : {"local_size: 3 alpha: 1 beta: 0.75 norm_region: WITHIN_CHANNEL",
                                  "local_size: 5 alpha: 2 beta: 0.6 norm_region: WITHIN_CHANNEL"})
    GradientCheckGpu(Lrn(param), {{2, 2, 5, 6}}, {Gaussian()}, o);
}

// ---------------------------------------------------------------------------------------
// MVN
// ---------------------------------------------------------------------------------------

const std::vector<std::string> kMvnModes = {
    "",
    "mvn_param { normalize_variance: false }",
    "mvn_param { across_channels: true }",
    "mvn_param { normalize_variance: false across_channels: true }",
    "mvn_param { eps: 0.1 }",
};

TEST_F(GpuLayers, MVN) {
  REQUIRE_GPU();
  for (const std::string& mode : kMvnModes) {
    SCOPED_TRACE(mode);
    const std::string text = "name: 'mvn' type: 'MVN' " + mode;
    CompareCpuGpu(text, {{2, 3, 4, 5}}, {Gaussian()});
    CompareCpuGpu(text, {{3, 7}}, {Positive()});          // the legacy [3, 7, 1, 1] view
    CompareCpuGpu(text, {{2, 3, 40, 30}}, {Gaussian()});  // rows longer than a block
    // Caffe's backward is the exact derivative only up to O(eps / std): the CPU test
    // checks the gradient with the default, tiny eps only.
    if (mode.find("eps") == std::string::npos) GradientCheckGpu(text, {{2, 3, 2, 3}}, {Gaussian()});
  }
}

TEST_F(GpuLayers, MVNInPlace) {
  REQUIRE_GPU();
  for (const std::string& mode : kMvnModes)
    CompareInPlace("name: 'mvn' type: 'MVN' " + mode, {2, 3, 2, 3});
}

// ---------------------------------------------------------------------------------------
// Deconvolution
// ---------------------------------------------------------------------------------------

std::string Deconv(const std::string& param) {
  return "name: 'deconv' type: 'Deconvolution' convolution_param { " + param +
         " weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' } }";
}

TEST_F(GpuLayers, Deconvolution) {
  REQUIRE_GPU();
  CompareCpuGpu(Deconv("num_output: 2 kernel_size: 3 stride: 2 pad: 1"), {{2, 3, 4, 5}},
                {Gaussian()});
  CompareCpuGpu(Deconv("num_output: 4 kernel_size: 4 stride: 2 pad: 1 bias_term: false"),
                {{2, 3, 5, 5}}, {Gaussian()});  // 2x learned upsampling
  CompareCpuGpu(Deconv("num_output: 5 kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 3"),
                {{1, 2, 4, 3}}, {Gaussian()});
  GradientCheckGpu(Deconv("num_output: 2 group: 1 kernel_size: 3 stride: 2 pad: 1"), {{2, 2, 3, 3}},
                   {Gaussian()});
}

TEST_F(GpuLayers, DeconvolutionGroupsDilationTwoBottoms) {
  REQUIRE_GPU();
  CompareCpuGpu(Deconv("num_output: 4 group: 2 kernel_size: 2 stride: 1 dilation: 2"),
                {{2, 4, 3, 2}}, {Gaussian()});
  CompareCpuGpu(Deconv("num_output: 6 group: 2 kernel_size: 3 stride: 2 pad: 1"),
                {{2, 4, 3, 3}, {2, 4, 3, 3}}, {Gaussian(), Gaussian()},
                CompareOptions{true, {}, 2});
  GradientCheckGpu(Deconv("num_output: 4 group: 2 kernel_size: 2 stride: 1 dilation: 2"),
                   {{1, 4, 3, 2}}, {Gaussian()});
}

TEST_F(GpuLayers, DeconvolutionOneAndThreeSpatialAxes) {
  REQUIRE_GPU();
  CompareCpuGpu(Deconv("num_output: 3 kernel_size: 3 stride: 2"), {{2, 2, 5}}, {Gaussian()});
  CompareCpuGpu(Deconv("num_output: 2 kernel_size: 2 stride: 2"), {{2, 2, 3, 2, 3}}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// SPP
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, SPP) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'SPP' spp_param { pyramid_height: 2 pool: MAX }", {{2, 2, 5, 6}},
                {Gaussian()});
  CompareCpuGpu("name: 's' type: 'SPP' spp_param { pyramid_height: 3 pool: AVE }", {{2, 3, 8, 7}},
                {Gaussian()});
  CompareCpuGpu("name: 's' type: 'SPP' spp_param { pyramid_height: 1 pool: MAX }", {{2, 2, 4, 4}},
                {Gaussian()});
  for (const char* pool : {"MAX", "AVE"})
    GradientCheckGpu(
        std::string("name: 's' type: 'SPP' spp_param { pyramid_height: 2 pool: ") + pool + " }",
        {{2, 2, 4, 5}}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Losses
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, ContrastiveLoss) {
  REQUIRE_GPU();
  // Gaussian 4-vectors: squared distances around 8, so margin 3 (on d) and 10 (legacy, on
  // d^2) leave some dissimilar pairs inside the margin and some outside.
  const std::vector<std::vector<int>> shapes = {{16, 4}, {16, 4}, {16}};
  const std::vector<Fill> fills = {Gaussian(), Gaussian(), Labels(2)};
  CompareCpuGpu("name: 'cl' type: 'ContrastiveLoss' contrastive_loss_param { margin: 3 }", shapes,
                fills);
  CompareCpuGpu(
      "name: 'cl' type: 'ContrastiveLoss' loss_weight: 2 "
      "contrastive_loss_param { margin: 10 legacy_version: true }",
      shapes, fills);
  CompareCpuGpu("name: 'cl' type: 'ContrastiveLoss'", {{5, 2, 3, 1}, {5, 2, 3, 1}, {5, 1, 1, 1}},
                fills);
  testing::GradientCheckOptions o;
  o.step = 1e-3f;
  o.threshold = 2e-3f;  // Caffe's gradient adds 1e-4 to the distance
  for (const char* legacy : {"false", "true"})
    GradientCheckGpu(std::string("name: 'cl' type: 'ContrastiveLoss' loss_weight: 2 "
                                 "contrastive_loss_param { margin: 3 legacy_version: ") +
                         legacy + " }",
                     {{4, 3}, {4, 3}, {4}}, fills, o);
}

TEST_F(GpuLayers, HingeLoss) {
  REQUIRE_GPU();
  for (const char* norm : {"L1", "L2"}) {
    const std::string text =
        std::string("name: 'h' type: 'HingeLoss' loss_weight: 3 hinge_loss_param { norm: ") + norm +
        " }";
    CompareCpuGpu(text, {{6, 5}, {6}}, {Gaussian(), Labels(5)});
    CompareCpuGpu(text, {{4, 3, 2, 2}, {4}}, {Gaussian(), Labels(12)});
    testing::GradientCheckOptions o;
    o.step = 1e-3f;
    GradientCheckGpu(text, {{3, 4}, {3}}, {Gaussian(), Labels(4)}, o);
  }
}

TEST_F(GpuLayers, HingeLossBadLabelThrows) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer("name: 'hinge' type: 'HingeLoss'");
  Blob x({2, 3}), label({2}), top;
  testing::FillGaussian(&x);
  label.mutable_cpu_data()[0] = 0;
  label.mutable_cpu_data()[1] = 3;
  layer->SetUp({&x, &label}, {&top});
  Context::set_mode(Mode::GPU);
  try {
    layer->Forward({&x, &label}, {&top});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3"), std::string::npos) << e.what();
  }
}

TEST_F(GpuLayers, InfogainLossThirdBottom) {
  REQUIRE_GPU();
  const CompareOptions labels_and_h_get_no_gradient{true, {true, false, false}, 1};
  const std::vector<Fill> fills = {Gaussian(), Labels(4), Positive()};
  for (const std::string loss_param :
       {"", "loss_param { ignore_label: 1 }", "loss_param { normalization: FULL }",
        "loss_param { normalization: BATCH_SIZE ignore_label: 0 }",
        "loss_param { normalization: NONE }"}) {
    SCOPED_TRACE(loss_param);
    const std::string text = "name: 'ig' type: 'InfogainLoss' loss_weight: 2 " + loss_param;
    CompareCpuGpu(text, {{6, 4}, {6}, {4, 4}}, fills, labels_and_h_get_no_gradient);
    CompareCpuGpu(text, {{2, 4, 3, 2}, {2, 3, 2}, {1, 1, 4, 4}}, fills,
                  labels_and_h_get_no_gradient);
  }
  // Every label ignored: Z = max(1, 0).
  CompareCpuGpu("name: 'ig' type: 'InfogainLoss' loss_param { ignore_label: 0 }",
                {{3, 4}, {3}, {4, 4}}, {Gaussian(), Labels(1), Positive()},
                labels_and_h_get_no_gradient);
  // The channel axis elsewhere, and the probabilities as a second top.
  CompareCpuGpu("name: 'ig' type: 'InfogainLoss' infogain_loss_param { axis: 2 }",
                {{2, 3, 4}, {2, 3}, {4, 4}}, fills, CompareOptions{true, {true, false, false}, 2});
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  GradientCheckGpu("name: 'ig' type: 'InfogainLoss' loss_weight: 2 loss_param { ignore_label: 0 }",
                   {{2, 3, 2}, {2, 2}, {3, 3}}, {Gaussian(), Labels(3), Positive()}, o);
}

TEST_F(GpuLayers, InfogainLossFromSource) {
  REQUIRE_GPU();
  Blob H(std::vector<int>{1, 1, 3, 3});
  const std::vector<float> h = {1.0f, 0.2f, 0.0f, 0.1f, 0.8f, 0.3f, 0.0f, 0.5f, 1.5f};
  for (int i = 0; i < 9; ++i) H.mutable_cpu_data()[i] = h[i];
  pb::BlobProto proto;
  H.ToProto(&proto);
  const std::string path = ::testing::TempDir() + "/crema_gpu_infogain_H.binaryproto";
  WriteProtoToBinaryFile(proto, path);
  CompareCpuGpu("name: 'ig' type: 'InfogainLoss' infogain_loss_param { source: '" + path + "' }",
                {{5, 3}, {5}}, {Gaussian(), Labels(3)}, CompareOptions{true, {}, 2});
}

TEST_F(GpuLayers, InfogainLossBadLabelThrows) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer("name: 'info' type: 'InfogainLoss'");
  Blob x({4, 3}), label({4}), H({3, 3}), top;
  testing::FillGaussian(&x);
  testing::FillUniform(&H, 0.f, 1.f);
  const float labels[] = {2, 0, 5, 1};
  for (int i = 0; i < 4; ++i) label.mutable_cpu_data()[i] = labels[i];
  layer->SetUp({&x, &label, &H}, {&top});
  Context::set_mode(Mode::GPU);
  try {
    layer->Forward({&x, &label, &H}, {&top});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 5"), std::string::npos) << e.what();
  }
}

TEST_F(GpuLayers, MultinomialLogisticLoss) {
  REQUIRE_GPU();
  const std::string text = "name: 'mll' type: 'MultinomialLogisticLoss' loss_weight: 0.5";
  CompareCpuGpu(text, {{7, 4}, {7}}, {Positive(), Labels(4)});
  CompareCpuGpu(text, {{3, 2, 2, 2}, {3}}, {Positive(), Labels(8)});
  testing::GradientCheckOptions o;
  o.step = 1e-3f;
  GradientCheckGpu(text, {{3, 4}, {3}}, {Positive(), Labels(4)}, o);
}

TEST_F(GpuLayers, MultinomialLogisticLossBadLabelThrows) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer("name: 'mll' type: 'MultinomialLogisticLoss'");
  Blob p({2, 3}), label({2}), top;
  testing::FillUniform(&p, 0.1f, 1.f);
  label.mutable_cpu_data()[0] = 1;
  label.mutable_cpu_data()[1] = -1;
  layer->SetUp({&p, &label}, {&top});
  Context::set_mode(Mode::GPU);
  try {
    layer->Forward({&p, &label}, {&top});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label -1"), std::string::npos) << e.what();
  }
}

TEST_F(GpuLayers, SigmoidCrossEntropyLoss) {
  REQUIRE_GPU();
  // Targets 0/1, or 0/1/2 with 2 ignored.
  for (const std::string loss_param :
       {"", "loss_param { normalization: FULL }", "loss_param { normalization: NONE }",
        "loss_param { normalize: true }"}) {
    SCOPED_TRACE(loss_param);
    const std::string text =
        "name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_weight: 1.5 " + loss_param;
    CompareCpuGpu(text, {{4, 3, 2}, {4, 3, 2}}, {Gaussian(), Labels(2)});
  }
  for (const std::string normalization : {"VALID", "FULL", "BATCH_SIZE"}) {
    SCOPED_TRACE(normalization);
    CompareCpuGpu(
        "name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: 2 "
        "normalization: " +
            normalization + " }",
        {{5, 6}, {5, 6}}, {Gaussian(), Labels(3)});
  }
  // A large batch: many first-stage blocks.
  CompareCpuGpu(
      "name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: 2 "
      "normalization: VALID }",
      {{64, 3, 40, 40}, {64, 3, 40, 40}}, {Gaussian(), Labels(3)});
  GradientCheckGpu("name: 'sce' type: 'SigmoidCrossEntropyLoss' loss_weight: 1.5", {{3, 4}, {3, 4}},
                   {Gaussian(), Labels(2)});
}

}  // namespace
}  // namespace crema
