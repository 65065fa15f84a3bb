// The cuDNN graph API's search against the real cuDNN library, without a GPU
// (cudnn::PlanDeviceless, src/cudnn_adapter.hpp). cuDNN >= 9.8 builds heuristics and
// execution plans for a GPU given as a device-property description, so on any machine with
// the CUDA toolkit these tests build, for every convolution and deconvolution of the model
// zoo in FP32, TF32, FP16 and BF16, the graphs crema would build on that GPU (the three
// directions a training step uses), ask cuDNN's heuristics, apply crema's precision rules
// and build the plans. Each must leave at least one engine the search would time. The
// emulated GPU of tests/cuda_emu checks the same code against a reading of the documentation;
// these checks are against the library itself. Execution needs a device (test_gpu_cudnn_graph).
//
// tests/data/cudnn_device_h100.json describes an H100 SXM5 80GB in cuDNN's JSON form (keys
// as cuDNN 9.19 reads them; values from NVIDIA's published figures for that GPU: 132 SMs,
// compute capability 9.0, 50 MiB L2, 227 KiB shared memory per block). On a device,
// `crema device_query --cudnn_json FILE` writes cuDNN's own description of it.
//
// Skipped, with a message, in builds without cuDNN >= 9.8 and on the CUDA emulator (whose
// cuDNN stand-in does not describe devices).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/io.hpp"
#include "crema/net.hpp"

#include "tests/gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "layers/convolution.hpp"
#include "layers/deconvolution.hpp"
#include "src/cudnn_adapter.hpp"
#endif

