// Test-time fusion on the GPU (src/inference_fusion.hpp): BatchNorm [+ Scale] [+ ReLU],
// Eltwise SUM + ReLU, and convolutions with their epilogues. Which chains are found (CPU, any
// build), and that the fused kernels give the unfused layers' output (GPU; skipped without a
// device).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "crema.pb.h"
#include "crema/net.hpp"
#include "layers/convolution.hpp"
#include "tests/gpu_test_util.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::NetParam;
using Chains = std::vector<std::pair<int, int>>;

// Input -> Convolution -> BatchNorm -> Scale -> ReLU, all in place after the convolution.
// `extra` is appended (more layers); `phase` is TRAIN or TEST.
std::string ChainNet(const std::string& phase,
                     const std::string& input_shape = "dim: 2 dim: 3 dim: 6 dim: 6",
                     const std::string& bn_extra = "", const std::string& scale = "bias_term: true",
                     const std::string& relu = "") {
  return "name: 'fuse' state { phase: " + phase + " }\n" +
         "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { " + input_shape +
         " } } }\n"
         "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'c'\n"
         "  convolution_param { num_output: 5 kernel_size: 3 pad: 1\n"
         "    weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' std: 0.5 "
         "} } }\n"
         "layer { name: 'bn' type: 'BatchNorm' bottom: 'c' top: 'c' " +
         bn_extra +
         " }\n"
         "layer { name: 'scale' type: 'Scale' bottom: 'c' top: 'c' scale_param { " +
         scale +
         " } }\n"
         "layer { name: 'relu' type: 'ReLU' bottom: 'c' top: 'c' " +
         relu + " }\n";
}

// What a CUDA build finds; a CPU-only build fuses nothing.
Chains InCudaBuilds(const Chains& chains) {
#ifdef CREMA_WITH_CUDA
  return chains;
#else
  return {};
#endif
}

class FusionEnv : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("CREMA_FUSION"); }
};

TEST_F(FusionEnv, FindsTheTestTimeChain) {
  // The convolution takes the BatchNorm, Scale and ReLU as its epilogue.
  Net net(NetParam(ChainNet("TEST")));
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{1, 4}}));
}

TEST_F(FusionEnv, NoFusionWhenTraining) {
  // In TRAIN the BatchNorm uses batch statistics and the layers need a backward pass.
  Net net(NetParam(ChainNet("TRAIN")));
  EXPECT_TRUE(net.fused_chains().empty());
}

TEST_F(FusionEnv, NoFusionWithBatchStatisticsAtTestTime) {
  Net net(NetParam(ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6",
                            "batch_norm_param { use_global_stats: false }")));
  EXPECT_TRUE(net.fused_chains().empty());
}

TEST_F(FusionEnv, ChainStopsWhereALayerIsNotInPlace) {
  // The ReLU writes a new blob 'r': BatchNorm + Scale still fuse, the ReLU runs alone.
  std::string text = ChainNet("TEST");
  const std::string relu = "type: 'ReLU' bottom: 'c' top: 'c'";
  text.replace(text.find(relu), relu.size(), "type: 'ReLU' bottom: 'c' top: 'r'");
  Net net(NetParam(text));
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{1, 3}}));
}

TEST_F(FusionEnv, ScaleOverTwoAxesIsNotFused) {
  // A Scale over C and H is not per-channel: the convolution takes the BatchNorm alone.
  std::string text = ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "", "num_axes: 2");
  text = text.substr(0, text.find("layer { name: 'relu'"));
  Net net(NetParam(text));
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{1, 2}}));
  // Without the convolution, a BatchNorm alone gains nothing.
  Net no_conv(NetParam(
      "name: 'bn' state { phase: TEST }\n"
      "layer { name: 'data' type: 'Input' top: 'c' input_param { shape { dim: 2 dim: 3 } } }\n"
      "layer { name: 'bn' type: 'BatchNorm' bottom: 'c' top: 'c' }\n"));
  EXPECT_TRUE(no_conv.fused_chains().empty());
}

TEST_F(FusionEnv, EnvironmentTurnsItOff) {
  setenv("CREMA_FUSION", "0", 1);
  Net net(NetParam(ChainNet("TEST")));
  EXPECT_TRUE(net.fused_chains().empty());
}

