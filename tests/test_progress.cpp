// The terminal status line of `crema train` (crema/progress.hpp).
#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "crema/progress.hpp"

namespace crema {
namespace {

std::string Drain(int fd) {
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  return out;
}

TEST(TrainingProgress, FormatsDurationsAndStatus) {
  EXPECT_EQ(TrainingProgress::FormatDuration(0), "0s");
  EXPECT_EQ(TrainingProgress::FormatDuration(59.4), "59s");
  EXPECT_EQ(TrainingProgress::FormatDuration(187), "3m07s");
  EXPECT_EQ(TrainingProgress::FormatDuration(7500), "2h05m");
  EXPECT_EQ(TrainingProgress::FormatDuration(3 * 86400 + 4 * 3600 + 10), "3d04h");
  EXPECT_EQ(TrainingProgress::FormatDuration(-1), "?");
  EXPECT_EQ(TrainingProgress::FormatStatus(1234, 10000, 0.43214f, 0.01f, 41.2, 2345.4, 212),
            "[ 1234/10000  12.3%] loss 0.4321  lr 0.01  2345 img/s  41.2 it/s  ETA 3m32s");
  EXPECT_EQ(TrainingProgress::FormatStatus(0, 10, 2.5f, 0.1f, 0, 0, -1),
            "[ 0/10   0.0%] loss 2.5  lr 0.1  ETA ?");
}

TEST(TrainingProgress, OffWhenNotATerminal) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    StatusLine line(fds[1]);  // a pipe is not a terminal
    EXPECT_FALSE(line.active());
    line.Set("nothing");
  }
  close(fds[1]);
  EXPECT_EQ(Drain(fds[0]), "");
  close(fds[0]);
}

TEST(TrainingProgress, LogLinesEraseAndRedrawTheStatus) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const bool logtostderr = FLAGS_logtostderr;
  const int minloglevel = FLAGS_minloglevel;
  FLAGS_minloglevel = 0;
  {
    StatusLine line(fds[1], 1);
    ASSERT_TRUE(line.active());
    EXPECT_FALSE(FLAGS_logtostderr);  // the sink writes instead of glog
    line.Set("[1/9] status");
    LOG(INFO) << "Iteration 1, loss = 0.5";
    line.Set("[2/9] status");
    line.Finish();
    EXPECT_EQ(FLAGS_logtostderr, logtostderr);
  }
  FLAGS_minloglevel = minloglevel;
  close(fds[1]);
  const std::string out = Drain(fds[0]);
  close(fds[0]);
  const std::string erase = "\r\x1b[K";
  // status, erase + the intact glog line + newline, status again, next status, final erase.
  const size_t log_at = out.find("Iteration 1, loss = 0.5\n");
  ASSERT_NE(log_at, std::string::npos) << out;
  EXPECT_EQ(out.rfind(erase + "[1/9] status" + erase + "I", log_at), 0u) << out;
  const size_t line_start = out.rfind(erase, log_at) + erase.size();
  const std::string log_line = out.substr(line_start, out.find('\n', line_start) - line_start);
  EXPECT_EQ(log_line[0], 'I');
  EXPECT_NE(log_line.find("test_progress.cpp:"), std::string::npos) << log_line;
  EXPECT_NE(log_line.find("] Iteration 1, loss = 0.5"), std::string::npos) << log_line;
  const std::string tail = out.substr(out.find('\n', log_at) + 1);
  EXPECT_EQ(tail, erase + "[1/9] status" + erase + "[2/9] status" + erase);
}

}  // namespace
}  // namespace crema
