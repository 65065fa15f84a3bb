// CUDA graphs of Net::Forward/Backward (src/net_graph.hpp): a net that replays captured
// graphs must compute exactly what the same net computes layer by layer, pass after pass,
// when inputs, weights or shapes change between passes; a capture that fails falls back.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/net.hpp"
#include "layers/neuron.hpp"
#include "layers/recurrent.hpp"
#include "tests/gpu_test_util.hpp"
#include "tests/test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "crema/gpu_math.hpp"
#include "src/net_graph.hpp"
#endif

namespace crema {
namespace {

using gputest::GpuAvailable;

// A layer that claims to be capturable but reads its output back to the host in the
// forward pass: its capture must fail, be reported, and the net must run it eagerly.
class HostPeekLayer : public NeuronLayer {
 public:
  explicit HostPeekLayer(const pb::LayerParameter& p) : NeuronLayer(p) {}
  const char* type() const override { return "HostPeek"; }
  bool HasGpuImplementation() const override { return true; }
  bool GraphSafeForward() const override { return true; }
  float last_seen = 0;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override {
    cpu_copy(bottom[0]->count(), bottom[0]->cpu_data(), top[0]->mutable_cpu_data());
    last_seen = top[0]->cpu_data()[0];
  }
  void Backward_cpu(const BlobVec&, const std::vector<bool>&, const BlobVec&) override {}
#ifdef CREMA_WITH_CUDA
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    gpu_copy(bottom[0]->count(), bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
    last_seen = top[0]->cpu_data()[0];  // waits for the device: not capturable
  }
  void Backward_gpu(const BlobVec&, const std::vector<bool>&, const BlobVec&) override {}
#endif
};
REGISTER_LAYER_CLASS(HostPeek);

// Input -> conv + BN + Scale + ReLU -> max pool -> conv + residual sum + ReLU -> IP ->
// softmax: at test time two fused convolution chains, all of it one graph segment.
const char* kTestNet = R"(
name: "graph_test"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 4 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1
          weight_filler { type: "gaussian" std: 0.2 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1"
        scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 1.5 }
                      bias_filler { type: "constant" value: 0.05 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1
          weight_filler { type: "gaussian" std: 0.2 } } }
layer { name: "sum" type: "Eltwise" bottom: "conv2" bottom: "pool1" top: "sum" }
layer { name: "relu2" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "ip" type: "InnerProduct" bottom: "sum" top: "ip"
        inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
)";

// Training: BatchNorm with batch statistics, Dropout (eager: a new mask every pass) and
// the loss (eager forward, captured backward) split the passes into several segments.
const char* kTrainNet = R"(
name: "graph_train"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 3 dim: 10 dim: 10 } shape { dim: 4 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_size: 3
          weight_filler { type: "gaussian" std: 0.2 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "drop1" type: "Dropout" bottom: "pool1" top: "pool1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 7 weight_filler { type: "xavier" } } }
layer { name: "relu2" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
)";

pb::NetParameter Parse(const char* text, Phase phase) {
  pb::NetParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param));
  param.mutable_state()->set_phase(phase == Phase::TRAIN ? pb::TRAIN : pb::TEST);
  return param;
}

// Two nets with identical parameters: one may use graphs, the other runs layer by layer.
struct Twins {
  std::unique_ptr<Net> graphed, eager;
  Twins(const char* text, Phase phase) {
    Context::set_random_seed(1701);
    graphed = std::make_unique<Net>(Parse(text, phase));
    Context::set_random_seed(1701);
    eager = std::make_unique<Net>(Parse(text, phase));
    eager->set_cuda_graphs(false);
  }
};

void FillInputs(Net* net, int pass, int classes) {
  for (Blob* input : net->input_blobs()) {
    float* data = input->mutable_cpu_data();
    const bool labels = input->num_axes() == 1;
    for (int i = 0; i < input->count(); ++i)
      data[i] = labels ? static_cast<float>((i + pass) % classes)
                       : std::sin(0.37f * static_cast<float>(i) + 1.3f * static_cast<float>(pass));
  }
}

