// 16-bit copies of activations handed from a fused convolution to the FP16/BF16 convolutions
// that read its output (include/crema/activation_copies.hpp). The copies must change nothing:
// a net with them gives bit for bit what it gives without them (CREMA_ACTIVATION_COPIES=0),
// on every route that writes or reads one; they must be used where they can be, and never
// once the data changed after they were written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/activation_copies.hpp"
#include "crema/net.hpp"
#include "src/net_graph.hpp"
#include "tests/gpu_test_util.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using gputest::GpuAvailable;
using testing::NetParam;

// data -> c1 (3x3) + bn1 + scale1 + relu1            chain 1: writes c1 (and its copy)
// c1 -> c2 (1x1) + bn2 + scale2, s = relu(c2 + c1)   chain 2: reads c1's copy, writes s's
// s -> c3 (3x3) + relu3                               chain 3: reads s's copy, writes c3's
// c3 -> c4 (1x1)                                      no chain: reads c3's copy
// `channels` for every convolution; `between` is put after relu1 (a layer that breaks the
// hand-over of c1).
std::string CopyNet(const std::string& precision, int channels, int side,
                    const std::string& between = "") {
  const std::string k = std::to_string(channels), n = std::to_string(side);
  auto conv = [&](const std::string& name, const std::string& bottom, const std::string& geometry) {
    return "layer { name: '" + name + "' type: 'Convolution' bottom: '" + bottom + "' top: '" +
           name + "' convolution_param { num_output: " + k + " " + geometry +
           " weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: 'gaussian' std: 0.3 "
           "} } }\n";
  };
  auto bn_scale = [](const std::string& i, const std::string& blob) {
    return "layer { name: 'bn" + i + "' type: 'BatchNorm' bottom: '" + blob + "' top: '" + blob +
           "' }\nlayer { name: 'scale" + i + "' type: 'Scale' bottom: '" + blob + "' top: '" +
           blob + "' scale_param { bias_term: true } }\n";
  };
  auto relu = [](const std::string& i, const std::string& blob) {
    return "layer { name: 'relu" + i + "' type: 'ReLU' bottom: '" + blob + "' top: '" + blob +
           "' }\n";
  };
  return "name: 'copies' state { phase: TEST } precision { math: " + precision + " }\n" +
         "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: " + k +
         " dim: " + n + " dim: " + n + " } } }\n" + conv("c1", "data", "kernel_size: 3 pad: 1") +
         bn_scale("1", "c1") + relu("1", "c1") + between + conv("c2", "c1", "kernel_size: 1") +
         bn_scale("2", "c2") +
         "layer { name: 'add' type: 'Eltwise' bottom: 'c2' bottom: 'c1' top: 's' }\n" +
         relu("s", "s") + conv("c3", "s", "kernel_size: 3 pad: 1") + relu("3", "c3") +
         conv("c4", "c3", "kernel_size: 1");
}

// Stored statistics for every BatchNorm, parameters for every Scale, a random input.
void Prepare(Net* net) {
  for (const auto& layer : net->layers()) {
    const std::string type = layer->type();
    if (type == "BatchNorm") {
      const auto& bn = layer->blobs();
      for (int i = 0; i < bn[0]->count(); ++i) {
        bn[0]->mutable_cpu_data()[i] = 0.2f * (i % 5) - 0.3f;
        bn[1]->mutable_cpu_data()[i] = 0.5f + 0.3f * (i % 3);
      }
      bn[2]->mutable_cpu_data()[0] = 1.f;
    } else if (type == "Scale") {
      for (auto& blob : layer->blobs())
        for (int i = 0; i < blob->count(); ++i)
          blob->mutable_cpu_data()[i] = 0.3f * ((i * 7) % 5) + 0.6f;
    }
  }
  gputest::FillBlob(net->input_blobs()[0], gputest::Gaussian(), 11);
}

const std::vector<std::string> kOutputs = {"c1", "s", "c3", "c4"};

class GpuActivationCopies : public gputest::GpuTest {
 protected:
  void TearDown() override {
    unsetenv("CREMA_ACTIVATION_COPIES");
    unsetenv("CREMA_CONV_1X1_GEMM");
    gputest::GpuTest::TearDown();
  }

  // Two copies of `text` with the same parameters and input: `with` uses activation copies,
  // `without` not. Graphs off: every pass runs the layers' host code (the counts below count
  // passes; a replayed CUDA graph runs none). The 1x1 convolutions go through cuDNN unless
  // CREMA_CONV_1X1_GEMM is set (timed, either route could win, and which copies can be
  // handed over depends on it).
  void MakeNets(const std::string& text) {
    setenv("CREMA_CONV_1X1_GEMM", "0", /*overwrite=*/0);
    unsetenv("CREMA_ACTIVATION_COPIES");
    with_.reset(new Net(NetParam(text)));
    setenv("CREMA_ACTIVATION_COPIES", "0", 1);
    without_.reset(new Net(NetParam(text)));
    unsetenv("CREMA_ACTIVATION_COPIES");
    ASSERT_TRUE(with_->mixed_precision()->copies->enabled());
    ASSERT_FALSE(without_->mixed_precision()->copies->enabled());
    Prepare(with_.get());
    for (size_t i = 0; i < with_->params().size(); ++i)
      without_->params()[i]->CopyFrom(*with_->params()[i]);
    without_->input_blobs()[0]->CopyFrom(*with_->input_blobs()[0]);
    with_->set_cuda_graphs(false);
    without_->set_cuda_graphs(false);
    Context::set_mode(Mode::GPU);
  }

