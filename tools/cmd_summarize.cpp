// `crema summarize`: the layer table of a net (top shapes, learnable parameters, forward
// FLOPs) and its totals, from the prototxt alone (random weights from the fillers).
#include <gflags/gflags.h>

#include <iostream>
#include <sstream>

#include "crema/net.hpp"
#include "crema/net_summary.hpp"
#include "tools/command.hpp"

// Shared with the brew commands (tools/cmd_core.cpp defines them).
DECLARE_string(model);
DECLARE_string(phase);
DECLARE_int32(level);
DECLARE_string(stage);

namespace crema {
namespace tools {
namespace {

int RunSummarize(const std::vector<std::string>& args) {
  CREMA_REQUIRE(!FLAGS_model.empty(),
                "crema summarize needs --model (see `crema summarize --help`)");
  CREMA_REQUIRE(args.empty(), "crema summarize takes no positional arguments; got '"
                                  << args[0] << "' (the net goes in --model)");
  Phase phase = Phase::TEST;
  if (FLAGS_phase == "TRAIN") {
    phase = Phase::TRAIN;
  } else if (!FLAGS_phase.empty() && FLAGS_phase != "TEST") {
    CREMA_THROW("--phase must be TRAIN or TEST, got '" << FLAGS_phase << "'");
  }
  std::vector<std::string> stages;
  std::stringstream stage_list(FLAGS_stage);
  for (std::string stage; std::getline(stage_list, stage, ',');)
    if (!stage.empty()) stages.push_back(stage);

  Net net(FLAGS_model, phase, FLAGS_level, stages);
  std::cout << FormatNetSummary(net, Summarize(net));
  return 0;
}

REGISTER_COMMAND(
    "summarize", "print a net's layers, shapes, parameter counts and FLOPs",
    "crema summarize --model NET.prototxt [--phase TEST|TRAIN] [--level N] [--stage a,b]\n\n"
    "Builds the net (random weights from its fillers; nothing is run) and prints one line\n"
    "per layer: name, type, top shapes, learnable parameters it owns and forward MFLOPs;\n"
    "then the totals: learnable parameters (shared blobs counted once; blobs with lr_mult 0,\n"
    "such as BatchNorm statistics, listed apart as frozen), forward GFLOPs (2 x multiply-adds\n"
    "of the layers that report them: convolutions, inner products, recurrent cells...),\n"
    "activation memory and parameter memory. --phase defaults to TEST. A net whose data\n"
    "layers read databases needs those databases; deploy nets (Input layers) need nothing.",
    RunSummarize);

}  // namespace
}  // namespace tools
}  // namespace crema
