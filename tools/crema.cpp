// `crema`: the command-line front end. `crema COMMAND [--flags] [args]`; each command lives
// in its own tools/*.cpp and registers itself (command.hpp). Flags accept both
// --flag=value and --flag value. A user mistake ends with one paragraph on stderr and exit
// status 1; never an abort.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>

#include "crema/common.hpp"
#include "tools/command.hpp"

DEFINE_int32(threads, 0, "CPU threads for kernels and OpenBLAS (0: all cores)");

namespace crema {
namespace tools {
namespace {
std::map<std::string, Command>& commands() {
  static std::map<std::string, Command> registry;
  return registry;
}
}  // namespace

void CommandRegistry::Add(Command command) {
  CHECK(!commands().count(command.name)) << "command registered twice: " << command.name;
  std::string name = command.name;
  commands().emplace(name, std::move(command));
}

const Command* CommandRegistry::Find(const std::string& name) {
  auto it = commands().find(name);
  return it == commands().end() ? nullptr : &it->second;
}

std::vector<const Command*> CommandRegistry::All() {
  std::vector<const Command*> all;
  for (const auto& entry : commands()) all.push_back(&entry.second);
  return all;
}

}  // namespace tools
}  // namespace crema

namespace {

using crema::tools::Command;
using crema::tools::CommandRegistry;

void print_general_usage() {
  std::cout << "crema: Caffe-compatible deep learning.\n\n"
               "usage: crema COMMAND [--flag=value | --flag value ...] [arguments]\n\n"
               "commands:\n";
  for (const Command* command : CommandRegistry::All())
    std::cout << "  " << command->name
              << std::string(std::max<size_t>(2, 26 - command->name.size()), ' ')
              << command->summary << "\n";
  std::cout << "\n`crema COMMAND --help` describes a command and its flags.\n"
               "Common flags: --threads N (CPU threads; default all cores).\n";
}

bool is_help_flag(const char* arg) {
  return !std::strcmp(arg, "--help") || !std::strcmp(arg, "-help") || !std::strcmp(arg, "-h") ||
         !std::strcmp(arg, "--helpfull");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || is_help_flag(argv[1]) || !std::strcmp(argv[1], "help")) {
    if (argc >= 3 && !std::strcmp(argv[1], "help")) {
      if (const Command* command = CommandRegistry::Find(argv[2])) {
        std::cout << command->usage << "\n";
        return 0;
      }
    }
    print_general_usage();
    return argc < 2 ? 1 : 0;
  }
  const std::string name = argv[1];
  const Command* command = CommandRegistry::Find(name);
  if (!command) {
    std::cerr << "crema: unknown command '" << name << "'.\n\n";
    print_general_usage();
    return 1;
  }
  for (int i = 2; i < argc; ++i) {
    if (is_help_flag(argv[i])) {
      std::cout << command->usage << "\n";
      return 0;
    }
  }

  // Remove the command word, then let gflags take the flags.
  std::vector<char*> args(argv, argv + argc);
  args.erase(args.begin() + 1);
  int new_argc = static_cast<int>(args.size());
  char** new_argv = args.data();
  gflags::SetUsageMessage(command->usage);
  gflags::ParseCommandLineFlags(&new_argc, &new_argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_threads > 0) crema::Context::set_num_threads(FLAGS_threads);

  std::vector<std::string> positional(new_argv + 1, new_argv + new_argc);
  try {
    return command->run(positional);
  } catch (const crema::Error& error) {
    std::cerr << "crema " << name << ": error: " << error.what() << std::endl;
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "crema " << name << ": error: " << error.what() << std::endl;
    return 1;
  }
}
