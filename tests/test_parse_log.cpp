// tools/parse_log.py (run through /usr/bin/python3) on small training logs.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* const kPython = "/usr/bin/python3";

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

class ParseLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing: parse_log.py needs it";
    char dir_template[] = "/tmp/crema_parselog_XXXXXX";
    dir_ = mkdtemp(dir_template);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  int Run(const std::string& args) {
    const std::string command = std::string(kPython) + " " + CREMA_SOURCE_DIR +
                                "/tools/parse_log.py " + args + " > " + dir_ + "/out.txt 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_;
};

// What `crema train` logs (glog with the year in the prefix).
const char* const kLog =
    "I20250314 09:00:00.000000  4242 cmd_core.cpp:157] Starting Optimization\n"
    "I20250314 09:00:00.100000  4242 solver.cpp:331] Solving LeNet\n"
    "I20250314 09:00:00.250000  4242 solver.cpp:376] Iteration 0, Testing net (#0)\n"
    "I20250314 09:00:01.000000  4242 solver.cpp:420]     Test net output #0: accuracy = 0.0975\n"
    "I20250314 09:00:01.000001  4242 solver.cpp:420]     Test net output #1: loss = 2.30713 (* 1 = "
    "2.30713 loss)\n"
    "I20250314 09:00:01.200000  4242 solver.cpp:304] Iteration 0 (0 iter/s, 1.1s/100 iters), loss "
    "= 2.31\n"
    "I20250314 09:00:01.200001  4242 solver.cpp:320]     Train net output #0: loss = 2.31 (* 1 = "
    "2.31 loss)\n"
    "I20250314 09:00:01.200002  4242 sgd.cpp:123] Iteration 0, lr = 0.01\n"
    "I20250314 09:00:03.500000  4242 solver.cpp:304] Iteration 100 (43.4 iter/s, 2.3s/100 iters), "
    "loss = 0.25\n"
    "I20250314 09:00:03.500001  4242 solver.cpp:320]     Train net output #0: loss = 0.198 (* 1 = "
    "0.198 loss)\n"
    "I20250314 09:00:03.500002  4242 sgd.cpp:123] Iteration 100, lr = 0.00992565\n"
    "W20250314 09:00:04.000000  4242 solver.cpp:500] some warning without numbers\n"
    "I20250314 09:00:05.750000  4242 solver.cpp:376] Iteration 200, Testing net (#0)\n"
    "I20250314 09:00:06.000000  4242 solver.cpp:420]     Test net output #0: accuracy = 0.9612\n"
    "I20250314 09:00:06.000001  4242 solver.cpp:420]     Test net output #1: loss = 1.25e-01 (* 1 "
    "= 0.125 loss)\n"
    "I20250314 09:00:06.100000  4242 solver.cpp:304] Iteration 200 (40 iter/s, 2.5s/100 iters), "
    "loss = 0.15\n"
    "I20250314 09:00:06.100001  4242 solver.cpp:320]     Train net output #0: loss = 0.1 (* 1 = "
    "0.1 loss)\n"
    "I20250314 09:00:06.100002  4242 sgd.cpp:123] Iteration 200, lr = 0.00985258\n";

TEST_F(ParseLogTest, WritesTrainAndTestCsv) {
  const std::string log = dir_ + "/train.log";
  std::ofstream(log) << kLog;
  ASSERT_EQ(Run(log + " " + dir_), 0) << ReadLines(dir_ + "/out.txt").size();
  const std::vector<std::string> train = ReadLines(log + ".train.csv");
  const std::vector<std::string> expected_train = {
      "NumIters,Seconds,LearningRate,loss",
      "0,1.200001,0.01,2.31",
      "100,3.500001,0.00992565,0.198",
      "200,6.100001,0.00985258,0.1",
  };
  EXPECT_EQ(train, expected_train);
  const std::vector<std::string> test = ReadLines(log + ".test.csv");
  const std::vector<std::string> expected_test = {
      "NumIters,Seconds,LearningRate,accuracy,loss",
      "0,0.25,0.01,0.0975,2.30713",
      "200,5.75,0.00985258,0.9612,0.125",
  };
  EXPECT_EQ(test, expected_test);
}

TEST_F(ParseLogTest, ReadsCaffeStyleLogsAndTerminalCaptures) {
  // Caffe's older glog prefix has no year; a terminal capture carries status-line redraws.
  const std::string log = dir_ + "/caffe.INFO";
  std::ofstream(log) << "Log file created at: 2016/01/01 00:00:00\n"
                     << "I0101 00:00:10.000000  1 solver.cpp:280] Solving LeNet\n"
                     << "\r\x1b[K[ 5/10 50%] loss 1\r\x1b[KI0101 00:00:12.500000  1 "
                        "solver.cpp:228] Iteration 5, loss = 1.5\n"
                     << "I0101 00:00:12.500000  1 solver.cpp:244]     Train net output #0: loss = "
                        "1.5 (* 1 = 1.5 loss)\n"
                     << "I0101 00:00:12.500000  1 sgd_solver.cpp:106] Iteration 5, lr = 0.1\n";
  ASSERT_EQ(Run(log), 0);  // default output directory: the log's
  const std::vector<std::string> expected = {"NumIters,Seconds,LearningRate,loss", "5,2.5,0.1,1.5"};
  EXPECT_EQ(ReadLines(log + ".train.csv"), expected);
  EXPECT_EQ(ReadLines(log + ".test.csv"),
            (std::vector<std::string>{"NumIters,Seconds,LearningRate"}));
}

TEST_F(ParseLogTest, MissingLogIsAnError) {
  EXPECT_EQ(Run(dir_ + "/absent.log"), 1);
  const std::vector<std::string> out = ReadLines(dir_ + "/out.txt");
  ASSERT_FALSE(out.empty());
  EXPECT_NE(out[0].find("absent.log"), std::string::npos);
}

}  // namespace
