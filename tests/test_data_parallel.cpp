// Data-parallel training (include/crema/parallel.hpp).
//
// On the CPU, through thread communicators: N solvers with batch B train exactly like one
// solver with batch N*B on the same records (the Data layer interleaves records by rank),
// with gradients exchanged layer by layer (iter_size 1) or after accumulation (iter_size 2);
// the replicas stay identical; the root's STOP reaches every solver at the same iteration.
// On a GPU (skipped without one): the NCCL path with one device equals plain GPU training,
// bit for bit; with two or more devices, N GPUs equal one with N times the batch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/io.hpp"
#include "crema/parallel.hpp"
#include "tests/test_util.hpp"
#ifdef CREMA_WITH_CUDA
#include "src/cuda_util.hpp"
#endif

namespace crema {
namespace {

// An LMDB of n Datums 1x4x4 whose pixels depend on the item, labels i % 3.
std::string WriteDb(const std::string& dir, int n) {
  const std::string path = dir + "/db";
  testing::WriteDatumLmdb(
      path, n, 1, 4, 4, [](int i, int j) { return (i * 29 + j * 13) % 251; },
      [](int i) { return i % 3; });
  return path;
}

pb::SolverParameter MakeSolver(const std::string& db, int batch, int iter_size, int max_iter,
                               const std::string& prefix) {
  const std::string net = R"(
    name: "dp"
    layer { name: "data" type: "Data" top: "data" top: "label"
            transform_param { scale: 0.00390625 }
            data_param { source: ")" +
                          db + R"(" batch_size: )" + std::to_string(batch) + R"( } }
    layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
            inner_product_param { num_output: 8 weight_filler { type: "xavier" }
                                  bias_filler { type: "constant" value: 0.1 } } }
    layer { name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }
    layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
            inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
  )";
  pb::SolverParameter param;
  ReadProtoFromTextString(
      "base_lr: 0.5 momentum: 0.9 weight_decay: 0.001 lr_policy: 'fixed' "
      "display: 0 snapshot_after_train: false random_seed: 11 "
      "snapshot_prefix: '" +
          prefix + "' max_iter: " + std::to_string(max_iter) +
          " iter_size: " + std::to_string(iter_size),
      &param, "solver");
  ReadProtoFromTextString(net, param.mutable_net_param(), "net");
  return param;
}

// The largest |a - b| / max(1, |a|) over all learnable parameters.
double MaxDifference(const Net& a, const Net& b) {
  double worst = 0;
  for (size_t p = 0; p < a.learnable_params().size(); ++p) {
    const Blob& x = *a.learnable_params()[p];
    const Blob& y = *b.learnable_params()[p];
    for (int i = 0; i < x.count(); ++i)
      worst = std::max(worst, std::fabs(double(x.cpu_data()[i]) - y.cpu_data()[i]) /
                                  std::max(1.0, std::fabs(double(x.cpu_data()[i]))));
  }
  return worst;
}

class DataParallel : public ::testing::Test {
 protected:
  void TearDown() override { Context::set_mode(Mode::CPU); }
};

void ExpectMatchesBigBatch(int solvers, int iter_size) {
  testing::TempDir dir;
  const std::string db = WriteDb(dir.path(), 96);
  const int batch = 4, iters = 6;
  // Reference: one solver, batch solvers * 4.
  std::unique_ptr<Solver> single(
      CreateSolver(MakeSolver(db, batch * solvers, iter_size, iters, dir.path() + "/a")));
  // The replicas get the root's initial weights, so the reference starts from the same.
  single->Solve();
  DataParallelOptions options;
  options.cpu_solvers = solvers;
  std::unique_ptr<Solver> root =
      TrainDataParallel(MakeSolver(db, batch, iter_size, iters, dir.path() + "/b"), options);
  EXPECT_EQ(root->iter(), iters);
  EXPECT_EQ(Context::solver_count(), 1);  // restored afterwards
  EXPECT_LT(MaxDifference(*single->net(), *root->net()), 2e-5)
      << solvers << " solvers, iter_size " << iter_size;
}

