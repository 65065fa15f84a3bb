// Subcommands of the `crema` tool. Each tools/*.cpp registers its commands with
// REGISTER_COMMAND; tools/crema.cpp dispatches on argv[1].
//
// A command receives the arguments after its name (gflags already parsed: flags are in
// FLAGS_*, positional arguments remain) and returns the process exit status. User
// mistakes are reported by throwing crema::Error; crema.cpp prints them and exits 1.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace crema {
namespace tools {

struct Command {
  std::string name;
  std::string summary;  // one line for `crema --help`
  std::string usage;    // shown by `crema help NAME` and `crema NAME --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

class CommandRegistry {
 public:
  static void Add(Command command);
  static const Command* Find(const std::string& name);
  static std::vector<const Command*> All();  // sorted by name
};

struct CommandRegisterer {
  explicit CommandRegisterer(Command command) { CommandRegistry::Add(std::move(command)); }
};

#define CREMA_CONCAT_INNER(a, b) a##b
#define CREMA_CONCAT(a, b) CREMA_CONCAT_INNER(a, b)
// REGISTER_COMMAND("train", "train a net", "usage text", RunTrain);
#define REGISTER_COMMAND(name, summary, usage, fn)       \
  static ::crema::tools::CommandRegisterer CREMA_CONCAT( \
      g_crema_command_, __LINE__)(::crema::tools::Command{name, summary, usage, fn})

}  // namespace tools
}  // namespace crema