// Two inputs summed (with coefficients when given), then a ReLU in place on the sum.
std::string SumNet(const std::string& phase, const std::string& shape, int inputs,
                   const std::string& eltwise_param = "", const std::string& relu = "") {
  std::string text = "name: 'sum' state { phase: " + phase + " }\n";
  std::string bottoms;
  for (int k = 0; k < inputs; ++k) {
    const std::string name = "x" + std::to_string(k);
    text += "layer { name: '" + name + "' type: 'Input' top: '" + name +
            "' input_param { shape { " + shape + " } } }\n";
    bottoms += "bottom: '" + name + "' ";
  }
  return text + "layer { name: 'add' type: 'Eltwise' " + bottoms + "top: 'c' " + eltwise_param +
         " }\nlayer { name: 'relu' type: 'ReLU' bottom: 'c' top: 'c' " + relu + " }\n";
}

TEST_F(FusionEnv, FindsSumRelu) {
  Net net(NetParam(SumNet("TEST", "dim: 2 dim: 8", 2)));
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{2, 3}}));
  Net five(NetParam(SumNet("TEST", "dim: 2 dim: 8", 5)));  // more than 4 summands
  EXPECT_TRUE(five.fused_chains().empty());
  Net product(NetParam(SumNet("TEST", "dim: 2 dim: 8", 2, "eltwise_param { operation: PROD }")));
  EXPECT_TRUE(product.fused_chains().empty());
}

// A residual block: data -> conv 'branch1' (1x1) -> bn1 -> scale1 = a;
// data -> conv 'branch2' (3x3) -> bn2 -> scale2 = b;  s = relu(a + b) (Eltwise + ReLU).
// `eltwise_param` and `relu` go into those layers; `precision` is a net-level field.
std::string ResidualNet(const std::string& phase, const std::string& input_shape, int num_output,
                        const std::string& eltwise_param = "", const std::string& relu = "",
                        const std::string& precision = "") {
  const std::string n = std::to_string(num_output);
  auto conv = [&](const std::string& name, const std::string& top, const std::string& geometry,
                  const std::string& bias) {
    return "layer { name: '" + name + "' type: 'Convolution' bottom: 'data' top: '" + top +
           "' convolution_param { num_output: " + n + " " + geometry +
           " weight_filler { type: 'gaussian' std: 0.3 } " + bias + " } }\n";
  };
  auto bn_scale = [](const std::string& k, const std::string& blob) {
    return "layer { name: 'bn" + k + "' type: 'BatchNorm' bottom: '" + blob + "' top: '" + blob +
           "' }\nlayer { name: 'scale" + k + "' type: 'Scale' bottom: '" + blob + "' top: '" +
           blob + "' scale_param { bias_term: true } }\n";
  };
  return "name: 'res' state { phase: " + phase + " } " + precision + "\n" +
         "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { " + input_shape +
         " } } }\n" + conv("branch1", "a", "kernel_size: 1", "bias_term: false") +
         bn_scale("1", "a") +
         conv("branch2", "b", "kernel_size: 3 pad: 1",
              "bias_filler { type: 'gaussian' std: 0.5 }") +
         bn_scale("2", "b") + "layer { name: 'add' type: 'Eltwise' bottom: 'a' bottom: 'b' " +
         "top: 's' " + eltwise_param +
         " }\nlayer { name: 'relu' type: 'ReLU' bottom: 's' top: 's' " + relu + " }\n";
}

