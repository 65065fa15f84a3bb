// Snapshots and exact resume: training 2N iterations straight must give bit-for-bit the
// weights of training N, snapshotting, and resuming a NEW solver from the .solverstate.
// Also: snapshot file names and contents, unwritable snapshot prefixes, corrupt or
// mismatched solver states, the action callback (SNAPSHOT / STOP) and SignalHandler.
#include <dirent.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/io.hpp"
#include "crema/net.hpp"
#include "crema/signal_handler.hpp"
#include "crema/solver.hpp"
#include "solvers/sgd.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::TempDir;

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

// Solvers reseed the process RNG (random_seed); put the suite's seed back afterwards.
class SolverResume : public ::testing::Test {
 protected:
  void TearDown() override { Context::set_random_seed(saved_seed_); }
  int64_t saved_seed_ = Context::random_seed();
};

pb::SolverParameter ParseSolver(const std::string& text) {
  pb::SolverParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param)) << text;
  return param;
}

// DummyData (gaussian, refilled every forward) + InnerProduct + ReLU + InnerProduct +
// Dropout + SoftmaxWithLoss; the same net is tested every 4 iterations.
const char* kNet = R"(
  name: 'resume'
  layer { name: 'data' type: 'DummyData' top: 'data' top: 'label'
    dummy_data_param {
      shape { dim: 8 dim: 5 } shape { dim: 8 }
      data_filler { type: 'gaussian' std: 1 } data_filler { type: 'constant' value: 1 } } }
  layer { name: 'ip1' type: 'InnerProduct' bottom: 'data' top: 'ip1'
    inner_product_param { num_output: 6
      weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'constant' value: 0.1 } } }
  layer { name: 'relu1' type: 'ReLU' bottom: 'ip1' top: 'ip1' }
  layer { name: 'drop1' type: 'Dropout' bottom: 'ip1' top: 'ip1' dropout_param { dropout_ratio: 0.3 } }
  layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2'
    inner_product_param { num_output: 3 weight_filler { type: 'gaussian' std: 0.5 } } }
  layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip2' bottom: 'label' top: 'loss' }
)";

std::string SolverText(const std::string& prefix, const std::string& extra = "") {
  return std::string("net_param {") + kNet +
         "} base_lr: 0.05 lr_policy: 'multistep' gamma: 0.5 stepvalue: 3 stepvalue: 7 "
         "momentum: 0.9 weight_decay: 0.001 max_iter: 10 random_seed: 42 display: 0 "
         "test_iter: 2 test_interval: 4 snapshot_prefix: '" +
         prefix + "' " + extra;
}

// Every learnable parameter, concatenated.
std::vector<float> Weights(const Solver& solver) {
  std::vector<float> all;
  for (const Blob* blob : solver.net()->learnable_params()) {
    all.insert(all.end(), blob->cpu_data(), blob->cpu_data() + blob->count());
  }
  return all;
}

bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_F(SolverResume, ResumedRunIsBitIdentical) {
  TempDir dir;
  const std::string a = dir.path() + "/a";
  const std::string b = dir.path() + "/b";
  // Straight: 10 iterations, snapshots every 5.
  SGDSolver straight(ParseSolver(SolverText(a, "snapshot: 5")));
  straight.Solve();
  EXPECT_EQ(straight.iter(), 10);
  const std::vector<float> expected = Weights(straight);
  for (const char* name : {"_iter_5.caffemodel", "_iter_5.solverstate", "_iter_10.caffemodel",
                           "_iter_10.solverstate"}) {
    EXPECT_TRUE(Exists(a + name)) << a + name;
  }
  EXPECT_FALSE(Exists(a + "_iter_0.caffemodel"));

  // The state written at iteration 5.
  pb::SolverState state;
  ReadProtoFromBinaryFile(a + "_iter_5.solverstate", &state);
  EXPECT_EQ(state.iter(), 5);
  EXPECT_EQ(state.learned_net(), a + "_iter_5.caffemodel");
  EXPECT_EQ(state.current_step(), 1);  // past stepvalue 3, before 7
  EXPECT_EQ(state.history_size(), 4);  // ip1 weight, bias; ip2 weight, bias
  pb::NetParameter model;
  ReadNetParamsFromBinaryFile(a + "_iter_5.caffemodel", &model);
  EXPECT_GT(model.layer_size(), 0);

  // Resumed: a new solver (fresh random initialisation) restored from iteration 5.
  SGDSolver resumed(ParseSolver(SolverText(b, "snapshot: 5")));
  EXPECT_FALSE(BitEqual(Weights(resumed), expected));
  resumed.Solve(a + "_iter_5.solverstate");
  EXPECT_EQ(resumed.iter(), 10);
  EXPECT_EQ(resumed.current_step(), 2);
  EXPECT_TRUE(BitEqual(Weights(resumed), expected));
  EXPECT_TRUE(Exists(b + "_iter_10.caffemodel"));
  EXPECT_FALSE(Exists(b + "_iter_5.caffemodel"));
  // Histories and test results agree too.
  ASSERT_EQ(resumed.history().size(), straight.history().size());
  for (size_t i = 0; i < straight.history().size(); ++i) {
    const Blob& x = *straight.history()[i];
    const Blob& y = *resumed.history()[i];
    ASSERT_EQ(x.count(), y.count());
    EXPECT_EQ(std::memcmp(x.cpu_data(), y.cpu_data(), x.count() * sizeof(float)), 0) << i;
  }
  EXPECT_EQ(resumed.last_test_scores(), straight.last_test_scores());

  // A different interruption point (iteration 6, written by a solver stopped there).
  const std::string c = dir.path() + "/c";
  SGDSolver first_half(ParseSolver(SolverText(c, "")));
  first_half.Step(6);
  first_half.Snapshot();
  SGDSolver second_half(ParseSolver(SolverText(c + "2", "")));
  second_half.Solve(c + "_iter_6.solverstate");
  EXPECT_TRUE(BitEqual(Weights(second_half), expected));
}

// The data layers of the train and test nets are positioned as in an uninterrupted run:
// TestCyclicData (tests/test_solver.cpp) yields a different batch each time, over a cycle
// of three batches, so a missing or wrong seek changes the result.
TEST_F(SolverResume, DataLayersAreRepositioned) {
  TempDir dir;
  const std::string net = R"(
    name: 'cyclic'
    layer { name: 'data' type: 'TestCyclicData' top: 'x' top: 't'
      dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
    layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y'
      inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 0.5 } } }
    layer { name: 'loss' type: 'EuclideanLoss' bottom: 'y' bottom: 't' top: 'loss' })";
  auto text = [&](const std::string& prefix) {
    return "net_param {" + net + "} base_lr: 0.1 lr_policy: 'fixed' momentum: 0.5 " +
           "max_iter: 9 iter_size: 2 random_seed: 3 test_iter: 1 test_interval: 3 " +
           "snapshot: 5 snapshot_prefix: '" + prefix + "'";
  };
  SGDSolver straight(ParseSolver(text(dir.path() + "/s")));
  straight.Solve();
  SGDSolver resumed(ParseSolver(text(dir.path() + "/r")));
  resumed.Solve(dir.path() + "/s_iter_5.solverstate");
  EXPECT_TRUE(BitEqual(Weights(resumed), Weights(straight)));
  EXPECT_EQ(resumed.last_test_scores(), straight.last_test_scores());
  // Without the seek (weights and history restored by hand) the result differs.
  SGDSolver unpositioned(ParseSolver(text(dir.path() + "/u")));
  unpositioned.Restore(dir.path() + "/s_iter_5.solverstate");
  unpositioned.net()->SeekDataBatches(0);
  unpositioned.test_nets()[0]->SeekDataBatches(0);
  unpositioned.Solve();
  EXPECT_FALSE(BitEqual(Weights(unpositioned), Weights(straight)));
}

