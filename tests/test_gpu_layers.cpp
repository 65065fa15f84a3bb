// The GPU backend against the CPU path. Every test needs a CUDA device: in CPU-only builds,
// or when no device is visible, each one is skipped with "no CUDA device: GPU test skipped".
//
// For each GPU layer: forward and backward on random data in GPU mode equal the CPU path
// (relative 1e-4, fp32), and the numerical gradient check passes in GPU mode. Also: the GPU
// math against the CPU math, and the fused SGD update (kernel and whole solver steps)
// against the CPU update. Suites: GpuLayers, GpuMath, GpuSolver.
#include <set>

#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

// ---------------------------------------------------------------------------------------
// Neuron layers
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, ReLU) {
  REQUIRE_GPU();
  const std::string relu = "name: 'r' type: 'ReLU'";
  CompareCpuGpu(relu, {kImage}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.kink_range = 0.02f;
  GradientCheckGpu(relu, {{2, 3, 4}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, LeakyReLU) {
  REQUIRE_GPU();
  const std::string relu = "name: 'r' type: 'ReLU' relu_param { negative_slope: 0.1 }";
  CompareCpuGpu(relu, {kImage}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.kink_range = 0.02f;
  GradientCheckGpu(relu, {{2, 3, 4}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, Sigmoid) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'Sigmoid'", {kImage}, {Gaussian()});
  GradientCheckGpu("name: 's' type: 'Sigmoid'", {{2, 3, 4}}, {Gaussian()});
}

TEST_F(GpuLayers, TanH) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 't' type: 'TanH'", {kImage}, {Gaussian()});
  GradientCheckGpu("name: 't' type: 'TanH'", {{2, 3, 4}}, {Gaussian()});
}

TEST_F(GpuLayers, DropoutTestPhaseIsIdentity) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'd' type: 'Dropout' phase: TEST", {kImage}, {Gaussian()});
}

TEST_F(GpuLayers, DropoutTrainMaskAndScale) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer =
      MakeLayer("name: 'd' type: 'Dropout' phase: TRAIN dropout_param { dropout_ratio: 0.3 }");
  Blob x({64, 1000}), y;
  testing::FillUniform(&x, 1.f, 2.f, 5);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  Context::reseed(5, 0);
  layer->Forward({&x}, {&y});
  cpu_set(y.count(), 1.f, y.mutable_cpu_diff());
  layer->Backward({&y}, {true}, {&x});
  Context::set_mode(Mode::CPU);
  const float scale = 1.f / 0.7f;
  int kept = 0;
  for (int i = 0; i < x.count(); ++i) {
    const float yi = y.cpu_data()[i], xi = x.cpu_data()[i], dxi = x.cpu_diff()[i];
    if (yi == 0.f) {
      EXPECT_EQ(dxi, 0.f) << i;
    } else {
      ++kept;
      ASSERT_NEAR(yi, xi * scale, 1e-5f) << i;
      ASSERT_NEAR(dxi, scale, 1e-5f) << i;  // the backward mask is the forward one
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / x.count(), 0.7, 0.01);
  // Reseeding reproduces the mask; another seed gives another one.
  Blob y2;
  y2.ReshapeLike(y);
  Context::set_mode(Mode::GPU);
  Context::reseed(5, 0);
  layer->Forward({&x}, {&y2});
  Context::set_mode(Mode::CPU);
  EXPECT_EQ(Data(y), Data(y2));
  Context::set_mode(Mode::GPU);
  Context::reseed(5, 1);
  layer->Forward({&x}, {&y2});
  Context::set_mode(Mode::CPU);
  EXPECT_NE(Data(y), Data(y2));
}

TEST_F(GpuLayers, DropoutGradient) {
  REQUIRE_GPU();
  GradientCheckGpu("name: 'd' type: 'Dropout' phase: TRAIN", {{2, 3, 4}}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, PoolingMaxCeilWithPad) {
  REQUIRE_GPU();
  const std::string p =
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }";
  CompareCpuGpu(p, {{2, 3, 8, 7}}, {Gaussian()});
  CompareCpuGpu("name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
                {{2, 3, 7, 9}}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.step = 1e-3f;
  GradientCheckGpu(p, {{1, 2, 5, 5}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, PoolingMaxTopMask) {
  REQUIRE_GPU();
  CompareOptions o;
  o.num_tops = 2;
  o.backward = true;
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 "
      "stride_w: 1 pad_h: 1 pad_w: 0 }",
      {{2, 2, 6, 5}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, PoolingAveWithPad) {
  REQUIRE_GPU();
  const std::string p =
      "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }";
  CompareCpuGpu(p, {{2, 3, 8, 7}}, {Gaussian()});
  CompareCpuGpu("name: 'p' type: 'Pooling' pooling_param { pool: AVE global_pooling: true }",
                {{2, 3, 5, 4}}, {Gaussian()});
  GradientCheckGpu(p, {{1, 2, 5, 5}}, {Gaussian()});
}

TEST_F(GpuLayers, PoolingStochasticRunsOnGpuMode) {
  REQUIRE_GPU();
  CompareOptions o;
  o.backward = false;
  CompareCpuGpu(
      "name: 'p' type: 'Pooling' phase: TEST pooling_param { pool: STOCHASTIC kernel_size: 2 "
      "stride: 2 }",
      {{2, 2, 6, 6}}, {Positive()}, o);
}

// ---------------------------------------------------------------------------------------
// InnerProduct and Convolution
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, InnerProduct) {
  REQUIRE_GPU();
  const std::string ip =
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 7 "
      "weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' } }";
  CompareCpuGpu(ip, {{5, 3, 2, 2}}, {Gaussian()});
  GradientCheckGpu(ip, {{2, 3, 2}}, {Gaussian()});
}

TEST_F(GpuLayers, InnerProductTransposeNoBias) {
  REQUIRE_GPU();
  const std::string ip =
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 4 transpose: true "
      "bias_term: false weight_filler { type: 'gaussian' std: 0.3 } }";
  CompareCpuGpu(ip, {{3, 6}}, {Gaussian()});
  GradientCheckGpu(ip, {{2, 5}}, {Gaussian()});
}

TEST_F(GpuLayers, Convolution) {
  REQUIRE_GPU();
  const std::string conv =
      "name: 'c' type: 'Convolution' convolution_param { num_output: 4 kernel_size: 3 "
      "stride: 2 pad: 1 weight_filler { type: 'gaussian' std: 0.3 } "
      "bias_filler { type: 'gaussian' } }";
  CompareCpuGpu(conv, {{2, 3, 9, 8}}, {Gaussian()});
  testing::GradientCheckOptions o;
  o.max_checks_per_blob = 40;
  GradientCheckGpu(conv, {{1, 2, 5, 5}}, {Gaussian()}, o);
}

TEST_F(GpuLayers, ConvolutionLeNetShapes) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'c' type: 'Convolution' convolution_param { num_output: 20 kernel_size: 5 "
      "weight_filler { type: 'xavier' } bias_filler { type: 'constant' value: 0.1 } }",
      {{4, 1, 28, 28}}, {Gaussian()});
}

TEST_F(GpuLayers, ConvolutionGroupsDilationTwoBottoms) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'c' type: 'Convolution' convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 "
      "group: 2 dilation: 2 pad: 1 weight_filler { type: 'gaussian' std: 0.3 } "
      "bias_filler { type: 'gaussian' } }",
      {{2, 4, 8, 7}, {2, 4, 8, 7}}, {Gaussian(), Gaussian()}, CompareOptions{true, {}, 2});
}

TEST_F(GpuLayers, ConvolutionDepthwise) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'c' type: 'Convolution' convolution_param { num_output: 3 kernel_size: 3 "
      "group: 3 pad: 1 bias_term: false weight_filler { type: 'gaussian' std: 0.3 } }",
      {{2, 3, 6, 6}}, {Gaussian()});
}

TEST_F(GpuLayers, Convolution3D) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 "
      "weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' } }",
      {{2, 2, 4, 5, 3}}, {Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Softmax, losses, accuracy
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, Softmax) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'Softmax'", {{4, 10}}, {Gaussian()});
  CompareCpuGpu("name: 's' type: 'Softmax'", {{2, 5, 3, 2}}, {Gaussian()});
  GradientCheckGpu("name: 's' type: 'Softmax'", {{2, 4, 3}}, {Gaussian()});
}

TEST_F(GpuLayers, SoftmaxWithLoss) {
  REQUIRE_GPU();
  const std::string loss = "name: 'l' type: 'SoftmaxWithLoss'";
  CompareCpuGpu(loss, {{6, 10}, {6}}, {Gaussian(), Labels(10)});
  CompareCpuGpu(loss, {{2, 5, 3, 2}, {2, 3, 2}}, {Gaussian(), Labels(5)});
  GradientCheckGpu(loss, {{3, 5}, {3}}, {Gaussian(), Labels(5)});
}

TEST_F(GpuLayers, SoftmaxWithLossIgnoreLabelAndNormalization) {
  REQUIRE_GPU();
  CompareCpuGpu(
      "name: 'l' type: 'SoftmaxWithLoss' loss_param { ignore_label: 2 normalization: VALID }",
      {{2, 4, 3, 3}, {2, 3, 3}}, {Gaussian(), Labels(4)});
  CompareCpuGpu("name: 'l' type: 'SoftmaxWithLoss' loss_param { normalization: BATCH_SIZE }",
                {{5, 4}, {5}}, {Gaussian(), Labels(4)});
}

TEST_F(GpuLayers, SoftmaxWithLossBadLabelThrows) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss'");
  Blob x({2, 3}), label({2}), top;
  testing::FillGaussian(&x);
  label.mutable_cpu_data()[0] = 1;
  label.mutable_cpu_data()[1] = 3;
  layer->SetUp({&x, &label}, {&top});
  Context::set_mode(Mode::GPU);
  try {
    layer->Forward({&x, &label}, {&top});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 (at index 1 of the label blob) is out of range"),
              std::string::npos)
        << e.what();
  }
}

