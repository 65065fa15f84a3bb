#include "crema/signal_handler.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>

namespace crema {
namespace {

// Set by the handler, cleared by the poller. Lock-free atomics are async-signal-safe.
std::atomic<bool> g_got_sigint{false};
std::atomic<bool> g_got_sighup{false};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal flags must be lock-free");

extern "C" void CremaHandleSignal(int signal_number) {
  if (signal_number == SIGINT) g_got_sigint.store(true);
  if (signal_number == SIGHUP) g_got_sighup.store(true);
}

}  // namespace

SolverAction ParseSolverAction(const std::string& value, const std::string& flag_name) {
  if (value == "stop") return SolverAction::STOP;
  if (value == "snapshot") return SolverAction::SNAPSHOT;
  if (value == "none") return SolverAction::NONE;
  CREMA_THROW("Invalid value '" << value << "' for " << flag_name
                                << ": expected stop, snapshot or none");
}

SignalHandler::SignalHandler(const std::string& sigint_effect, const std::string& sighup_effect)
    : sigint_action_(ParseSolverAction(sigint_effect, "--sigint_effect")),
      sighup_action_(ParseSolverAction(sighup_effect, "--sighup_effect")) {
  bool expected = false;
  CREMA_REQUIRE(g_installed.compare_exchange_strong(expected, true),
                "SignalHandler: the signal handlers are already installed by another instance");
  g_got_sigint = false;
  g_got_sighup = false;
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = &CremaHandleSignal;
  action.sa_flags = SA_RESTART;  // let interrupted system calls resume
  sigfillset(&action.sa_mask);   // nothing else runs while the flag is set
  if (sigaction(SIGINT, &action, &previous_sigint_) != 0) {
    g_installed = false;
    CREMA_THROW("SignalHandler: cannot install the SIGINT handler: " << std::strerror(errno));
  }
  if (sigaction(SIGHUP, &action, &previous_sighup_) != 0) {
    sigaction(SIGINT, &previous_sigint_, nullptr);
    g_installed = false;
    CREMA_THROW("SignalHandler: cannot install the SIGHUP handler: " << std::strerror(errno));
  }
}

SignalHandler::~SignalHandler() {
  if (sigaction(SIGHUP, &previous_sighup_, nullptr) != 0) {
    LOG(WARNING) << "SignalHandler: cannot restore the previous SIGHUP handler";
  }
  if (sigaction(SIGINT, &previous_sigint_, nullptr) != 0) {
    LOG(WARNING) << "SignalHandler: cannot restore the previous SIGINT handler";
  }
  g_got_sigint = false;
  g_got_sighup = false;
  g_installed = false;
}

SolverAction SignalHandler::GetRequestedAction() const {
  if (g_got_sighup.exchange(false)) return sighup_action_;
  if (g_got_sigint.exchange(false)) return sigint_action_;
  return SolverAction::NONE;
}

ActionCallback SignalHandler::GetActionFunction() const {
  return [this]() { return GetRequestedAction(); };
}

}  // namespace crema
