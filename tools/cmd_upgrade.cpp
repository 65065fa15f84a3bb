// Upgrade commands: rewrite legacy (V0/V1, input-field, old solver enum) files in the
// current format, the way `upgrade_net_proto_*` did for Caffe.
#include <iostream>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/upgrade_proto.hpp"
#include "tools/command.hpp"

namespace crema {
namespace tools {
namespace {

void require_two(const std::vector<std::string>& args, const char* command) {
  CREMA_REQUIRE(args.size() == 2, "usage: crema " << command << " INPUT OUTPUT (got " << args.size()
                                                  << " argument(s))");
}

int UpgradeNetText(const std::vector<std::string>& args) {
  require_two(args, "upgrade_net_proto_text");
  pb::NetParameter net;
  ReadProtoFromTextFile(args[0], &net);
  const bool changed = UpgradeNetAsNeeded(args[0], &net);
  WriteProtoToTextFile(net, args[1]);
  std::cout << (changed ? "Upgraded " : "Already current; copied ") << args[0] << " -> " << args[1]
            << "\n";
  return 0;
}

int UpgradeNetBinary(const std::vector<std::string>& args) {
  require_two(args, "upgrade_net_proto_binary");
  pb::NetParameter net;
  ReadProtoFromBinaryFile(args[0], &net);
  const bool changed = UpgradeNetAsNeeded(args[0], &net);
  WriteProtoToBinaryFile(net, args[1]);
  std::cout << (changed ? "Upgraded " : "Already current; copied ") << args[0] << " -> " << args[1]
            << "\n";
  return 0;
}

int UpgradeSolverText(const std::vector<std::string>& args) {
  require_two(args, "upgrade_solver_proto_text");
  pb::SolverParameter solver;
  ReadProtoFromTextFile(args[0], &solver);
  const bool changed = UpgradeSolverAsNeeded(args[0], &solver);
  WriteProtoToTextFile(solver, args[1]);
  std::cout << (changed ? "Upgraded " : "Already current; copied ") << args[0] << " -> " << args[1]
            << "\n";
  return 0;
}

REGISTER_COMMAND("upgrade_net_proto_text", "rewrite a legacy net prototxt in the current format",
                 "crema upgrade_net_proto_text OLD.prototxt NEW.prototxt", UpgradeNetText);
REGISTER_COMMAND("upgrade_net_proto_binary", "rewrite a legacy .caffemodel in the current format",
                 "crema upgrade_net_proto_binary OLD.caffemodel NEW.caffemodel", UpgradeNetBinary);
REGISTER_COMMAND("upgrade_solver_proto_text",
                 "rewrite a solver prototxt that uses the old solver_type enum",
                 "crema upgrade_solver_proto_text OLD.prototxt NEW.prototxt", UpgradeSolverText);

}  // namespace
}  // namespace tools
}  // namespace crema