// Without loss readback (training iterations whose loss nobody reads) the bad label is
// reported by the next Forward, naming the earlier batch; the loss and its gradient are
// still finite meanwhile.
TEST_F(GpuLayers, SoftmaxWithLossBadLabelReportedAtNextForwardWithoutReadback) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer("name: 'loss' type: 'SoftmaxWithLoss'");
  Blob x({2, 3}), label({2}), top;
  testing::FillGaussian(&x);
  label.mutable_cpu_data()[0] = 1;
  label.mutable_cpu_data()[1] = 7;
  layer->SetUp({&x, &label}, {&top});
  Context::set_mode(Mode::GPU);
  Context::set_loss_readback(false);
  EXPECT_EQ(layer->Forward({&x, &label}, {&top}), 0.f);  // nothing read back, no error yet
  EXPECT_TRUE(std::isfinite(top.cpu_data()[0]));
  label.mutable_cpu_data()[1] = 2;  // this batch is fine; the earlier one was not
  try {
    layer->Forward({&x, &label}, {&top});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 7 (at index 1 of the label blob, in an earlier "
                                         "batch) is out of range"),
              std::string::npos)
        << e.what();
  }
  Context::set_loss_readback(true);
  EXPECT_NO_THROW(layer->Forward({&x, &label}, {&top}));
}