  // Both nets' outputs must agree bit for bit.
  void ExpectSameOutputs() {
    for (const std::string& name : kOutputs) {
      SCOPED_TRACE("blob '" + name + "'");
      const std::vector<float> a = testing::Values(*with_->blob_by_name(name));
      const std::vector<float> b = testing::Values(*without_->blob_by_name(name));
      ASSERT_EQ(a.size(), b.size());
      int differ = 0;
      for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
      EXPECT_EQ(differ, 0) << "of " << a.size() << " values";
    }
  }

  // `with`'s outputs against the CPU's (fp32): relative L2 error at most `tolerance` (the
  // 16-bit path's own error, which the copies leave as it is). Runs `without` on the CPU.
  // (Measured on the emulator: FP16 <= 6.4e-4, BF16 <= 5.3e-3.)
  void ExpectNearCpu(float tolerance) {
    std::vector<std::vector<float>> gpu;
    for (const std::string& name : kOutputs)
      gpu.push_back(testing::Values(*with_->blob_by_name(name)));
    Context::set_mode(Mode::CPU);
    without_->Forward();
    Context::set_mode(Mode::GPU);
    for (size_t k = 0; k < kOutputs.size(); ++k) {
      SCOPED_TRACE("blob '" + kOutputs[k] + "' against the CPU");
      const std::vector<float> cpu = testing::Values(*without_->blob_by_name(kOutputs[k]));
      ASSERT_EQ(cpu.size(), gpu[k].size());
      double error = 0, size = 0;
      for (size_t i = 0; i < cpu.size(); ++i) {
        error += (gpu[k][i] - cpu[i]) * static_cast<double>(gpu[k][i] - cpu[i]);
        size += cpu[i] * static_cast<double>(cpu[i]);
      }
      EXPECT_LE(std::sqrt(error / size), tolerance);
    }
  }

  const ActivationCopies::Counts& counts() const {
    return with_->mixed_precision()->copies->counts();
  }

  std::unique_ptr<Net> with_, without_;
};

// Every precision, both 1x1 routes, the gathered (few channels) and the tiled (>= 32
// channels and positions) passes: same outputs, and every copy handed over. cuDNN readers
// take NHWC copies, the 1x1 GEMMs NCHW ones; cuDNN writers make them in the pass that
// widens their output, the GEMMs in their epilogue pass.
TEST_F(GpuActivationCopies, SameOutputsAndCopiesUsedOnEveryRoute) {
  REQUIRE_GPU();
  for (const char* math : {"FP16", "BF16"})
    for (const char* gemm : {"0", "1"})
      for (int channels : {6, 40}) {
        SCOPED_TRACE(std::string(math) + " CREMA_CONV_1X1_GEMM=" + gemm + " channels " +
                     std::to_string(channels));
        setenv("CREMA_CONV_1X1_GEMM", gemm, 1);
        MakeNets(CopyNet(math, channels, 6));
        ASSERT_EQ(with_->fused_chains().size(), 3u);
        const int passes = 3;
        for (int pass = 0; pass < passes; ++pass) {
          with_->Forward();
          without_->Forward();
          ExpectSameOutputs();
        }
        // The first pass asks (3 reads miss), every later one hands over 3 copies; c1
        // rounds the net's input itself in every pass (no layer produces it).
        EXPECT_EQ(counts().hits, 3 * (passes - 1));
        EXPECT_EQ(counts().produced, 3 * (passes - 1));
        EXPECT_EQ(counts().misses, 3 + passes);
        EXPECT_EQ(counts().abandoned, 0);
        // Three copies of 2 x channels x 6 x 6 16-bit values.
        EXPECT_EQ(with_->mixed_precision()->copies->bytes(), 3 * 2 * channels * 36 * 2);
        EXPECT_EQ(without_->mixed_precision()->copies->counts().hits, 0);
        ExpectNearCpu(std::string(math) == "FP16" ? 2e-3f : 1.5e-2f);
      }
}

