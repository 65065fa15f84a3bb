// The cuDNN engines of Pooling, Softmax, ReLU, Sigmoid, TanH, ELU, Swish and LRN
// (layers/cudnn_layers.hpp, chosen in layers/engines.cpp).
//   GpuLayers.Cudnn*: `engine: CUDNN` layers in GPU mode against the CPU path (relative
//     1e-4) over the settings cuDNN takes, a gradient check, and in-place runs. They need a
//     CUDA device (skipped without one).
//   CudnnEngines.*: which class the factory creates for CAFFE / CUDNN / DEFAULT and for
//     parameters cuDNN cannot compute like crema, and Pooling's shape-time decision. No
//     device needed; CUDA builds only (skipped in CPU-only builds).
#include "tests/gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/cudnn_layers.hpp"
#include "src/cudnn_adapter.hpp"
#endif

namespace crema {
namespace {
using namespace gputest;

// ---------------------------------------------------------------------------------------
// Against the CPU path
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, CudnnPoolingMax) {
  REQUIRE_GPU();
  // (H + 2 pad - k) a multiple of the stride: CEIL and floor agree, cuDNN runs.
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: MAX kernel_size: 3 "
      "stride: 2 pad: 1 }",
      {{2, 3, 9, 7}}, {Gaussian()});
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: MAX kernel_size: 2 "
      "stride: 2 }",
      {{2, 3, 8, 6}}, {Gaussian()});
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: MAX kernel_h: 3 "
      "kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 round_mode: FLOOR }",
      {{2, 2, 8, 5}}, {Gaussian()});
  // CEIL differing from floor: crema's kernels (same results, through the fallback).
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: MAX kernel_size: 3 "
      "stride: 2 pad: 1 }",
      {{2, 3, 8, 7}}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.step = 1e-3f;
  GradientCheckGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: MAX kernel_size: 3 "
      "stride: 2 pad: 1 }",
      {{1, 2, 5, 5}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, CudnnPoolingAve) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: AVE kernel_size: 3 "
      "stride: 2 pad: 1 }",
      {{2, 3, 9, 7}}, {Gaussian()});
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: AVE kernel_size: 3 "
      "stride: 2 pad: 1 round_mode: FLOOR }",
      {{2, 3, 8, 8}}, {Gaussian()});
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: AVE global_pooling: true }",
      {{2, 3, 5, 4}}, {Gaussian()});
  GradientCheckGpu(
      "name: 'p' type: 'Pooling' pooling_param { engine: CUDNN pool: AVE kernel_size: 3 "
      "stride: 2 pad: 1 }",
      {{1, 2, 5, 5}}, {Gaussian()});
}

TEST_F(GpuLayers, CudnnSoftmax) {
  REQUIRE_GPU();
  const std::string s = "name: 's' type: 'Softmax' softmax_param { engine: CUDNN }";
  CompareCpuGpu(s, {{4, 10}}, {Gaussian()});
  CompareCpuGpu(s, {{2, 5, 3, 2}}, {Gaussian()});
  CompareCpuGpu("name: 's' type: 'Softmax' softmax_param { engine: CUDNN axis: 2 }", {{2, 3, 6, 2}},
                {Gaussian()});
  GradientCheckGpu(s, {{2, 4, 3}}, {Gaussian()});
}

TEST_F(GpuLayers, CudnnActivations) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'r' type: 'ReLU' relu_param { engine: CUDNN }", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 's' type: 'Sigmoid' sigmoid_param { engine: CUDNN }", {kImage},
                {Gaussian()});
  CompareCpuGpu("name: 't' type: 'TanH' tanh_param { engine: CUDNN }", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 'e' type: 'ELU'", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 'e' type: 'ELU' elu_param { alpha: 0.5 }", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 'w' type: 'Swish'", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 'w' type: 'Swish' swish_param { beta: 1.5 }", {kImage}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.kink_range = 0.02f;
  GradientCheckGpu("name: 'r' type: 'ReLU' relu_param { engine: CUDNN }", {{2, 3, 4}}, {Gaussian()},
                   o);
  GradientCheckGpu("name: 'e' type: 'ELU' elu_param { alpha: 0.5 }", {{2, 3, 4}}, {Gaussian()}, o);
  GradientCheckGpu("name: 'w' type: 'Swish' swish_param { beta: 1.5 }", {{2, 3, 4}}, {Gaussian()});
}