TEST_F(GpuLayers, Accuracy) {
  REQUIRE_GPU();
  CompareOptions o;
  o.backward = false;
  CompareCpuGpu("name: 'a' type: 'Accuracy'", {{50, 10}, {50}}, {Gaussian(), Labels(10)}, o);
  CompareCpuGpu("name: 'a' type: 'Accuracy' accuracy_param { top_k: 3 }", {{50, 10}, {50}},
                {Gaussian(), Labels(10)}, o);
  CompareCpuGpu("name: 'a' type: 'Accuracy' accuracy_param { ignore_label: 1 }",
                {{4, 3, 5}, {4, 5}}, {Gaussian(), Labels(3)}, o);
  o.num_tops = 2;
  CompareCpuGpu("name: 'a' type: 'Accuracy'", {{30, 4}, {30}}, {Gaussian(), Labels(4)}, o);
}

TEST_F(GpuLayers, EuclideanLoss) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'e' type: 'EuclideanLoss'", {{4, 5}, {4, 5}}, {Gaussian(), Gaussian()},
                CompareOptions{true, {true, true}, 1});
  GradientCheckGpu("name: 'e' type: 'EuclideanLoss'", {{3, 4}, {3, 4}}, {Gaussian(), Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Structural layers
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, Split) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'Split'", {kImage}, {Gaussian()}, CompareOptions{true, {}, 3});
}