// Equal to within a hair: the same kernels run in both nets.
void ExpectSameBlobs(const Net& a, const Net& b, const std::string& when, bool diffs) {
  ASSERT_EQ(a.blobs().size(), b.blobs().size());
  for (size_t k = 0; k < a.blobs().size(); ++k) {
    const Blob& x = *a.blobs()[k];
    const Blob& y = *b.blobs()[k];
    ASSERT_EQ(x.shape(), y.shape()) << a.blob_names()[k];
    for (int pass = 0; pass < (diffs ? 2 : 1); ++pass) {
      const float* u = pass ? x.cpu_diff() : x.cpu_data();
      const float* v = pass ? y.cpu_diff() : y.cpu_data();
      for (int i = 0; i < x.count(); ++i)
        ASSERT_NEAR(u[i], v[i], 1e-5f * std::max(1.f, std::fabs(v[i])))
            << when << ": blob " << a.blob_names()[k] << (pass ? " diff" : " data") << " [" << i
            << "]";
    }
  }
}

void ExpectSameParams(const Net& a, const Net& b, const std::string& when) {
  ASSERT_EQ(a.learnable_params().size(), b.learnable_params().size());
  for (size_t k = 0; k < a.learnable_params().size(); ++k) {
    const Blob& x = *a.learnable_params()[k];
    const Blob& y = *b.learnable_params()[k];
    for (int i = 0; i < x.count(); ++i)
      ASSERT_NEAR(x.cpu_data()[i], y.cpu_data()[i],
                  1e-5f * std::max(1.f, std::fabs(y.cpu_data()[i])))
          << when << ": parameter " << a.param_display_names()[k] << " [" << i << "]";
  }
}

// Trains both nets side by side for `iterations` steps (prepare(net, iteration) first, in
// each), expecting equal losses, blobs, gradients and updated parameters after every step.
void TrainSideBySide(const Twins& nets, int iterations,
                     const std::function<void(Net*, int)>& prepare) {
  for (int iter = 0; iter < iterations; ++iter) {
    float losses[2];
    int k = 0;
    for (Net* net : {nets.graphed.get(), nets.eager.get()}) {
      prepare(net, iter);
      net->ClearParamDiffs();
      losses[k++] = net->ForwardBackward();
    }
    const std::string when = "iteration " + std::to_string(iter);
    EXPECT_NEAR(losses[0], losses[1], 1e-5f) << when;
    ExpectSameBlobs(*nets.graphed, *nets.eager, when, true);
    nets.graphed->Update();
    nets.eager->Update();
    ExpectSameParams(*nets.graphed, *nets.eager, when);
  }
}

class GpuGraph : public gputest::GpuTest {
 protected:
  void SetUp() override {
    gputest::GpuTest::SetUp();
    if (!GpuAvailable()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
#ifdef CREMA_WITH_CUDA
    if (!CudaGraphsEnabled()) GTEST_SKIP() << "CREMA_CUDA_GRAPHS=0: CUDA graph test skipped";
#endif
    Context::set_mode(Mode::GPU);
  }
};

#ifdef CREMA_WITH_CUDA
NetGraphs::Counts CountsOf(const Net& net) {
  return net.cuda_graphs() ? net.cuda_graphs()->counts() : NetGraphs::Counts{};
}

TEST_F(GpuGraph, TestNetReplaysWhatLayersCompute) {
  Twins nets(kTestNet, Phase::TEST);
  ASSERT_EQ(nets.graphed->fused_chains().size(), 2u);  // both convolution chains
  for (int pass = 0; pass < 5; ++pass) {
    FillInputs(nets.graphed.get(), pass, 5);
    FillInputs(nets.eager.get(), pass, 5);
    nets.graphed->Forward();
    nets.eager->Forward();
    // Host reads after every pass: a replay must leave the host copies stale, not old.
    ExpectSameBlobs(*nets.graphed, *nets.eager, "pass " + std::to_string(pass), false);
  }
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.forward_segments, 1);
  EXPECT_EQ(counts.forward_layers, nets.graphed->num_layers() - 1);  // all but the Input
  EXPECT_EQ(counts.captures, 1);                                     // on the second pass
  EXPECT_EQ(counts.launches, 4);
  EXPECT_EQ(counts.failures, 0);
  EXPECT_EQ(CountsOf(*nets.eager).launches, 0);
}