TEST_F(GpuLayers, CudnnLRN) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'n' type: 'LRN' lrn_param { engine: CUDNN local_size: 5 alpha: 0.1 beta: 0.75 "
      "k: 2 }",
      {{2, 7, 3, 4}}, {Gaussian()});
  CompareCpuGpu(
      "name: 'n' type: 'LRN' lrn_param { engine: CUDNN local_size: 3 alpha: 0.5 beta: 0.6 "
      "k: 1 }",
      {{2, 4, 3, 3}}, {Gaussian()});
  GradientCheckGpu("name: 'n' type: 'LRN' lrn_param { engine: CUDNN local_size: 3 alpha: 0.5 }",
                   {{1, 5, 2, 3}}, {Gaussian()});
}

// In place (top == bottom): ReLU runs on cuDNN, the others on their parents' kernels; the
// results must equal the CPU's either way.
TEST_F(GpuLayers, CudnnActivationsInPlace) {
  REQUIRE_GPU();
  for (const char* text :
       {"name: 'r' type: 'ReLU' relu_param { engine: CUDNN }",
        "name: 's' type: 'Sigmoid' sigmoid_param { engine: CUDNN }",
        "name: 't' type: 'TanH' tanh_param { engine: CUDNN }", "name: 'e' type: 'ELU'",
        "name: 'w' type: 'Swish'", "name: 's' type: 'Softmax' softmax_param { engine: CUDNN }"}) {
    SCOPED_TRACE(text);
    std::vector<float> y[2], dx[2];
    for (int k = 0; k < 2; ++k) {
      Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
      std::shared_ptr<Layer> layer = MakeLayer(text);
      Blob blob(kImage);
      FillBlob(&blob, Gaussian(), 5);
      BlobVec b = {&blob};
      layer->SetUp(b, b);
      layer->Forward(b, b);
      y[k] = Data(blob);
      Context::reseed(/*stream=*/779, 0);
      cpu_rng_gaussian(blob.count(), 0.f, 1.f, blob.mutable_cpu_diff());
      layer->Backward(b, {true}, b);
      dx[k] = Diff(blob);
    }
    Context::set_mode(Mode::CPU);
    ExpectClose(y[0], y[1].data(), "top");
    ExpectClose(dx[0], dx[1].data(), "bottom diff");
  }
}

// ---------------------------------------------------------------------------------------
// The factory's choice (no device needed)
// ---------------------------------------------------------------------------------------

#ifdef CREMA_WITH_CUDA
template <typename Cudnn>
bool IsCudnn(const std::string& text) {
  std::shared_ptr<Layer> layer = MakeLayer(text);
  return dynamic_cast<Cudnn*>(layer.get()) != nullptr;
}
#endif