TEST_F(DataParallel, TwoSolversEqualOneWithTwiceTheBatch) {
  ExpectMatchesBigBatch(2, 1);
}

TEST_F(DataParallel, ThreeSolversWithIterSizeTwo) {
  ExpectMatchesBigBatch(3, 2);
}

TEST_F(DataParallel, OneSolverEqualsPlainTraining) {
  ExpectMatchesBigBatch(1, 1);
}

TEST_F(DataParallel, RootStopReachesEverySolver) {
  testing::TempDir dir;
  const std::string db = WriteDb(dir.path(), 32);
  DataParallelOptions options;
  options.cpu_solvers = 2;
  int polls = 0;
  options.setup_root = [&polls](Solver& root) {
    root.SetActionFunction(
        [&polls] { return ++polls == 3 ? SolverAction::STOP : SolverAction::NONE; });
  };
  std::unique_ptr<Solver> root =
      TrainDataParallel(MakeSolver(db, 4, 1, 50, dir.path() + "/s"), options);
  EXPECT_EQ(root->iter(), 3);
  EXPECT_TRUE(root->requested_early_exit());
}

TEST_F(DataParallel, UserErrorsWhileBuildingAreErrors) {
  DataParallelOptions options;
  options.cpu_solvers = 2;
  testing::TempDir dir;
  EXPECT_THROW(TrainDataParallel(MakeSolver(dir.path() + "/missing_db", 4, 1, 5, dir.path() + "/s"),
                                 options),
               Error);
  EXPECT_EQ(Context::solver_count(), 1);
  EXPECT_EQ(Context::solver_rank(), 0);
  options.cpu_solvers = 0;
  EXPECT_THROW(TrainDataParallel(MakeSolver("x", 4, 1, 5, dir.path() + "/s"), options), Error);
}

// ---- GPU ------------------------------------------------------------------------------

int DeviceCount() {
#ifdef CREMA_WITH_CUDA
  return CudaDeviceCount();
#else
  return 0;
#endif
}

TEST_F(DataParallel, GpuNcclOneDeviceEqualsPlainGpuTraining) {
  if (DeviceCount() < 1) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  if (!HasNccl()) GTEST_SKIP() << "this build has no NCCL";
  testing::TempDir dir;
  const std::string db = WriteDb(dir.path(), 64);
  Context::set_mode(Mode::GPU);
  std::unique_ptr<Solver> single(CreateSolver(MakeSolver(db, 8, 1, 6, dir.path() + "/a")));
  single->Solve();
  DataParallelOptions options;
  options.devices = {0};
  std::unique_ptr<Solver> root =
      TrainDataParallel(MakeSolver(db, 8, 1, 6, dir.path() + "/b"), options);
  Context::set_mode(Mode::CPU);
  EXPECT_EQ(MaxDifference(*single->net(), *root->net()), 0.0);
}

TEST_F(DataParallel, GpuNcclAllDevicesEqualOneWithLargerBatch) {
  const int n = DeviceCount();
  if (n < 2) GTEST_SKIP() << "fewer than two CUDA devices: multi-GPU test skipped";
  if (!HasNccl()) GTEST_SKIP() << "this build has no NCCL";
  testing::TempDir dir;
  const std::string db = WriteDb(dir.path(), 128);
  Context::set_mode(Mode::GPU);
  std::unique_ptr<Solver> single(CreateSolver(MakeSolver(db, 4 * n, 1, 6, dir.path() + "/a")));
  single->Solve();
  DataParallelOptions options;
  for (int d = 0; d < n; ++d) options.devices.push_back(d);
  std::unique_ptr<Solver> root =
      TrainDataParallel(MakeSolver(db, 4, 1, 6, dir.path() + "/b"), options);
  Context::set_mode(Mode::CPU);
  EXPECT_LT(MaxDifference(*single->net(), *root->net()), 2e-5);
}

}  // namespace
}  // namespace crema