TEST_F(GpuLayers, FlattenAndReshape) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'f' type: 'Flatten'", {kImage}, {Gaussian()});
  CompareCpuGpu("name: 'r' type: 'Reshape' reshape_param { shape { dim: 0 dim: -1 dim: 7 } }",
                {kImage}, {Gaussian()});
}

TEST_F(GpuLayers, Concat) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 'c' type: 'Concat'", {{2, 3, 4, 5}, {2, 2, 4, 5}, {2, 1, 4, 5}},
                {Gaussian(), Gaussian(), Gaussian()});
  CompareCpuGpu("name: 'c' type: 'Concat' concat_param { axis: 2 }", {{2, 3, 4, 5}, {2, 3, 1, 5}},
                {Gaussian(), Gaussian()});
  GradientCheckGpu("name: 'c' type: 'Concat'", {{2, 2, 3}, {2, 1, 3}}, {Gaussian(), Gaussian()});
}

TEST_F(GpuLayers, Slice) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'Slice' slice_param { slice_point: 1 slice_point: 3 }",
                {{2, 5, 3, 2}}, {Gaussian()}, CompareOptions{true, {}, 3});
  CompareCpuGpu("name: 's' type: 'Slice' slice_param { axis: 0 }", {{4, 3, 2}}, {Gaussian()},
                CompareOptions{true, {}, 2});
  GradientCheckGpu("name: 's' type: 'Slice' slice_param { slice_point: 2 }", {{2, 3, 2}},
                   {Gaussian()}, {}, 2);
}

// gpu_copy_2d_batch: more pieces than one launch takes (64), and pieces over its
// large-copy threshold (64 Ki floats) next to small ones.
TEST_F(GpuLayers, SliceAndConcatWithManyPiecesAndLargeOnes) {
  REQUIRE_GPU();
  CompareCpuGpu("name: 's' type: 'Slice'", {{4, 150, 2}}, {Gaussian()},
                CompareOptions{true, {}, 150});
  CompareCpuGpu("name: 's' type: 'Slice' slice_param { slice_point: 1 slice_point: 2 }",
                {{1, 4, 40000}}, {Gaussian()}, CompareOptions{true, {}, 3});
  std::vector<std::vector<int>> steps(150, std::vector<int>{3, 1, 2});
  steps[70] = {3, 30000, 2};  // one large piece among the small ones
  CompareCpuGpu("name: 'c' type: 'Concat'", steps, std::vector<Fill>(150, Gaussian()));
  // Only some bottoms want a gradient: the batch holds the others' copies back.
  std::vector<bool> some(150);
  for (size_t k = 0; k < some.size(); k += 3) some[k] = true;
  CompareCpuGpu("name: 'c' type: 'Concat' concat_param { axis: 0 }",
                std::vector<std::vector<int>>(150, {1, 5}), std::vector<Fill>(150, Gaussian()),
                CompareOptions{true, some, 1});
}