TEST_F(GpuGraph, HostWrittenWeightsAndNewShapesAreSeen) {
  Twins nets(kTestNet, Phase::TEST);
  auto forward_both = [&](int pass, const std::string& when) {
    FillInputs(nets.graphed.get(), pass, 5);
    FillInputs(nets.eager.get(), pass, 5);
    nets.graphed->Forward();
    nets.eager->Forward();
    ExpectSameBlobs(*nets.graphed, *nets.eager, when, false);
  };
  for (int pass = 0; pass < 3; ++pass) forward_both(pass, "warm-up");
  // A weight changed on the host after the capture reaches the replayed graph.
  for (Net* net : {nets.graphed.get(), nets.eager.get()}) {
    float* w = net->layer_by_name("conv2")->blobs()[0]->mutable_cpu_data();
    for (int i = 0; i < 10; ++i) w[i] += 0.5f;
  }
  forward_both(3, "after a host write of conv2's weights");
  EXPECT_EQ(CountsOf(*nets.graphed).captures, 1);
  // A new batch size: eager once, captured again on the next pass, replayed after.
  for (Net* net : {nets.graphed.get(), nets.eager.get()}) {
    net->input_blobs()[0]->Reshape({2, 3, 12, 12});
    net->Reshape();
  }
  for (int pass = 4; pass < 8; ++pass) forward_both(pass, "batch 2, pass " + std::to_string(pass));
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.captures, 2);
  EXPECT_EQ(counts.launches, 2 + 1 + 3);
  EXPECT_EQ(counts.failures, 0);
}

TEST_F(GpuGraph, TrainingStepsMatchLayerByLayer) {
  Twins nets(kTrainNet, Phase::TRAIN);
  TrainSideBySide(nets, 6, [](Net* net, int iter) {
    Context::reseed(3, static_cast<uint64_t>(iter));  // the same dropout masks in both
    FillInputs(net, iter, 3);
  });
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  // Forward: conv1 .. pool1 and ip1 .. ip2 (drop1 and the loss run between them).
  // Backward: loss .. ip1 and pool1 .. conv1 (drop1 between them).
  EXPECT_EQ(counts.forward_segments, 2);
  EXPECT_EQ(counts.forward_layers, 5 + 3);
  EXPECT_EQ(counts.backward_segments, 2);
  EXPECT_EQ(counts.failures, 0);
  EXPECT_EQ(counts.captures, 4);
  EXPECT_EQ(counts.launches, 4 * 5);
}

// Recurrent layers in training: GRU -> LSTM -> RNN, whose states carry from one pass to the
// next (cont is 1 at every step), then the last step -> IP -> loss. The 5 steps of each
// layer replay inside one graph; the carried states are graph state (GraphStateBlobs):
// a replay must read the state the previous pass left, and a host-side ResetState between
// passes must reach the device before the next replay.
const char* kRecurrentNet = R"(
name: "recurrent"
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 5 dim: 3 dim: 4 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 3 } } }
layer { name: "cont" type: "DummyData" top: "cont"
        dummy_data_param { shape { dim: 5 dim: 3 } data_filler { type: "constant" value: 1 } } }
layer { name: "gru" type: "GRU" bottom: "x" bottom: "cont" top: "g"
        recurrent_param { num_output: 6 weight_filler { type: "uniform" min: -0.5 max: 0.5 }
                          bias_filler { type: "uniform" min: -0.2 max: 0.2 } } }