namespace crema {
namespace {

#ifdef CREMA_WITH_CUDA
using namespace gputest;

#define REQUIRE_DEVICELESS_CUDNN()                                                          \
  do {                                                                                      \
    if (kOnEmulator) GTEST_SKIP() << "the CUDA emulator's cuDNN does not describe devices"; \
    if (!cudnn::DevicelessPlanningAvailable())                                              \
      GTEST_SKIP() << "deviceless planning needs cuDNN >= 9.8 (this build: "                \
                   << cudnn::VersionString() << ")";                                        \
  } while (0)

#ifdef CREMA_TESTS_ON_EMULATOR
constexpr bool kOnEmulator = true;
#else
constexpr bool kOnEmulator = false;
#endif

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) CREMA_THROW("cannot read " << path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string& H100() {
  static const std::string json =
      ReadText(std::string(CREMA_SOURCE_DIR) + "/tests/data/cudnn_device_h100.json");
  return json;
}

// A 2-D convolution keeping its size: k x k kernel, padding k / 2, stride and dilation 1.
cudnn::ConvShape SameSizeShape(int num, int channels, int num_output, int size, int k,
                               Precision precision,
                               cudnn::ConvLayout layout = cudnn::ConvLayout::NCHW) {
  cudnn::ConvShape shape;
  shape.num = num;
  shape.channels = channels;
  shape.num_output = num_output;
  shape.input = shape.output = {size, size};
  shape.kernel = {k, k};
  shape.pad = {k / 2, k / 2};
  shape.stride = shape.dilation = {1, 1};
  shape.precision = precision;
  shape.layout = layout;
  return shape;
}

// One direction of one geometry, as ConvolutionOp::Setup searches it.
struct Planned {
  cudnn::ConvShape shape;
  cudnn::Direction direction;
  bool accumulate;
  std::string Name() const {
    static const char* const names[] = {"forward", "backward-data", "backward-filter"};
    return shape.ToString() + " " + names[static_cast<int>(direction)] +
           (accumulate ? " accumulate" : "");
  }
};

// The slots Setup searches: forward, backward data, and backward filter accumulating in
// fp32/TF32 (Caffe adds to the gradient) or overwriting in 16 bits (it is widened after).
std::vector<Planned> Slots(const cudnn::ConvShape& shape) {
  const bool half = IsHalfPrecision(shape.precision);
  return {{shape, cudnn::Direction::kForward, false},
          {shape, cudnn::Direction::kBackwardData, false},
          {shape, cudnn::Direction::kBackwardFilter, !half}};
}

// The deploy net of a zoo model, built on the CPU with constant fillers (nothing is run).
std::unique_ptr<Net> ZooNet(const std::string& dir) {
  pb::NetParameter param;
  ReadNetParamsFromTextFile(std::string(CREMA_SOURCE_DIR) + "/models/" + dir + "/deploy.prototxt",
                            &param);
  param.mutable_state()->set_phase(pb::TEST);
  for (pb::LayerParameter& layer : *param.mutable_layer()) {
    pb::ConvolutionParameter* conv = layer.mutable_convolution_param();
    if (conv->has_weight_filler()) conv->mutable_weight_filler()->set_type("constant");
    if (conv->has_bias_filler()) conv->mutable_bias_filler()->set_type("constant");
  }
  return std::make_unique<Net>(param);
}

// The cuDNN geometries of a net's convolutions and deconvolutions under `precision`.
std::vector<cudnn::ConvShape> NetShapes(const Net& net, Precision precision) {
  std::vector<cudnn::ConvShape> shapes;
  for (const auto& layer : net.layers()) {
    if (auto* conv = dynamic_cast<const ConvolutionLayer*>(layer.get()))
      shapes.push_back(conv->CudnnShape(precision));
    else if (auto* deconv = dynamic_cast<const DeconvolutionLayer*>(layer.get()))
      shapes.push_back(deconv->CudnnShape(precision));
  }
  return shapes;
}

// Notes an engine may carry under each precision (cudnn_adapter.hpp's promises, restated
// from the outside: FP32 is exact fp32 arithmetic, deterministic, no transforms).
bool NotesKeepPromises(const std::string& notes, Precision precision) {
  for (const char* never : {"down-convert", "reduced-precision", "nondeterministic"})
    if (notes.find(never) != std::string::npos) return false;
  if (precision != Precision::FP32) return true;
  for (const char* not_fp32 : {"tensor-core", "fft", "winograd"})
    if (notes.find(not_fp32) != std::string::npos) return false;
  return true;
}

TEST(CudnnDeviceless, EveryZooConvolutionHasAnEngineOnH100) {
  REQUIRE_DEVICELESS_CUDNN();
  const std::vector<std::string> zoo = {
      "lenet",    "cifar10_quick",     "cifar10_full",  "vgg_cifar",
      "alexnet",  "caffenet",          "googlenet",     "vgg16",
      "resnet50", "resnet50_features", "squeezenet1.1", "mobilenet_v1"};
  const Precision precisions[] = {Precision::FP32, Precision::TF32, Precision::FP16,
                                  Precision::BF16};
  std::set<std::string> seen;
  int planned = 0, from_fallback = 0;
  // Per precision: candidates, directions planned, and how often cuDNN's best-ranked
  // configuration is itself a candidate (the rules and the workspace limit leave it in).
  std::map<std::string, int> candidates_per_precision, directions, top_ranked_kept;
  for (const std::string& dir : zoo) {
    std::unique_ptr<Net> net = ZooNet(dir);
    for (Precision precision : precisions) {
      for (const cudnn::ConvShape& shape : NetShapes(*net, precision)) {
        for (const Planned& p : Slots(shape)) {
          if (!seen.insert(p.Name()).second) continue;  // the same geometry, planned once
          ++planned;
          std::vector<cudnn::EngineReport> report;
          ASSERT_NO_THROW(report =
                              cudnn::PlanDeviceless(p.shape, p.direction, p.accumulate, H100()))
              << dir << ": " << p.Name();
          int candidates = 0;
          for (const cudnn::EngineReport& e : report) {
            if (!e.candidate) continue;
            ++candidates;
            EXPECT_TRUE(NotesKeepPromises(e.notes, precision))
                << dir << ": " << p.Name() << ": engine " << e.engine << " (" << e.notes << ")";
            EXPECT_TRUE(e.built && e.allowed && e.workspace >= 0);
          }
          EXPECT_GT(candidates, 0)
              << dir << ": " << p.Name() << ": no engine the search could time";
          if (!report.empty() && report.back().fallback_list) ++from_fallback;
          const std::string name = PrecisionName(precision);
          candidates_per_precision[name] += candidates;
          directions[name] += 1;
          top_ranked_kept[name] += !report.empty() && report[0].position == 0 &&
                                   !report[0].fallback_list && report[0].candidate;
        }
      }
    }
  }
  EXPECT_GT(planned, 300);  // every zoo geometry: a few hundred directions in all
  std::ostringstream summary;
  for (const auto& [name, n] : candidates_per_precision)
    summary << "\n  " << name << ": " << directions[name] << " directions, " << n
            << " candidates; cuDNN's best-ranked configuration kept in " << top_ranked_kept[name];
  std::printf(
      "[ deviceless ] %d geometry-directions planned for an H100, %d from cuDNN's "
      "FALLBACK list%s\n",
      planned, from_fallback, summary.str().c_str());
}

// FP32's exact engines are few; TF32 and 16 bits open the tensor-core engines, which cuDNN
// ranks first for a ResNet-50 1x1 convolution on an H100.
TEST(CudnnDeviceless, PrecisionRulesShapeTheCandidates) {
  REQUIRE_DEVICELESS_CUDNN();
  auto candidate_notes = [&](Precision precision, cudnn::ConvLayout layout) {
    const cudnn::ConvShape shape = SameSizeShape(32, 256, 64, 56, 1, precision, layout);
    std::vector<std::string> notes;
    for (const cudnn::EngineReport& e :
         cudnn::PlanDeviceless(shape, cudnn::Direction::kForward, false, H100()))
      if (e.candidate) notes.push_back(e.notes);
    return notes;
  };
  const auto fp32 = candidate_notes(Precision::FP32, cudnn::ConvLayout::NCHW);
  ASSERT_FALSE(fp32.empty());
  for (const std::string& n : fp32) EXPECT_EQ(n.find("tensor-core"), std::string::npos) << n;
  for (Precision p : {Precision::TF32, Precision::FP16}) {
    const auto notes = candidate_notes(
        p, p == Precision::FP16 ? cudnn::ConvLayout::NHWC : cudnn::ConvLayout::NCHW);
    ASSERT_FALSE(notes.empty()) << PrecisionName(p);
    EXPECT_NE(notes.front().find("tensor-core"), std::string::npos)
        << PrecisionName(p) << ": best-ranked candidate has notes '" << notes.front() << "'";
  }
}

// The search never builds more plans per list than CREMA_CUDNN_MAX_ENGINES, and reports
// every configuration it looked at in list order.
TEST(CudnnDeviceless, ReportFollowsTheHeuristicsList) {
  REQUIRE_DEVICELESS_CUDNN();
  const cudnn::ConvShape shape = SameSizeShape(10, 64, 64, 56, 3, Precision::TF32);
  const auto report = cudnn::PlanDeviceless(shape, cudnn::Direction::kForward, false, H100());
  ASSERT_FALSE(report.empty());
  int tried[2] = {0, 0};  // plans tried per list (mode A, FALLBACK)
  for (size_t i = 0; i < report.size(); ++i) {
    const cudnn::EngineReport& e = report[i];
    if (i > 0 && e.fallback_list == report[i - 1].fallback_list)
      EXPECT_GT(e.position, report[i - 1].position);
    if (e.allowed) ++tried[e.fallback_list];
    EXPECT_EQ(e.built, e.workspace >= 0) << "position " << e.position;
    EXPECT_TRUE(e.allowed || !e.built) << "a forbidden engine was built: " << e.notes;
    EXPECT_TRUE(!e.candidate || e.built);
  }
  EXPECT_LE(tried[0], 10);  // CREMA_CUDNN_MAX_ENGINES' default
  EXPECT_LE(tried[1], 10);
}

TEST(CudnnDeviceless, MalformedDescriptionIsAClearError) {
  REQUIRE_DEVICELESS_CUDNN();
  const cudnn::ConvShape shape = SameSizeShape(1, 3, 8, 8, 3, Precision::FP32);
  try {
    cudnn::PlanDeviceless(shape, cudnn::Direction::kForward, false, "{\"deviceVer\": 900}");
    FAIL() << "an incomplete description was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device properties"), std::string::npos) << e.what();
  }
}