TEST_F(GpuLayers, Eltwise) {
  REQUIRE_GPU();
  const std::vector<std::vector<int>> three = {kImage, kImage, kImage};
  const std::vector<Fill> fills = {Gaussian(), Gaussian(), Gaussian()};
  CompareCpuGpu("name: 'e' type: 'Eltwise' eltwise_param { operation: SUM }", three, fills);
  CompareCpuGpu(
      "name: 'e' type: 'Eltwise' eltwise_param { operation: SUM coeff: 0.5 coeff: -1 coeff: 2 }",
      three, fills);
  CompareCpuGpu("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD }", three, fills);
  CompareCpuGpu(
      "name: 'e' type: 'Eltwise' eltwise_param { operation: PROD stable_prod_grad: false }", three,
      {Positive(), Positive(), Positive()});
  CompareCpuGpu("name: 'e' type: 'Eltwise' eltwise_param { operation: MAX }", three, fills);
  GradientCheckGpu("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD }",
                   {{2, 3}, {2, 3}, {2, 3}}, {Gaussian(), Gaussian(), Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Data layers: the CPU forward, data read on the device afterwards
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, DummyDataAndInput) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> dummy = MakeLayer(
      "name: 'd' type: 'DummyData' dummy_data_param { shape { dim: 2 dim: 3 } "
      "data_filler { type: 'constant' value: 1.5 } }");
  std::shared_ptr<Layer> input =
      MakeLayer("name: 'i' type: 'Input' input_param { shape { dim: 4 dim: 2 } }");
  EXPECT_TRUE(dummy->HasGpuImplementation());
  EXPECT_TRUE(input->HasGpuImplementation());
  Blob a, b;
  dummy->SetUp({}, {&a});
  input->SetUp({}, {&b});
  Context::set_mode(Mode::GPU);
  dummy->Forward({}, {&a});
  input->Forward({}, {&b});
  EXPECT_EQ(a.shape(), (std::vector<int>{2, 3}));
  EXPECT_EQ(b.shape(), (std::vector<int>{4, 2}));
#ifdef CREMA_WITH_CUDA
  EXPECT_FLOAT_EQ(gpu_asum(a.count(), a.gpu_data()), 9.f);
#endif
}

// ---------------------------------------------------------------------------------------
// Whole nets and the solver
// ---------------------------------------------------------------------------------------

// A small LeNet-like net with every LeNet layer type.
std::string SmallNet() {
  return "name: 'small' "
         "layer { name: 'data' type: 'DummyData' top: 'data' top: 'label' dummy_data_param {"
         "  shape { dim: 8 dim: 1 dim: 12 dim: 12 } shape { dim: 8 }"
         "  data_filler { type: 'gaussian' std: 1 } data_filler { type: 'uniform' min: 0 max: "
         "4.99 } } } "
         "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1'"
         "  param { lr_mult: 1 } param { lr_mult: 2 }"
         "  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: 'xavier' }"
         "  bias_filler { type: 'constant' value: 0.1 } } } "
         "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1'"
         "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } } "
         "layer { name: 'relu1' type: 'ReLU' bottom: 'pool1' top: 'pool1' } "
         "layer { name: 'ip1' type: 'InnerProduct' bottom: 'pool1' top: 'ip1'"
         "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } } } "
         "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip1' bottom: 'label' top: 'loss' "
         "} ";
}

pb::SolverParameter SmallSolver(const std::string& regularization) {
  pb::SolverParameter p;
  const std::string text = "net_param { " + SmallNet() +
                           " } base_lr: 0.05 lr_policy: 'fixed' momentum: 0.9 "
                           "weight_decay: 0.01 regularization_type: '" +
                           regularization +
                           "' max_iter: 5 display: 0 snapshot_after_train: false "
                           "random_seed: 3";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  return p;
}

TEST_F(GpuSolver, SgdStepsMatchCpu) {
  REQUIRE_GPU();
  for (const std::string reg : {"L2", "L1"}) {
    std::vector<std::vector<float>> weights[2], history[2];
    for (int k = 0; k < 2; ++k) {
      Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
      SGDSolver solver(SmallSolver(reg));
      solver.Step(4);
      Context::set_mode(Mode::CPU);
      for (const Blob* w : solver.net()->learnable_params()) weights[k].push_back(Data(*w));
      for (const auto& h : solver.history()) history[k].push_back(Data(*h));
    }
    ASSERT_EQ(weights[0].size(), weights[1].size());
    for (size_t i = 0; i < weights[0].size(); ++i) {
      ExpectClose(weights[0][i], weights[1][i].data(), reg + " weight " + std::to_string(i));
      ExpectClose(history[0][i], history[1][i].data(), reg + " history " + std::to_string(i));
    }
  }
}

TEST_F(GpuSolver, NetForwardBackwardMatchesCpu) {
  REQUIRE_GPU();
  pb::NetParameter param;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(SmallNet(), &param));
  param.mutable_state()->set_phase(pb::TRAIN);
  float loss[2];
  std::vector<std::vector<float>> grads[2];
  for (int k = 0; k < 2; ++k) {
    Context::set_random_seed(9);
    Net net(param);
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    net.ClearParamDiffs();
    loss[k] = net.ForwardBackward();
    Context::set_mode(Mode::CPU);
    for (const Blob* w : net.learnable_params()) grads[k].push_back(Diff(*w));
  }
  EXPECT_NEAR(loss[1], loss[0], 1e-4f * std::fabs(loss[0]));
  for (size_t i = 0; i < grads[0].size(); ++i)
    ExpectClose(grads[0][i], grads[1][i].data(), "param grad " + std::to_string(i));
}

// ---------------------------------------------------------------------------------------
// GPU math and the fused SGD kernel (GPU builds only)
// ---------------------------------------------------------------------------------------

