// `crema extract_features`: runs a net and saves named blobs per item (see
// crema/image_tools.hpp).
#include <gflags/gflags.h>

#include <iostream>
#include <sstream>

#include "crema/image_tools.hpp"
#include "crema/net.hpp"
#include "tools/command.hpp"
#ifdef CREMA_WITH_CUDA
#include <cuda_runtime.h>
#endif

DECLARE_string(model);
DECLARE_string(weights);
DECLARE_string(gpu);
DECLARE_string(phase);
DECLARE_int32(iterations);
DEFINE_string(blobs, "", "extract_features: the blobs to save, comma-separated");
DEFINE_string(output, "", "extract_features: one output per blob, comma-separated");
DEFINE_string(format, "",
              "extract_features: lmdb, npy or csv (default: by the output's extension, else "
              "lmdb)");

namespace crema {
namespace tools {
namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ','))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

void SelectDevice() {
  if (FLAGS_gpu.empty()) {
    Context::set_mode(Mode::CPU);
    return;
  }
  CREMA_REQUIRE(Context::has_gpu_support(),
                "--gpu=" << FLAGS_gpu
                         << " asks for a GPU, but this crema was built without CUDA; drop "
                            "--gpu to run on the CPU");
  char* end = nullptr;
  const long id = std::strtol(FLAGS_gpu.c_str(), &end, 10);
  CREMA_REQUIRE(*end == '\0' && id >= 0, "--gpu: give one device id, got '" << FLAGS_gpu << "'");
#ifdef CREMA_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
  CREMA_REQUIRE(id < count, "--gpu=" << id << ": this machine has " << count << " CUDA device(s)");
  cudaSetDevice(static_cast<int>(id));
#endif
  Context::set_device(static_cast<int>(id));
  Context::set_mode(Mode::GPU);
}

int RunExtractFeatures(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.empty(), "extract_features takes no positional arguments (got '"
                                  << args[0] << "'); see `crema help extract_features`");
  CREMA_REQUIRE(!FLAGS_model.empty(), "extract_features needs --model NET.prototxt");
  CREMA_REQUIRE(!FLAGS_blobs.empty(), "extract_features needs --blobs name[,name...]");
  CREMA_REQUIRE(!FLAGS_output.empty(), "extract_features needs --output path[,path...]");
  const std::vector<std::string> blobs = SplitList(FLAGS_blobs);
  const std::vector<std::string> outputs = SplitList(FLAGS_output);
  CREMA_REQUIRE(blobs.size() == outputs.size(),
                "--blobs names " << blobs.size() << " blob(s) but --output " << outputs.size()
                                 << " path(s); give one per blob");
  const FeatureFormat format = ParseFeatureFormat(FLAGS_format, outputs[0]);
  Phase phase = Phase::TEST;
  if (FLAGS_phase == "TRAIN")
    phase = Phase::TRAIN;
  else
    CREMA_REQUIRE(FLAGS_phase.empty() || FLAGS_phase == "TEST",
                  "--phase must be TRAIN or TEST, got '" << FLAGS_phase << "'");
  SelectDevice();
  Net net(FLAGS_model, phase);
  if (!FLAGS_weights.empty())
    net.CopyTrainedLayersFrom(FLAGS_weights);
  else
    LOG(WARNING) << "No --weights: extracting with the fillers' initial weights";
  const int64_t items = ExtractFeatures(&net, blobs, outputs, FLAGS_iterations, format);
  for (size_t i = 0; i < blobs.size(); ++i)
    std::cout << "Extracted " << items << " items of blob " << blobs[i] << " to " << outputs[i]
              << "\n";
  return 0;
}

}  // namespace

REGISTER_COMMAND(
    "extract_features", "run a net and save the values of named blobs per item",
    "crema extract_features --model NET.prototxt [--weights W.caffemodel] --blobs ip1[,ip2]\n"
    "                       --iterations N --output out1[,out2] [--format lmdb|npy|csv]\n"
    "                       [--phase TEST|TRAIN] [--gpu ID]\n"
    "Runs the net (TEST phase by default) N times (--iterations, default 50) and saves every\n"
    "item (first axis) of each blob to its output:\n"
    "  lmdb  a Datum per item: float_data = its values, channels = their count, height =\n"
    "        width = 1, keys \"%010d\" (as Caffe's extract_features)\n"
    "  npy   one float32 array [N x batch, per-item dims...]\n"
    "  csv   one line of comma-separated values per item\n"
    "Without --format, outputs ending in .npy or .csv pick that format, others lmdb.",
    RunExtractFeatures);

}  // namespace tools
}  // namespace crema