layer { name: "lstm" type: "LSTM" bottom: "g" bottom: "cont" top: "l"
        recurrent_param { num_output: 5 weight_filler { type: "uniform" min: -0.5 max: 0.5 }
                          bias_filler { type: "uniform" min: -0.2 max: 0.2 } } }
layer { name: "rnn" type: "RNN" bottom: "l" bottom: "cont" top: "r"
        recurrent_param { num_output: 4 weight_filler { type: "uniform" min: -0.5 max: 0.5 }
                          bias_filler { type: "uniform" min: -0.2 max: 0.2 } } }
layer { name: "split" type: "Slice" bottom: "r" top: "head" top: "last"
        slice_param { axis: 0 slice_point: 4 } }
layer { name: "silence" type: "Silence" bottom: "head" }
layer { name: "flat" type: "Reshape" bottom: "last" top: "flat"
        reshape_param { shape { dim: 3 dim: 4 } } }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
)";

TEST_F(GpuGraph, RecurrentLayersReplayWithTheirCarriedState) {
  Twins nets(kRecurrentNet, Phase::TRAIN);
  TrainSideBySide(nets, 7, [](Net* net, int iter) {
    if (iter == 4)  // forget the carried states (on the host)
      for (const char* name : {"gru", "lstm", "rnn"})
        static_cast<RecurrentLayer*>(net->layer_by_name(name).get())->ResetState();
    FillInputs(net, iter % 2, 3);  // the same inputs every other pass: only the state moves
  });
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.forward_segments, 1);
  // The Split that fans cont out, gru .. ip (the inputs, DummyData and the loss run eagerly).
  EXPECT_EQ(counts.forward_layers, 8);
  EXPECT_EQ(counts.backward_segments, 1);
  EXPECT_EQ(counts.failures, 0);
  EXPECT_EQ(counts.captures, 2);
  EXPECT_EQ(counts.launches, 2 * 6);
}

// A Data layer hands each batch over in one of its prefetch buffers: the data and label
// blobs come back at a few device addresses in turn. The segments that read them (conv ..
// ip forward, the loss's backward) keep a graph per address and replay them from the
// second round of the ring on.
TEST_F(GpuGraph, DataLayerBufferRingGetsAGraphPerBuffer) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/db";
  testing::WriteDatumLmdb(
      db, 24, 1, 6, 6, [](int i, int j) { return (i * 7 + j * 3) % 251; },
      [](int i) { return i % 3; });
  const std::string text = R"(
    name: "ring"
    layer { name: "data" type: "Data" top: "data" top: "label"
            transform_param { scale: 0.01 }
            data_param { source: ")" +
                           db + R"(" batch_size: 4 backend: LMDB } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
    layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
    layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
            inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
  )";
  Twins nets(text.c_str(), Phase::TRAIN);
  const int iterations = 20;
  TrainSideBySide(nets, iterations, [](Net*, int) {});
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.forward_segments, 1);   // conv .. ip
  EXPECT_EQ(counts.backward_segments, 1);  // loss .. conv
  EXPECT_EQ(counts.failures, 0);
  // The batches come in a ring of a few buffers: a graph for each in both segments, and
  // most passes replay one. (One graph per segment, dropped at every new address, would
  // never be launched.)
  EXPECT_GE(counts.captures, 4);
  EXPECT_LE(counts.captures, 2 * 8);
  EXPECT_GE(counts.launches, iterations);
}