#ifdef CREMA_WITH_CUDA

// A device copy of `host` that frees itself.
struct DeviceArray {
  Blob blob;
  explicit DeviceArray(const std::vector<float>& host) : blob({static_cast<int>(host.size())}) {
    cpu_copy(host.size(), host.data(), blob.mutable_cpu_data());
  }
  const float* get() { return blob.gpu_data(); }
  float* mutable_get() { return blob.mutable_gpu_data(); }
  std::vector<float> host() { return Data(blob); }
};

std::vector<float> RandomVector(int n, uint64_t seed) {
  std::vector<float> v(n);
  Context::reseed(55, seed);
  cpu_rng_gaussian(n, 0.f, 1.f, v.data());
  return v;
}

TEST_F(GpuMath, GemmAndGemvEveryTranspose) {
  REQUIRE_GPU();
  const int M = 7, N = 5, K = 9;
  for (Trans ta : {Trans::No, Trans::Yes}) {
    for (Trans tb : {Trans::No, Trans::Yes}) {
      std::vector<float> A = RandomVector(M * K, 1), B = RandomVector(K * N, 2),
                         C = RandomVector(M * N, 3);
      DeviceArray dA(A), dB(B), dC(C);
      cpu_gemm(ta, tb, M, N, K, 0.7f, A.data(), B.data(), 0.3f, C.data());
      gpu_gemm(ta, tb, M, N, K, 0.7f, dA.get(), dB.get(), 0.3f, dC.mutable_get());
      ExpectClose(C, dC.host().data(), "gemm");
    }
    std::vector<float> A = RandomVector(M * N, 4);
    const int xn = ta == Trans::No ? N : M, yn = ta == Trans::No ? M : N;
    std::vector<float> x = RandomVector(xn, 5), y = RandomVector(yn, 6);
    DeviceArray dA(A), dx(x), dy(y);
    cpu_gemv(ta, M, N, 1.5f, A.data(), x.data(), 0.5f, y.data());
    gpu_gemv(ta, M, N, 1.5f, dA.get(), dx.get(), 0.5f, dy.mutable_get());
    ExpectClose(y, dy.host().data(), "gemv");
  }
}

TEST_F(GpuMath, ElementwiseAndReductions) {
  REQUIRE_GPU();
  const int n = 1000;
  std::vector<float> a = RandomVector(n, 7), b = RandomVector(n, 8), y(n);
  DeviceArray da(a), db(b), dy(y);
  cpu_axpby(n, 0.5f, a.data(), -2.f, b.data());
  gpu_axpby(n, 0.5f, da.get(), -2.f, db.mutable_get());
  ExpectClose(b, db.host().data(), "axpby");
  cpu_mul(n, a.data(), b.data(), y.data());
  gpu_mul(n, da.get(), db.get(), dy.mutable_get());
  ExpectClose(y, dy.host().data(), "mul");
  cpu_exp(n, a.data(), y.data());
  gpu_exp(n, da.get(), dy.mutable_get());
  ExpectClose(y, dy.host().data(), "exp");
  const float dot = cpu_dot(n, a.data(), b.data()), asum = cpu_asum(n, a.data());
  EXPECT_NEAR(gpu_dot(n, da.get(), db.get()), dot, 1e-4f * std::fabs(dot) + 1e-3f);
  EXPECT_NEAR(gpu_asum(n, da.get()), asum, 1e-4f * asum);
  gpu_set(n, 3.f, dy.mutable_get());
  EXPECT_FLOAT_EQ(gpu_asum(n, dy.get()), 3.f * n);
}

TEST_F(GpuMath, RandomNumbers) {
  REQUIRE_GPU();
  const int n = 100000;
  Blob r({n});
  gpu_rng_uniform(n, -1.f, 3.f, r.mutable_gpu_data());
  double sum = 0, lo = 1e9, hi = -1e9;
  for (int i = 0; i < n; ++i) {
    const float v = r.cpu_data()[i];
    sum += v;
    lo = std::min<double>(lo, v);
    hi = std::max<double>(hi, v);
  }
  EXPECT_NEAR(sum / n, 1.0, 0.02);
  EXPECT_GE(lo, -1.0);
  EXPECT_LT(hi, 3.0);
  gpu_rng_gaussian(n, 2.f, 0.5f, r.mutable_gpu_data());
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double v = r.cpu_data()[i];
    s += v;
    s2 += v * v;
  }
  const double mean = s / n;
  EXPECT_NEAR(mean, 2.0, 0.01);
  EXPECT_NEAR(std::sqrt(s2 / n - mean * mean), 0.5, 0.01);
}

