// Test-time fusion of BatchNorm [+ Scale] [+ ReLU] chains on the GPU (src/inference_fusion.hpp):
// which chains are found (CPU, any build), and that the fused kernel gives the unfused
// layers' output (GPU; skipped without a device).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "crema.pb.h"
#include "crema/net.hpp"
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
  Net net(NetParam(ChainNet("TEST")));
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{2, 4}}));
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
  EXPECT_EQ(net.fused_chains(), InCudaBuilds({{2, 3}}));
}

TEST_F(FusionEnv, ScaleOverTwoAxesIsNotFused) {
  // A Scale over C and H is not per-channel: BatchNorm alone would gain nothing.
  std::string text = ChainNet("TEST", "dim: 2 dim: 3 dim: 6 dim: 6", "", "num_axes: 2");
  text = text.substr(0, text.find("layer { name: 'relu'"));
  Net net(NetParam(text));
  EXPECT_TRUE(net.fused_chains().empty());
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

// ---- GPU: fused output equals the unfused layers' -------------------------------------------
using gputest::GpuAvailable;
class GpuFusion : public gputest::GpuTest {};

// Gives the BatchNorm stored statistics (factor as given) and the Scale random parameters.
void SetStatistics(Net* net, float factor) {
  if (!net->layer_by_name("bn")) return;
  Layer& bn = *net->layer_by_name("bn");
  const int c = bn.blobs()[0]->count();
  for (int i = 0; i < c; ++i) {
    bn.blobs()[0]->mutable_cpu_data()[i] = factor * (0.3f * i - 0.5f);        // mean_sum
    bn.blobs()[1]->mutable_cpu_data()[i] = factor * (0.2f + 0.7f * (i % 3));  // var_sum
  }
  bn.blobs()[2]->mutable_cpu_data()[0] = factor;
  if (auto scale = net->layer_by_name("scale")) {
    for (auto& blob : scale->blobs())
      for (int i = 0; i < blob->count(); ++i)
        blob->mutable_cpu_data()[i] = 0.4f * std::sin(1.7f * i + blob->count()) + 0.9f;
  }
}

// Runs `text` (a TEST net) on the CPU and on the GPU, fused and (CREMA_FUSION=0) unfused, and
// compares the output blob 'c' (or `output`).
// With `minus_infinity`, the first input's first value is -inf (a ReLU of slope 0 gives 0).
void CompareFused(const std::string& text, size_t expected_chains, float factor = 2.f,
                  const std::string& output = "c", bool minus_infinity = false) {
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
  const std::vector<float> cpu = testing::Values(*plain.blob_by_name(output));
  Context::set_mode(Mode::GPU);
  fused.Forward();
  plain.Forward();
  Context::set_mode(Mode::CPU);
  const std::vector<float> gpu_fused = testing::Values(*fused.blob_by_name(output));
  const std::vector<float> gpu_plain = testing::Values(*plain.blob_by_name(output));
  ASSERT_EQ(cpu.size(), gpu_fused.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    const float tolerance = 1e-5f * std::max(1.f, std::fabs(cpu[i]));
    EXPECT_NEAR(gpu_fused[i], cpu[i], tolerance) << "fused, element " << i;
    EXPECT_NEAR(gpu_plain[i], cpu[i], tolerance) << "unfused, element " << i;
  }
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

}  // namespace
}  // namespace crema
