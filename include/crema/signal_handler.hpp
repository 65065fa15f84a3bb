// SignalHandler: turns SIGINT and SIGHUP into solver actions, as Caffe's `train` does.
// While an instance lives, both signals only set a flag (nothing else happens inside the
// handler); the solver polls GetRequestedAction() once per iteration and per test batch
// and receives the action configured for the signal that arrived (SIGHUP first when both
// did). The destructor puts back the handlers that were installed before.
//
//   SignalHandler signals(FLAGS_sigint_effect, FLAGS_sighup_effect);  // "stop", "snapshot"
//   solver->SetActionFunction(signals.GetActionFunction());
#pragma once

#include <signal.h>

#include <string>

#include "crema/solver.hpp"

namespace crema {

// "stop" -> STOP, "snapshot" -> SNAPSHOT, "none" -> NONE; anything else is a crema::Error
// naming `flag_name` (e.g. "--sigint_effect").
SolverAction ParseSolverAction(const std::string& value, const std::string& flag_name);

class SignalHandler {
 public:
  // Effects as the --sigint_effect / --sighup_effect flags spell them. Only one instance
  // may exist at a time (crema::Error otherwise).
  SignalHandler(const std::string& sigint_effect, const std::string& sighup_effect);
  ~SignalHandler();
  SignalHandler(const SignalHandler&) = delete;
  SignalHandler& operator=(const SignalHandler&) = delete;

  // The action for the signal received since the last call (clearing it), or NONE.
  SolverAction GetRequestedAction() const;
  // A callable for Solver::SetActionFunction; valid while this handler lives.
  ActionCallback GetActionFunction() const;

 private:
  SolverAction sigint_action_;
  SolverAction sighup_action_;
  struct sigaction previous_sigint_;
  struct sigaction previous_sighup_;
};

}  // namespace crema