TEST_F(FusionEnv, FindsConvolutionChains) {
  // Each convolution takes its BatchNorm and Scale; the second also the sum and its ReLU.
  Net net(NetParam(ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8)));
  // (Layer 1 is the Split that feeds 'data' to both convolutions.)
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{2, 4}, {5, 9}}));
  // In TRAIN the BatchNorms use batch statistics: the convolutions run alone. (This net has
  // no loss, so no layer needs a backward pass and the sum + ReLU still fuse.)
  Net training(NetParam(ResidualNet("TRAIN", "dim: 2 dim: 4 dim: 6 dim: 6", 8)));
  EXPECT_EQ(training.fused_chains(), InCudaBuilds({{8, 9}}));
  // A convolution followed by a ReLU alone (VGG's pattern), and one summed with the data
  // (an identity shortcut), whose ReLU writes a new blob: the sum is fused, the ReLU not.
  const std::string plain =
      "name: 'p' state { phase: TEST }\n"
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 2 dim: 5 "
      "dim: 5 } } }\n"
      "layer { name: 'c1' type: 'Convolution' bottom: 'data' top: 'c1' convolution_param { "
      "num_output: 2 kernel_size: 3 pad: 1 } }\n"
      "layer { name: 'r1' type: 'ReLU' bottom: 'c1' top: 'c1' }\n"
      "layer { name: 'c2' type: 'Convolution' bottom: 'c1' top: 'c2' convolution_param { "
      "num_output: 2 kernel_size: 3 pad: 1 } }\n"
      "layer { name: 'add' type: 'Eltwise' bottom: 'c2' bottom: 'data' top: 's' }\n"
      "layer { name: 'r2' type: 'ReLU' bottom: 's' top: 'r' }\n";
  Net vgg(NetParam(plain));
  EXPECT_EQ(vgg.fused_chains(), InCudaBuilds({{2, 3}, {4, 5}}));  // layer 1: a Split
  // A convolution alone is no chain; nor is one whose top is summed with itself.
  std::string alone = plain.substr(0, plain.find("layer { name: 'r1'"));
  Net single(NetParam(alone));
  EXPECT_TRUE(single.fused_chains().empty());
  alone += "layer { name: 'add' type: 'Eltwise' bottom: 'c1' bottom: 'c1' top: 's' }\n";
  Net doubled(NetParam(alone));
  EXPECT_TRUE(doubled.fused_chains().empty());
}

// ---- GPU: fused output equals the unfused layers' -------------------------------------------
using gputest::GpuAvailable;
class GpuFusion : public gputest::GpuTest {};

// Gives every BatchNorm stored statistics (factor as given) and every Scale random parameters.
void SetStatistics(Net* net, float factor) {
  for (const auto& layer : net->layers()) {
    const std::string type = layer->type();
    if (type == "BatchNorm") {
      const auto& bn = layer->blobs();
      const int c = bn[0]->count();
      for (int i = 0; i < c; ++i) {
        bn[0]->mutable_cpu_data()[i] = factor * (0.3f * (i % 7) - 0.5f);  // mean_sum
        bn[1]->mutable_cpu_data()[i] = factor * (0.2f + 0.7f * (i % 3));  // var_sum
      }
      bn[2]->mutable_cpu_data()[0] = factor;
    } else if (type == "Scale") {
      for (auto& blob : layer->blobs())
        for (int i = 0; i < blob->count(); ++i)
          blob->mutable_cpu_data()[i] = 0.4f * std::sin(1.7f * i + blob->count()) + 0.9f;
    }
  }
}

// Runs `text` (a TEST net) on the CPU and on the GPU, fused and (CREMA_FUSION=0) unfused, and
// compares the output blobs: the GPU's fused with its unfused within relative
// `fused_tolerance` (both round alike), each with the CPU within `cpu_tolerance` (which a
// 16-bit precision widens). Relative to max(1, |CPU value|).
// With `minus_infinity`, the first input's first value is -inf (a ReLU of slope 0 gives 0).
void CompareFusedOutputs(const std::string& text, size_t expected_chains,
                         const std::vector<std::string>& outputs, float cpu_tolerance = 1e-5f,
                         float fused_tolerance = 1e-5f, float factor = 2.f,
                         bool minus_infinity = false) {
  unsetenv("CREMA_FUSION");
  Net fused(NetParam(text));
  ASSERT_EQ(fused.fused_chains().size(), expected_chains) << text;
  setenv("CREMA_FUSION", "0", 1);
  Net plain(NetParam(text));
  unsetenv("CREMA_FUSION");
  ASSERT_TRUE(plain.fused_chains().empty());
  SetStatistics(&fused, factor);
  for (size_t i = 0; i < fused.params().size(); ++i)
    plain.params()[i]->CopyFrom(*fused.params()[i]);
  for (size_t k = 0; k < fused.input_blobs().size(); ++k) {
    gputest::FillBlob(fused.input_blobs()[k], gputest::Gaussian(), 3 + k);
    if (minus_infinity && k == 0)
      fused.input_blobs()[0]->mutable_cpu_data()[0] = -std::numeric_limits<float>::infinity();
    plain.input_blobs()[k]->CopyFrom(*fused.input_blobs()[k]);
  }

  Context::set_mode(Mode::CPU);
  plain.Forward();
  std::vector<std::vector<float>> cpu;
  for (const std::string& output : outputs)
    cpu.push_back(testing::Values(*plain.blob_by_name(output)));
  Context::set_mode(Mode::GPU);
  fused.Forward();
  plain.Forward();
  Context::set_mode(Mode::CPU);
  for (size_t k = 0; k < outputs.size(); ++k) {
    SCOPED_TRACE("blob '" + outputs[k] + "'");
    const std::vector<float> gpu_fused = testing::Values(*fused.blob_by_name(outputs[k]));
    const std::vector<float> gpu_plain = testing::Values(*plain.blob_by_name(outputs[k]));
    ASSERT_EQ(cpu[k].size(), gpu_fused.size());
    for (size_t i = 0; i < cpu[k].size(); ++i) {
      const float size = std::max(1.f, std::fabs(cpu[k][i]));
      EXPECT_NEAR(gpu_fused[i], gpu_plain[i], fused_tolerance * size) << "element " << i;
      EXPECT_NEAR(gpu_fused[i], cpu[k][i], cpu_tolerance * size) << "fused, element " << i;
      EXPECT_NEAR(gpu_plain[i], cpu[k][i], cpu_tolerance * size) << "unfused, element " << i;
    }
  }
}