TEST_F(GpuSolver, FusedSgdKernelMatchesCpuFormula) {
  REQUIRE_GPU();
  const int n = 777;
  for (int reg = 0; reg < 3; ++reg) {
    std::vector<float> w = RandomVector(n, 10), g = RandomVector(n, 11), h = RandomVector(n, 12);
    DeviceArray dw(w), dg(g), dh(h);
    const float norm = 0.5f, decay = 0.01f, momentum = 0.9f, rate = 0.1f;
    for (int i = 0; i < n; ++i) {
      float gi = g[i] * norm;
      if (reg == 1) gi += decay * w[i];
      if (reg == 2) gi += decay * static_cast<float>((0.f < w[i]) - (w[i] < 0.f));
      h[i] = rate * gi + momentum * h[i];
      g[i] = h[i];
    }
    SgdUpdateGpu(n, dw.get(), dg.mutable_get(), dh.mutable_get(), norm, reg, decay, momentum, rate);
    ExpectClose(g, dg.host().data(), "sgd g");
    ExpectClose(h, dh.host().data(), "sgd h");
  }
}

#else  // CPU-only build: the GPU-math tests exist and skip.

TEST_F(GpuMath, GemmAndGemvEveryTranspose) {
  REQUIRE_GPU();
}
TEST_F(GpuMath, ElementwiseAndReductions) {
  REQUIRE_GPU();
}
TEST_F(GpuMath, RandomNumbers) {
  REQUIRE_GPU();
}
TEST_F(GpuSolver, FusedSgdKernelMatchesCpuFormula) {
  REQUIRE_GPU();
}

#endif  // CREMA_WITH_CUDA

}  // namespace
}  // namespace crema

namespace crema {
namespace {
using namespace gputest;

// Every registered layer type has GPU code in a CUDA build (checked without a device: the
// property is fixed at compile time). Types whose constructor needs parameters get them.
TEST(GpuCoverage, EveryLayerTypeHasGpuCode) {
#ifndef CREMA_WITH_CUDA
  GTEST_SKIP() << "CPU-only build: no GPU code to check";
#else
  // Layer types the tests register for themselves (CPU code only, on purpose).
  const std::set<std::string> test_only = {"CpuOnlyDouble", "Solvers2Data", "TestCyclicData"};
  std::vector<std::string> missing, unconstructible;
  for (const std::string& type : LayerRegistry::TypeList()) {
    if (test_only.count(type)) continue;
    pb::LayerParameter param;
    param.set_name("l");
    param.set_type(type);
    std::shared_ptr<Layer> layer;
    try {
      layer = LayerRegistry::Create(param);
    } catch (const Error&) {
      unconstructible.push_back(type);
      continue;
    }
    if (!layer->HasGpuImplementation()) missing.push_back(type);
  }
  std::string list;
  for (const auto& t : missing) list += t + " ";
  EXPECT_TRUE(missing.empty()) << "layer types without GPU code: " << list;
  std::string skipped;
  for (const auto& t : unconstructible) skipped += t + " ";
  EXPECT_LE(unconstructible.size(), 3u)
      << "types not constructible from a bare parameter: " << skipped;
#endif
}

TEST_F(GpuLayers, Im2col2DAnd3D) {
  REQUIRE_GPU();
  const std::string two_d =
      "name: 'i' type: 'Im2col' convolution_param { kernel_size: 3 stride: 2 pad: 1 "
      "dilation: 1 }";
  CompareCpuGpu(two_d, {{2, 3, 7, 6}}, {Gaussian()});
  GradientCheckGpu(two_d, {{1, 2, 5, 5}}, {Gaussian()});
  const std::string three_d =
      "name: 'i' type: 'Im2col' convolution_param { kernel_size: 2 stride: 1 pad: 1 "
      "dilation: 2 }";
  CompareCpuGpu(three_d, {{2, 2, 4, 5, 3}}, {Gaussian()});
  GradientCheckGpu(three_d, {{1, 2, 3, 4, 3}}, {Gaussian()});
}

}  // namespace
}  // namespace crema