// Under CUDA graphs: the first pass asks, the second is captured with the hand-overs (its
// host code runs once, at the capture), later passes replay it. The capture must succeed (no
// allocation inside it) and the outputs stay those of the net without copies.
TEST_F(GpuActivationCopies, SameOutputsUnderCudaGraphs) {
  REQUIRE_GPU();
  MakeNets(CopyNet("BF16", 40, 6));
  with_->set_cuda_graphs(true);
  without_->set_cuda_graphs(true);
  for (int pass = 0; pass < 4; ++pass) {
    gputest::FillBlob(with_->input_blobs()[0], gputest::Gaussian(), 20 + pass);
    without_->input_blobs()[0]->CopyFrom(*with_->input_blobs()[0]);
    with_->Forward();
    without_->Forward();
    ExpectSameOutputs();
  }
#ifdef CREMA_WITH_CUDA  // (a CPU-only build skips this test above)
  ASSERT_TRUE(with_->cuda_graphs());
  const NetGraphs::Counts graphs = with_->cuda_graphs()->counts();
  EXPECT_GE(graphs.captures, 1);
  EXPECT_GE(graphs.launches, 3);
  EXPECT_EQ(graphs.failures, 0);
#endif
  EXPECT_EQ(counts().hits, 3);  // the captured pass
}

// Three spatial axes: NCHW copies, written by the epilogue pass after the widening.
TEST_F(GpuActivationCopies, ThreeSpatialAxesUseNchwCopies) {
  REQUIRE_GPU();
  const std::string text =
      "name: 'v' state { phase: TEST } precision { math: FP16 }\n"
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 "
      "dim: 4 dim: 4 dim: 4 } } }\n"
      "layer { name: 'c1' type: 'Convolution' bottom: 'data' top: 'c1' convolution_param { "
      "num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
      "layer { name: 'relu1' type: 'ReLU' bottom: 'c1' top: 'c1' }\n"
      "layer { name: 'c2' type: 'Convolution' bottom: 'c1' top: 'c2' convolution_param { "
      "num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.3 } } }\n";
  MakeNets(text);
  ASSERT_EQ(with_->fused_chains().size(), 1u);
  for (int pass = 0; pass < 3; ++pass) {
    with_->Forward();
    without_->Forward();
    for (const char* name : {"c1", "c2"})
      EXPECT_EQ(testing::Values(*with_->blob_by_name(name)),
                testing::Values(*without_->blob_by_name(name)))
          << name;
  }
  EXPECT_EQ(counts().hits, 2);
}

// A copy is never read once its data changed: here c1 is changed on the host between the
// full pass and a pass from c2 on; c2 must see the change (and miss the copy).
TEST_F(GpuActivationCopies, ChangedDataIsNotReadFromTheCopy) {
  REQUIRE_GPU();
  MakeNets(CopyNet("FP16", 40, 6));
  for (int pass = 0; pass < 2; ++pass) {
    with_->Forward();
    without_->Forward();
  }
  const int64_t hits = counts().hits;
  int c2 = -1;
  for (int i = 0; i < with_->num_layers(); ++i)
    if (with_->layer_names()[i] == "c2") c2 = i;
  ASSERT_GE(c2, 0);
  for (Net* net : {with_.get(), without_.get()}) {
    float* c1 = net->blob_by_name("c1")->mutable_cpu_data();
    for (int i = 0; i < 50; ++i) c1[i * 7] += 1.5f;
    net->ForwardFrom(c2);
  }
  ExpectSameOutputs();
  EXPECT_EQ(counts().hits, hits + 2);  // s and c3's copies, written in this pass, are used
}

// A layer that changes c1 in place after its chain (a Power layer, not fused) makes c1's
// copy stale: c2 rounds c1 itself, and after two stale copies the request is dropped.
TEST_F(GpuActivationCopies, StaleCopiesAreDropped) {
  REQUIRE_GPU();
  MakeNets(CopyNet("FP16", 6, 6,
                   "layer { name: 'shift' type: 'Power' bottom: 'c1' top: 'c1' power_param { "
                   "shift: 0.25 } }\n"));
  for (int pass = 0; pass < 4; ++pass) {
    with_->Forward();
    without_->Forward();
    ExpectSameOutputs();
  }
  EXPECT_EQ(counts().abandoned, 1);
  // Passes 2 and 3 wrote c1's copy and found it stale; pass 4 no longer writes it.
  EXPECT_EQ(counts().hits, 2 * 3);
  EXPECT_EQ(counts().produced, 2 * 3 + 2);
}

// A net that trains fuses no convolution: nothing offers copies, so none is requested and
// no memory is spent.
TEST_F(GpuActivationCopies, TrainingNetsNeitherWriteNorRequest) {
  REQUIRE_GPU();
  std::string text = CopyNet("FP16", 6, 6);
  text.replace(text.find("phase: TEST"), 11, "phase: TRAIN");
  MakeNets(text + "force_backward: true\n");  // every layer needs a backward pass
  EXPECT_TRUE(with_->fused_chains().empty());
  with_->Forward();
  with_->Forward();
  EXPECT_EQ(counts().produced, 0);
  EXPECT_EQ(counts().hits, 0);
  EXPECT_EQ(counts().requests, 0);
  EXPECT_EQ(with_->mixed_precision()->copies->bytes(), 0);
}

}  // namespace
}  // namespace crema
