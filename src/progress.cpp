#include "crema/progress.hpp"

#include <glog/logging.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "crema.pb.h"
#include "crema/net.hpp"
#include "solvers/sgd.hpp"

DECLARE_bool(logtostderr);
DECLARE_bool(alsologtostderr);
DECLARE_int32(stderrthreshold);

namespace crema {

namespace {
constexpr const char* kEraseLine = "\r\033[K";
}

class StatusLine::Sink : public google::LogSink {
 public:
  explicit Sink(StatusLine* owner) : owner_(owner) {}
  void send(google::LogSeverity severity, const char* full_filename, const char* base_filename,
            int line, const google::LogMessageTime& time, const char* message,
            size_t message_len) override {
    owner_->WriteLogLine(ToString(severity, base_filename, line, time, message, message_len));
  }

 private:
  StatusLine* owner_;
};

bool StatusLine::WantedOn(int fd) {
  if (!isatty(fd)) return false;
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  const char* flag = std::getenv("CREMA_PROGRESS");
  if (flag && std::strcmp(flag, "0") == 0) return false;
  return true;
}

StatusLine::StatusLine(int fd, int enabled) : fd_(fd) {
  active_ = enabled < 0 ? WantedOn(fd) : enabled != 0;
  if (!active_) return;
  saved_logtostderr_ = FLAGS_logtostderr;
  saved_alsologtostderr_ = FLAGS_alsologtostderr;
  saved_stderrthreshold_ = FLAGS_stderrthreshold;
  // glog must not write to stderr (the sink does) nor open log files instead.
  for (int severity = 0; severity < google::NUM_SEVERITIES; ++severity)
    google::SetLogDestination(severity, "");
  sink_ = std::make_unique<Sink>(this);
  google::AddLogSink(sink_.get());
  FLAGS_alsologtostderr = false;
  FLAGS_stderrthreshold = google::NUM_SEVERITIES;
  FLAGS_logtostderr = false;
}

StatusLine::~StatusLine() {
  Finish();
}

void StatusLine::Finish() {
  if (!active_) return;
  // Give stderr back to glog first, so no message is lost in between.
  FLAGS_logtostderr = saved_logtostderr_;
  FLAGS_alsologtostderr = saved_alsologtostderr_;
  FLAGS_stderrthreshold = saved_stderrthreshold_;
  google::RemoveLogSink(sink_.get());
  std::lock_guard<std::mutex> lock(mutex_);
  EraseLocked();
  active_ = false;
}

void StatusLine::WriteAll(const std::string& bytes) {
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report it
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
}

void StatusLine::EraseLocked() {
  if (!shown_) return;
  WriteAll(kEraseLine);
  shown_ = false;
}

void StatusLine::DrawLocked() {
  if (text_.empty()) return;
  std::string shown = text_;
  struct winsize size;
  if (ioctl(fd_, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 &&
      shown.size() >= static_cast<size_t>(size.ws_col))
    shown.resize(size.ws_col - 1);  // a wrapped line could not be erased with \r
  WriteAll(kEraseLine + shown);
  shown_ = true;
}

void StatusLine::Set(const std::string& text) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  text_ = text;
  DrawLocked();
}

void StatusLine::WriteLogLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  // One write for erase + line + status, so the terminal never shows a half state.
  std::string out = shown_ ? std::string(kEraseLine) : std::string();
  out += line;
  out += '\n';
  shown_ = false;
  WriteAll(out);
  DrawLocked();
}

// ---------------------------------------------------------------------------------------

TrainingProgress::TrainingProgress(const Solver& solver, int fd, int enabled)
    : solver_(solver), line_(fd, enabled) {
  if (!line_.active()) return;
  // Items per iteration: the batch (first axis of the first top of the first layer) times
  // iter_size; 0 when the net does not look like that.
  const Net& net = *solver_.net();
  if (!net.top_vecs().empty() && !net.top_vecs()[0].empty() && net.top_vecs()[0][0]->num_axes() > 0)
    items_per_iter_ = net.top_vecs()[0][0]->shape(0) * std::max(1, solver_.param().iter_size());
}

TrainingProgress::~TrainingProgress() = default;

std::string TrainingProgress::FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const long long s = static_cast<long long>(std::llround(seconds));
  char buffer[32];
  if (s < 60)
    std::snprintf(buffer, sizeof buffer, "%llds", s);
  else if (s < 3600)
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", s / 60, s % 60);
  else if (s < 86400)
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else
    std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
  return buffer;
}

std::string TrainingProgress::FormatStatus(int iter, int max_iter, float loss, float lr,
                                           double iters_per_s, double items_per_s, double eta_s) {
  char buffer[256];
  const int digits = static_cast<int>(std::to_string(std::max(max_iter, 1)).size());
  const double percent = max_iter > 0 ? 100.0 * iter / max_iter : 0.0;
  int n = std::snprintf(buffer, sizeof buffer, "[%*d/%d %5.1f%%] loss %.4g  lr %.3g", digits, iter,
                        max_iter, percent, loss, lr);
  std::string text(buffer, static_cast<size_t>(std::max(n, 0)));
  if (items_per_s > 0) {
    n = std::snprintf(buffer, sizeof buffer, "  %.0f img/s", items_per_s);
    text.append(buffer, static_cast<size_t>(std::max(n, 0)));
  }
  if (iters_per_s > 0) {
    n = std::snprintf(buffer, sizeof buffer, "  %.3g it/s", iters_per_s);
    text.append(buffer, static_cast<size_t>(std::max(n, 0)));
  }
  text += "  ETA " + FormatDuration(eta_s);
  return text;
}

void TrainingProgress::on_gradients_ready() {
  if (!line_.active()) return;
  const auto now = std::chrono::steady_clock::now();
  const int iter = solver_.iter();
  if (last_rate_iter_ < 0 || iter < last_rate_iter_) {
    last_rate_iter_ = iter;
    last_rate_time_ = now;
    last_draw_ = now - std::chrono::seconds(1);
  }
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (since_draw < 0.25) return;
  last_draw_ = now;
  // Rate over the span since the last measurement, smoothed.
  const double span = std::chrono::duration<double>(now - last_rate_time_).count();
  if (span > 0 && iter > last_rate_iter_) {
    const double rate = (iter - last_rate_iter_) / span;
    rate_ = rate_ > 0 ? 0.7 * rate_ + 0.3 * rate : rate;
    last_rate_iter_ = iter;
    last_rate_time_ = now;
  }
  const pb::SolverParameter& param = solver_.param();
  int step = solver_.current_step();
  float lr = 0.f;
  try {
    lr = ComputeLearningRate(param, iter, &step);
  } catch (const Error&) {
    lr = std::nanf("");
  }
  const int remaining = param.max_iter() - iter;
  const double eta = rate_ > 0 ? remaining / rate_ : -1.0;
  line_.Set(FormatStatus(iter, param.max_iter(), solver_.smoothed_loss(), lr, rate_,
                         rate_ * items_per_iter_, eta));
}

}  // namespace crema