TEST_F(SolverResume, SnapshotDirectoryMustBeWritable) {
  TempDir dir;
  try {
    SGDSolver solver(ParseSolver(SolverText(dir.path() + "/missing/dir/p", "snapshot: 5")));
    FAIL() << "expected crema::Error for a missing snapshot directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/dir/p"), std::string::npos) << e.what();
  }
  // A prefix below a regular file can never be written, even by root.
  const std::string file = dir.path() + "/plain_file";
  std::ofstream(file) << "x";
  auto build = [](const std::string& text) { SGDSolver solver(ParseSolver(text)); };
  EXPECT_THROW(build(SolverText(file + "/p", "snapshot: 5")), Error);
  // A final snapshot after training is checked up front as well.
  EXPECT_THROW(build(SolverText(file + "/p", "")), Error);
  if (::geteuid() != 0) {  // root may write anywhere
    const std::string locked = dir.path() + "/locked";
    ASSERT_EQ(::mkdir(locked.c_str(), 0500), 0);
    EXPECT_THROW(build(SolverText(locked + "/p", "snapshot: 5")), Error);
    ::chmod(locked.c_str(), 0700);
    ::rmdir(locked.c_str());
  }
  // A writable prefix is accepted and leaves no probe file behind.
  EXPECT_NO_THROW(build(SolverText(dir.path() + "/fine", "snapshot: 5")));
  std::vector<std::string> entries;
  if (DIR* listing = ::opendir(dir.path().c_str())) {
    while (const dirent* entry = ::readdir(listing)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") entries.push_back(name);
    }
    ::closedir(listing);
  }
  EXPECT_EQ(entries, std::vector<std::string>{"plain_file"});
}