void CompareFused(const std::string& text, size_t expected_chains, float factor = 2.f,
                  const std::string& output = "c", bool minus_infinity = false) {
  CompareFusedOutputs(text, expected_chains, {output}, 1e-5f, 1e-5f, factor, minus_infinity);
}

TEST_F(GpuFusion, BatchNormScaleReluMatchesLayers) {
  REQUIRE_GPU();
  CompareFused(ChainNet("TEST"), 1);                                 // inner 36: float4
  CompareFused(ChainNet("TEST", "dim: 3 dim: 3 dim: 5 dim: 5"), 1);  // inner 25: scalar
  CompareFused(ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "", "bias_term: false"), 1);
  CompareFused(ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "", "bias_term: true",
                        "relu_param { negative_slope: 0.1 }"),
               1);
  CompareFused(ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "batch_norm_param { eps: 0.01 }"), 1,
               /*factor=*/0.f);  // factor 0: mean 0, variance 0 (Caffe's rule)
}

// BatchNorm + Scale + ReLU after a layer that is not a convolution (kind 1 on 4-D blobs).
TEST_F(GpuFusion, BatchNormChainAfterOtherLayersMatchesLayers) {
  REQUIRE_GPU();
  for (const char* shape : {"dim: 2 dim: 3 dim: 6 dim: 6", "dim: 3 dim: 3 dim: 5 dim: 5"}) {
    std::string text = ChainNet("TEST", shape);  // inner 36: float4; 25: scalar
    const size_t conv = text.find("layer { name: 'conv'");
    text.replace(conv, text.find("layer { name: 'bn'") - conv,
                 "layer { name: 'power' type: 'Power' bottom: 'data' top: 'c' power_param { "
                 "scale: 1.5 } }\n");
    CompareFused(text, 1);
  }
}

TEST_F(GpuFusion, ChainWithoutScaleOrReluMatchesLayers) {
  REQUIRE_GPU();
  std::string no_scale = ChainNet("TEST");
  no_scale.erase(no_scale.find("layer { name: 'scale'"),
                 no_scale.find("layer { name: 'relu'") - no_scale.find("layer { name: 'scale'"));
  CompareFused(no_scale, 1);
  std::string no_relu = ChainNet("TEST");
  no_relu = no_relu.substr(0, no_relu.find("layer { name: 'relu'"));
  CompareFused(no_relu, 1);
}

TEST_F(GpuFusion, TwoDimensionalBlobAndPartialForward) {
  REQUIRE_GPU();
  // InnerProduct -> BatchNorm over [N, C] (inner 1).
  const std::string text =
      "name: 'fc' state { phase: TEST }\n"
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 4 dim: 7 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'c' inner_product_param {\n"
      "  num_output: 9 weight_filler { type: 'gaussian' std: 0.5 } } }\n"
      "layer { name: 'bn' type: 'BatchNorm' bottom: 'c' top: 'c' }\n"
      "layer { name: 'scale' type: 'Scale' bottom: 'c' top: 'c' scale_param { bias_term: true } }\n"
      "layer { name: 'relu' type: 'ReLU' bottom: 'c' top: 'c' }\n";
  CompareFused(text, 1);
  // A forward that ends inside the chain runs its layers one by one.
  Net net(NetParam(text));
  SetStatistics(&net, 1.f);
  gputest::FillBlob(net.input_blobs()[0], gputest::Gaussian(), 5);
  Context::set_mode(Mode::CPU);
  net.ForwardTo(3);  // through the Scale
  const std::vector<float> cpu = testing::Values(*net.blob_by_name("c"));
  Context::set_mode(Mode::GPU);
  net.ForwardTo(3);
  Context::set_mode(Mode::CPU);
  const std::vector<float> gpu = testing::Values(*net.blob_by_name("c"));
  bool any_negative = false;
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_NEAR(gpu[i], cpu[i], 1e-5f * std::max(1.f, std::fabs(cpu[i])));
    any_negative |= cpu[i] < 0;
  }
  EXPECT_TRUE(any_negative) << "the ReLU must not have run";
}

