// The suite's entry point: glog to stderr (quiet unless a test fails), one kernel thread
// per test process (ctest runs processes side by side), a fixed seed.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <gtest/gtest.h>

#include "crema/common.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;  // warnings and errors
  google::InitGoogleLogging(argv[0]);
  crema::Context::set_num_threads(1);
  crema::Context::set_random_seed(1701);
  return RUN_ALL_TESTS();
}