TEST(CudnnEngines, FactoryChoosesByEngineAndParameters) {
#ifndef CREMA_WITH_CUDA
  GTEST_SKIP() << "CPU-only build: no cuDNN layers";
#else
  const bool have = cudnn::Available();
  // CAFFE: always crema's own layer.
  EXPECT_FALSE(IsCudnn<CudnnReLULayer>("type: 'ReLU' relu_param { engine: CAFFE }"));
  EXPECT_FALSE(IsCudnn<CudnnPoolingLayer>("type: 'Pooling' pooling_param { engine: CAFFE }"));
  EXPECT_FALSE(IsCudnn<CudnnSoftmaxLayer>("type: 'Softmax' softmax_param { engine: CAFFE }"));
  EXPECT_FALSE(IsCudnn<CudnnLRNLayer>("type: 'LRN' lrn_param { engine: CAFFE }"));
  // CUDNN and DEFAULT: the cuDNN layer when this build has cuDNN.
  EXPECT_EQ(have, IsCudnn<CudnnReLULayer>("type: 'ReLU' relu_param { engine: CUDNN }"));
  EXPECT_EQ(have, IsCudnn<CudnnReLULayer>("type: 'ReLU'"));
  EXPECT_EQ(have, IsCudnn<CudnnSigmoidLayer>("type: 'Sigmoid' sigmoid_param { engine: CUDNN }"));
  EXPECT_EQ(have, IsCudnn<CudnnTanHLayer>("type: 'TanH'"));
  EXPECT_EQ(have, IsCudnn<CudnnELULayer>("type: 'ELU'"));
  EXPECT_EQ(have, IsCudnn<CudnnSwishLayer>("type: 'Swish'"));
  EXPECT_EQ(have, IsCudnn<CudnnSoftmaxLayer>("type: 'Softmax' softmax_param { engine: CUDNN }"));
  EXPECT_EQ(have, IsCudnn<CudnnPoolingLayer>("type: 'Pooling' pooling_param { pool: AVE }"));
  EXPECT_EQ(have, IsCudnn<CudnnLRNLayer>("type: 'LRN' lrn_param { engine: CUDNN }"));
  // Parameters cuDNN does not compute like crema: crema's layer even when asked for.
  EXPECT_FALSE(
      IsCudnn<CudnnReLULayer>("type: 'ReLU' relu_param { engine: CUDNN negative_slope: 0.1 }"));
  EXPECT_FALSE(IsCudnn<CudnnPoolingLayer>(
      "type: 'Pooling' pooling_param { engine: CUDNN pool: STOCHASTIC }"));
  EXPECT_FALSE(IsCudnn<CudnnLRNLayer>(
      "type: 'LRN' lrn_param { engine: CUDNN norm_region: WITHIN_CHANNEL }"));
  EXPECT_FALSE(IsCudnn<CudnnLRNLayer>("type: 'LRN' lrn_param { engine: CUDNN local_size: 17 }"));
  EXPECT_FALSE(IsCudnn<CudnnLRNLayer>("type: 'LRN' lrn_param { engine: CUDNN beta: 0.001 }"));
  // The type string stays the base layer's.
  EXPECT_STREQ("ReLU", MakeLayer("type: 'ReLU' relu_param { engine: CUDNN }")->type());
#endif
}

TEST(CudnnEngines, PoolingDecidesAtReshape) {
#ifndef CREMA_WITH_CUDA
  GTEST_SKIP() << "CPU-only build: no cuDNN layers";
#else
  if (!cudnn::Available()) GTEST_SKIP() << "built without cuDNN";
  auto uses = [](const std::string& param, const std::vector<int>& shape, int tops) {
    std::shared_ptr<Layer> layer =
        MakeLayer("name: 'p' type: 'Pooling' pooling_param { engine: CUDNN " + param + " }");
    auto* p = dynamic_cast<CudnnPoolingLayer*>(layer.get());
    EXPECT_NE(p, nullptr);
    if (!p) return false;
    Blob bottom(shape), top0, top1;
    BlobVec b = {&bottom}, t = {&top0};
    if (tops == 2) t.push_back(&top1);
    layer->SetUp(b, t);
    return p->UsesCudnn();
  };
  EXPECT_TRUE(uses("pool: MAX kernel_size: 3 stride: 2 pad: 1", {1, 2, 9, 9}, 1));
  EXPECT_FALSE(uses("pool: MAX kernel_size: 3 stride: 2 pad: 1", {1, 2, 8, 9}, 1));  // CEIL
  EXPECT_TRUE(uses("pool: MAX kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", {1, 2, 8, 9}, 1));
  EXPECT_FALSE(uses("pool: MAX kernel_size: 3 stride: 2 pad: 1", {1, 2, 9, 9}, 2));  // mask
  EXPECT_TRUE(uses("pool: AVE global_pooling: true", {1, 2, 5, 4}, 1));
#endif
}

}  // namespace
}  // namespace crema