TEST_F(GpuFusion, SumReluMatchesLayers) {
  REQUIRE_GPU();
  CompareFused(SumNet("TEST", "dim: 2 dim: 3 dim: 4 dim: 4", 2), 1);  // float4
  CompareFused(SumNet("TEST", "dim: 3 dim: 5 dim: 7", 2), 1);         // 105 values: scalar
  CompareFused(
      SumNet("TEST", "dim: 2 dim: 6 dim: 4", 3, "eltwise_param { coeff: 0.5 coeff: -1 coeff: 2 }",
             "relu_param { negative_slope: 0.2 }"),
      1);
  CompareFused(SumNet("TEST", "dim: 4 dim: 4", 4), 1);
  // A ReLU of slope 0 gives exactly 0 for -inf, as the layer does (not -inf * 0 = NaN).
  CompareFused(SumNet("TEST", "dim: 2 dim: 8", 2), 1, 2.f, "c", /*minus_infinity=*/true);
}

// Convolution chains (kind 3): the conv's own top (after BatchNorm and Scale) and the sum.
TEST_F(GpuFusion, ConvolutionChainsMatchLayers) {
  REQUIRE_GPU();
  const std::vector<std::string> blobs = {"a", "b", "s"};
  CompareFusedOutputs(ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8), 2, blobs);  // float4
  CompareFusedOutputs(
      ResidualNet("TEST", "dim: 2 dim: 3 dim: 5 dim: 5", 6,
                  "eltwise_param { coeff: 0.5 coeff: -2 }", "relu_param { negative_slope: 0.1 }"),
      2, blobs);  // scalar rows, coefficients, a leaky ReLU
  // Convolution + BatchNorm + Scale + ReLU; without Scale; factor 0; no BatchNorm at all.
  CompareFused(ChainNet("TEST", "dim: 3 dim: 3 dim: 5 dim: 5"), 1);
  std::string no_scale = ChainNet("TEST");
  no_scale.erase(no_scale.find("layer { name: 'scale'"),
                 no_scale.find("layer { name: 'relu'") - no_scale.find("layer { name: 'scale'"));
  CompareFused(no_scale, 1);
  CompareFused(ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "batch_norm_param { eps: 0.01 }"), 1,
               /*factor=*/0.f);
  std::string relu_only = ChainNet("TEST");
  relu_only.erase(relu_only.find("layer { name: 'bn'"),
                  relu_only.find("layer { name: 'relu'") - relu_only.find("layer { name: 'bn'"));
  CompareFused(relu_only, 1);
}

