// `crema draw_net NET.prototxt OUT.{dot,png,svg,pdf}`: a Graphviz drawing of a net (see
// crema/image_tools.hpp).
#include <gflags/gflags.h>

#include <iostream>

#include "crema/image_tools.hpp"
#include "tools/command.hpp"

DECLARE_string(phase);
DEFINE_string(rankdir, "LR", "draw_net: graph direction, LR, TB, BT or RL");

namespace crema {
namespace tools {
namespace {

int RunDrawNet(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.size() == 2, "draw_net needs 2 arguments: NET.prototxt OUTPUT (got "
                                      << args.size() << "); see `crema help draw_net`");
  DrawNetOptions options;
  options.rankdir = FLAGS_rankdir;
  options.phase = FLAGS_phase.empty() ? "ALL" : FLAGS_phase;
  const std::string warning = DrawNet(args[0], args[1], options);
  if (!warning.empty()) LOG(WARNING) << warning;
  std::cout << "Drew " << args[0] << " to " << args[1] << std::endl;
  return 0;
}

}  // namespace

REGISTER_COMMAND(
    "draw_net", "draw a net as a Graphviz graph (.dot, or .png/.svg/.pdf through dot)",
    "crema draw_net NET.prototxt OUTPUT.{dot,png,svg,pdf} [--rankdir LR|TB|BT|RL]\n"
    "                [--phase TRAIN|TEST|ALL]\n"
    "Layers are boxes (name, type, kernel/stride/pad, num_output); blobs are octagons with\n"
    "their shapes, found by building the net with random weights (when it cannot be built,\n"
    "e.g. its LMDB is missing, the drawing has no shapes and a warning says why). In-place\n"
    "layers are green. --phase keeps the layers of one phase (default ALL: every layer).\n"
    "png, svg and pdf need Graphviz's `dot` (apt-get install graphviz).",
    RunDrawNet);

}  // namespace tools
}  // namespace crema