// On a device: cuDNN's description of it plans as the device does, i.e. the engine the
// on-device search chose (and timed) is among the deviceless candidates.
TEST(GpuCudnnDeviceless, ThisDevicesDescriptionPlansAsTheDevice) {
  REQUIRE_CUDNN();
  REQUIRE_DEVICELESS_CUDNN();
  const std::string json = cudnn::DevicePropertiesJson(CudaCurrentDevice());
  EXPECT_NE(json.find("multiProcessorCount"), std::string::npos) << json;
  for (int k : {1, 3}) {
    for (Precision precision : {Precision::FP32, Precision::FP16}) {
      const cudnn::ConvShape shape = SameSizeShape(
          8, 64, 64, 28, k, precision,
          IsHalfPrecision(precision) ? cudnn::ConvLayout::NHWC : cudnn::ConvLayout::NCHW);
      cudnn::ConvolutionOp op;
      op.Setup(shape);
      const std::string chosen = op.Description();  // "fwd engine N (...), ..."
      const size_t at = chosen.find("fwd engine ");
      ASSERT_NE(at, std::string::npos) << chosen;
      const int64_t engine = std::stoll(chosen.substr(at + 11));
      bool listed = false;
      for (const cudnn::EngineReport& e :
           cudnn::PlanDeviceless(shape, cudnn::Direction::kForward, false, json))
        listed = listed || (e.candidate && e.engine == engine);
      EXPECT_TRUE(listed) << shape.ToString() << ": the device chose engine " << engine
                          << ", not a deviceless candidate";
    }
  }
}

#endif  // CREMA_WITH_CUDA

}  // namespace
}  // namespace crema