// Every route a convolution can take applies the epilogue: cuDNN (fp32, TF32, 16-bit NHWC
// with gathered and with tiled widening, 16-bit NCHW for 3 spatial axes) and the 1x1 GEMMs.
// cuDNN's fused call is kept out (its own test follows): left to timing, it could replace
// the route under test in the fused net alone, and in TF32 round differently from it.
TEST_F(GpuFusion, ConvolutionChainsInEveryPrecisionAndRoute) {
  REQUIRE_GPU();
  setenv("CREMA_CONV_FUSED_CUDNN", "0", 1);
  const std::vector<std::string> blobs = {"a", "b", "s"};
  for (const char* gemm : {"0", "1"}) {
    SCOPED_TRACE(std::string("CREMA_CONV_1X1_GEMM=") + gemm);
    setenv("CREMA_CONV_1X1_GEMM", gemm, 1);
    CompareFusedOutputs(ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8), 2, blobs);
    CompareFusedOutputs(
        ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8, "", "", "precision { math: TF32 }"),
        2, blobs, 2e-2f);
    for (const char* math : {"FP16", "BF16"}) {
      SCOPED_TRACE(math);
      const std::string precision = std::string("precision { math: ") + math + " }";
      const float cpu = std::string(math) == "FP16" ? 2e-2f : 1e-1f;
      CompareFusedOutputs(ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8, "", "", precision),
                          2, blobs, cpu);
      // 40 channels over 36 positions: the tiled widening kernel.
      CompareFusedOutputs(ResidualNet("TEST", "dim: 2 dim: 5 dim: 6 dim: 6", 40, "", "", precision),
                          2, blobs, cpu);
    }
  }
  unsetenv("CREMA_CONV_1X1_GEMM");
  // Three spatial axes: 16-bit copies stay NCHW, the epilogue runs after widening.
  CompareFusedOutputs(
      ChainNet("TEST", "dim: 2 dim: 3 dim: 4 dim: 4 dim: 4") + "precision { math: FP16 }", 1, {"c"},
      2e-2f);
  unsetenv("CREMA_CONV_FUSED_CUDNN");
}

// FP32 and TF32 epilogues without a residual sum may run inside cuDNN's fused convolution
// (forced here with CREMA_CONV_FUSED_CUDNN=1; "0" forbids it; unset, it is timed).
TEST_F(GpuFusion, ConvolutionChainsThroughCudnnFusedCall) {
  REQUIRE_GPU();
  std::string no_relu = ChainNet("TEST");
  no_relu = no_relu.substr(0, no_relu.find("layer { name: 'relu'"));  // identity activation
  std::string relu_no_bias = ChainNet("TEST");                        // zeros as cuDNN's bias
  relu_no_bias.erase(
      relu_no_bias.find("layer { name: 'bn'"),
      relu_no_bias.find("layer { name: 'relu'") - relu_no_bias.find("layer { name: 'bn'"));
  const std::string bias_filler = "bias_filler { type: 'gaussian' std: 0.5 }";
  relu_no_bias.replace(relu_no_bias.find(bias_filler), bias_filler.size(), "bias_term: false");
  for (const char* setting : {"1", "0", "auto"}) {
    SCOPED_TRACE(std::string("CREMA_CONV_FUSED_CUDNN=") + setting);
    setenv("CREMA_CONV_FUSED_CUDNN", setting, 1);
    for (const std::string& precision : {"", "precision { math: TF32 }"}) {
      const float cpu = precision.empty() ? 1e-5f : 2e-2f;
      // cuDNN's algorithm for the fused call may differ from the plain forward's: 1e-5. In
      // TF32 the fused call convolves with W scaled by the epilogue's factor, and rounding
      // that product to TF32 differs from rounding W (about 1e-3): TF32's own tolerance.
      const float fused = precision.empty() ? 1e-5f : cpu;
      CompareFusedOutputs(ChainNet("TEST") + precision, 1, {"c"}, cpu, fused);
      CompareFusedOutputs(no_relu + precision, 1, {"c"}, cpu, fused);
      CompareFusedOutputs(relu_no_bias + precision, 1, {"c"}, cpu, fused);
      // The residual chain's convolution applies its epilogue apart (cuDNN cannot also write x).
      CompareFusedOutputs(ResidualNet("TEST", "dim: 2 dim: 4 dim: 6 dim: 6", 8, "", "", precision),
                          2, {"a", "b", "s"}, cpu, fused);
    }
  }
  // Which route ran: forced on, the chain's convolution used the fused call; off, it did not.
  for (const char* setting : {"1", "0"}) {
    setenv("CREMA_CONV_FUSED_CUDNN", setting, 1);
    Net net(NetParam(ChainNet("TEST")));
    SetStatistics(&net, 2.f);
    gputest::FillBlob(net.input_blobs()[0], gputest::Gaussian(), 3);
    Context::set_mode(Mode::GPU);
    net.Forward();
    Context::set_mode(Mode::CPU);
#ifdef CREMA_WITH_CUDA  // (REQUIRE_GPU skipped the test in CPU-only builds)
    auto* conv = dynamic_cast<ConvolutionLayer*>(net.layer_by_name("conv").get());
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->runs_fused_cudnn(), std::string(setting) == "1");
#endif
  }
  unsetenv("CREMA_CONV_FUSED_CUDNN");
}

}  // namespace
}  // namespace crema