// Embed checks its ids on the device, so it is captured with the layers after it; a bad
// id in a replayed pass is still reported (Layer::GraphLaunched): at the next pass when the
// loss is not read back, at once when it is.
TEST_F(GpuGraph, EmbedIsCapturedAndStillReportsBadIds) {
  const char* text = R"(
    name: "embed_graph"
    layer { name: "ids" type: "Input" top: "ids" input_param { shape { dim: 4 dim: 3 } } }
    layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 4 } } }
    layer { name: "embed" type: "Embed" bottom: "ids" top: "embed"
            embed_param { input_dim: 11 num_output: 5 weight_filler { type: "gaussian" }
                          bias_filler { type: "gaussian" } } }
    layer { name: "ip" type: "InnerProduct" bottom: "embed" top: "ip"
            inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
  )";
  auto fill = [](Net* net, int pass, int bad_position) {
    Blob* ids = net->blob_by_name("ids").get();
    for (int i = 0; i < ids->count(); ++i)
      ids->mutable_cpu_data()[i] = static_cast<float>((i * 7 + pass) % 11);
    if (bad_position >= 0) ids->mutable_cpu_data()[bad_position] = 11;
    Blob* label = net->blob_by_name("label").get();
    for (int i = 0; i < label->count(); ++i) label->mutable_cpu_data()[i] = (i + pass) % 3;
  };
  Twins nets(text, Phase::TRAIN);
  TrainSideBySide(nets, 5, [&](Net* net, int iter) { fill(net, iter, -1); });
  NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.forward_layers, 2);   // embed, ip
  EXPECT_EQ(counts.backward_layers, 3);  // loss, ip, embed
  EXPECT_EQ(counts.failures, 0);
  EXPECT_EQ(counts.launches, 2 * 4);  // passes 2 to 5, forward and backward

  Net* net = nets.graphed.get();
  const std::string earlier =
      "index 11 (at position 7 of the bottom 4 3 (12), in an earlier batch) is out of range "
      "[0, 11)";
  Context::set_loss_readback(false);
  fill(net, 5, 7);
  net->ForwardBackward();  // replayed; nothing waits for the ids
  EXPECT_EQ(CountsOf(*net).launches, counts.launches + 2);
  fill(net, 6, -1);
  EXPECT_ERROR_WITH(net->Forward(), earlier);
  Context::set_loss_readback(true);
  fill(net, 7, 7);
  counts = CountsOf(*net);
  EXPECT_ERROR_WITH(net->Forward(), "(at position 7 of the bottom 4 3 (12)) is out");
  EXPECT_EQ(CountsOf(*net).launches, counts.launches + 1);
  fill(net, 8, -1);
  EXPECT_NO_THROW(net->Forward());
}

TEST_F(GpuGraph, FailedCaptureIsReportedAndRunsEagerly) {
  const char* text = R"(
    name: "peek"
    layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 } } }
    layer { name: "relu" type: "ReLU" bottom: "data" top: "a" }
    layer { name: "peek" type: "HostPeek" bottom: "a" top: "b" }
    layer { name: "abs" type: "AbsVal" bottom: "b" top: "c" }
  )";
  Twins nets(text, Phase::TEST);
  for (int pass = 0; pass < 4; ++pass) {
    FillInputs(nets.graphed.get(), pass, 2);
    FillInputs(nets.eager.get(), pass, 2);
    nets.graphed->Forward();
    nets.eager->Forward();
    ExpectSameBlobs(*nets.graphed, *nets.eager, "pass " + std::to_string(pass), false);
    auto* peek = dynamic_cast<HostPeekLayer*>(nets.graphed->layer_by_name("peek").get());
    EXPECT_EQ(peek->last_seen, nets.eager->blob_by_name("b")->cpu_data()[0]);
  }
  const NetGraphs::Counts counts = CountsOf(*nets.graphed);
  EXPECT_EQ(counts.forward_segments, 1);
  EXPECT_EQ(counts.failures, 1);
  EXPECT_EQ(counts.captures, 0);
  EXPECT_EQ(counts.launches, 0);
}
#endif  // CREMA_WITH_CUDA

TEST_F(GpuGraph, SwitchedOffNetNeverCaptures) {
  Twins nets(kTestNet, Phase::TEST);
  for (int pass = 0; pass < 3; ++pass) {
    FillInputs(nets.eager.get(), pass, 5);
    nets.eager->Forward();
  }
  EXPECT_EQ(nets.eager->graph_summary(), "");
}

}  // namespace
}  // namespace crema