void ExpectRestoreError(SGDSolver* solver, const std::string& file, const std::string& needle) {
  try {
    solver->Restore(file);
    ADD_FAILURE() << "expected crema::Error restoring " << file;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

TEST_F(SolverResume, BadSolverStates) {
  TempDir dir;
  const std::string prefix = dir.path() + "/p";
  SGDSolver solver(ParseSolver(SolverText(prefix, "")));
  solver.Step(2);
  solver.Snapshot();
  const std::string good = prefix + "_iter_2.solverstate";
  pb::SolverState state;
  ReadProtoFromBinaryFile(good, &state);

  // Garbage bytes.
  const std::string corrupt = dir.path() + "/corrupt.solverstate";
  std::ofstream(corrupt, std::ios::binary) << "\xff\xff\xff\xff this is not a SolverState";
  ExpectRestoreError(&solver, corrupt, "");
  // Missing file.
  ExpectRestoreError(&solver, dir.path() + "/absent.solverstate", "");
  // Wrong number of history blobs.
  pb::SolverState short_state = state;
  short_state.mutable_history()->RemoveLast();
  const std::string short_file = dir.path() + "/short.solverstate";
  WriteProtoToBinaryFile(short_state, short_file);
  ExpectRestoreError(&solver, short_file, "history");
  // A history blob of the wrong shape.
  pb::SolverState bad_shape = state;
  bad_shape.mutable_history(0)->mutable_shape()->set_dim(0, 7);
  const std::string shape_file = dir.path() + "/shape.solverstate";
  WriteProtoToBinaryFile(bad_shape, shape_file);
  ExpectRestoreError(&solver, shape_file, "history blob #0");
  // learned_net pointing nowhere.
  pb::SolverState no_net = state;
  no_net.set_learned_net(dir.path() + "/nowhere/x.caffemodel");
  const std::string no_net_file = dir.path() + "/nonet.solverstate";
  WriteProtoToBinaryFile(no_net, no_net_file);
  ExpectRestoreError(&solver, no_net_file, "x.caffemodel");
  // HDF5 states are refused.
  ExpectRestoreError(&solver, dir.path() + "/state.solverstate.h5", "HDF5");
  // The good one still works.
  EXPECT_NO_THROW(solver.Restore(good));
  EXPECT_EQ(solver.iter(), 2);
}

TEST_F(SolverResume, ActionSnapshotContinues) {
  TempDir dir;
  const std::string prefix = dir.path() + "/act";
  SGDSolver solver(ParseSolver(SolverText(prefix, "snapshot_after_train: false")));
  bool fired = false;
  solver.SetActionFunction([&]() {
    if (!fired && solver.iter() == 3) {
      fired = true;
      return SolverAction::SNAPSHOT;
    }
    return SolverAction::NONE;
  });
  solver.Solve();
  EXPECT_TRUE(fired);
  EXPECT_EQ(solver.iter(), 10);
  EXPECT_FALSE(solver.requested_early_exit());
  EXPECT_TRUE(Exists(prefix + "_iter_3.caffemodel"));
  EXPECT_TRUE(Exists(prefix + "_iter_3.solverstate"));
  EXPECT_FALSE(Exists(prefix + "_iter_10.caffemodel"));
}

TEST_F(SolverResume, ActionStopStopsAndSnapshots) {
  TempDir dir;
  const std::string prefix = dir.path() + "/stop";
  SGDSolver solver(ParseSolver(SolverText(prefix, "")));
  solver.SetActionFunction(
      [&]() { return solver.iter() == 6 ? SolverAction::STOP : SolverAction::NONE; });
  solver.Solve();
  EXPECT_EQ(solver.iter(), 6);
  EXPECT_TRUE(solver.requested_early_exit());
  EXPECT_TRUE(Exists(prefix + "_iter_6.caffemodel"));
  EXPECT_TRUE(Exists(prefix + "_iter_6.solverstate"));
  EXPECT_FALSE(Exists(prefix + "_iter_10.caffemodel"));
}

TEST_F(SolverResume, SignalHandlerMapsSignalsToActions) {
  EXPECT_THROW(SignalHandler("halt", "snapshot"), Error);
  EXPECT_THROW(SignalHandler("stop", ""), Error);
  struct sigaction before;
  ASSERT_EQ(sigaction(SIGHUP, nullptr, &before), 0);
  {
    SignalHandler handler("stop", "snapshot");
    EXPECT_THROW(SignalHandler("none", "none"), Error);  // only one at a time
    EXPECT_EQ(handler.GetRequestedAction(), SolverAction::NONE);
    ASSERT_EQ(::raise(SIGHUP), 0);
    EXPECT_EQ(handler.GetRequestedAction(), SolverAction::SNAPSHOT);
    EXPECT_EQ(handler.GetRequestedAction(), SolverAction::NONE);
    ASSERT_EQ(::raise(SIGINT), 0);
    ActionCallback callback = handler.GetActionFunction();
    EXPECT_EQ(callback(), SolverAction::STOP);
    EXPECT_EQ(callback(), SolverAction::NONE);
  }
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGHUP, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  {
    SignalHandler handler("none", "stop");
    ASSERT_EQ(::raise(SIGINT), 0);
    EXPECT_EQ(handler.GetRequestedAction(), SolverAction::NONE);
    ASSERT_EQ(::raise(SIGHUP), 0);
    EXPECT_EQ(handler.GetRequestedAction(), SolverAction::STOP);
  }
}

TEST_F(SolverResume, SigintStopsTraining) {
  TempDir dir;
  const std::string prefix = dir.path() + "/sig";
  SGDSolver solver(ParseSolver(SolverText(prefix, "")));
  SignalHandler handler("stop", "snapshot");
  solver.SetActionFunction(handler.GetActionFunction());
  ASSERT_EQ(::raise(SIGINT), 0);
  solver.Solve();
  // The test at iteration 0 sees the request first and stops before any update.
  EXPECT_TRUE(solver.requested_early_exit());
  EXPECT_EQ(solver.iter(), 0);
  EXPECT_TRUE(Exists(prefix + "_iter_0.solverstate"));
}

}  // namespace
}  // namespace crema
