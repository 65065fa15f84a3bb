// Live training progress on a terminal: one status line at the bottom of the screen,
//
//   [ 1234/10000  12.3%] loss 0.4321  lr 0.01  2345 img/s  41.2 it/s  ETA 3m32s
//
// rewritten in place at most every 0.25 s, while the glog lines scroll above it intact.
//
// How: while active, glog's own stderr output is switched off (FLAGS_logtostderr = false,
// stderrthreshold above FATAL, log files disabled) and a glog LogSink writes every message
// itself, formatted exactly as glog does ("I20250101 12:00:00.123456  4242 file.cpp:12] ..."):
// it erases the status line ("\r" + clear-to-end-of-line), writes the log line and its
// newline, and redraws the status. So the log on screen reads as without the status line,
// and a copy-pasted log still parses (tools/parse_log.py). Finish() (or the destructor)
// erases the line and gives glog its settings back.
//
// Only when stderr is a terminal (isatty) and TERM is not "dumb" and the environment does
// not say CREMA_PROGRESS=0: otherwise (CI, redirected logs) nothing changes and nothing
// extra is printed.
//
// Hooking it into training (tools/cmd_core.cpp, after the solver is created):
//   TrainingProgress progress(*solver);
//   solver->add_callback(&progress);
//   ... solver->Solve(...); progress.Finish();
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "crema/solver.hpp"

namespace crema {

// The status line and the log sink, independent of any solver.
class StatusLine {
 public:
  // fd: where both the status and the log lines go. enabled: -1 decides from the
  // environment (isatty(fd), TERM, CREMA_PROGRESS), 0 never, 1 always (tests).
  explicit StatusLine(int fd = 2, int enabled = -1);
  ~StatusLine();
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  bool active() const { return active_; }
  // Replaces the status text and redraws it (truncated to the terminal width).
  void Set(const std::string& text);
  // Erases the line and restores glog's settings; later calls do nothing.
  void Finish();

  // Called by the sink for every log message (already formatted, without newline).
  void WriteLogLine(const std::string& line);

  // Whether the environment asks for a status line on `fd`.
  static bool WantedOn(int fd);

 private:
  class Sink;
  void DrawLocked();
  void EraseLocked();
  void WriteAll(const std::string& bytes);

  int fd_;
  bool active_ = false;
  bool shown_ = false;
  std::string text_;
  std::mutex mutex_;
  std::unique_ptr<Sink> sink_;
  // glog settings to give back.
  bool saved_logtostderr_ = true;
  bool saved_alsologtostderr_ = false;
  int saved_stderrthreshold_ = 2;
};

// A Solver callback that keeps a StatusLine up to date.
class TrainingProgress : public Solver::Callback {
 public:
  explicit TrainingProgress(const Solver& solver, int fd = 2, int enabled = -1);
  ~TrainingProgress() override;

  bool active() const { return line_.active(); }
  void on_start() override {}
  void on_gradients_ready() override;
  void Finish() { line_.Finish(); }

  // "45s", "3m07s", "2h05m", "3d04h": durations for the ETA.
  static std::string FormatDuration(double seconds);
  // The status text for the given numbers (rate_items <= 0 leaves img/s out; eta < 0 "?").
  static std::string FormatStatus(int iter, int max_iter, float loss, float lr, double iters_per_s,
                                  double items_per_s, double eta_s);

 private:
  const Solver& solver_;
  StatusLine line_;
  std::chrono::steady_clock::time_point last_draw_;
  std::chrono::steady_clock::time_point last_rate_time_;
  int last_rate_iter_ = -1;
  double rate_ = 0;  // smoothed iterations per second
  int items_per_iter_ = 0;
};

}  // namespace crema
