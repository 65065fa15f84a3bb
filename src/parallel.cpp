// Data-parallel training (see include/crema/parallel.hpp): the thread communicators, the
// per-solver gradient exchange and the driver that builds and runs the solvers.
#include "crema/parallel.hpp"

#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "crema.pb.h"
#include "crema/math_functions.hpp"
#ifdef CREMA_WITH_CUDA
#include "crema/gpu_math.hpp"
#include "src/cuda_util.hpp"
#endif

namespace crema {

#ifndef CREMA_WITH_CUDA
bool HasNccl() {
  return false;
}
std::vector<std::unique_ptr<Communicator>> MakeNcclCommunicators(const std::vector<int>&) {
  CREMA_THROW("multi-GPU training needs a crema built with CUDA and NCCL");
}
#endif

namespace {

// A reusable barrier for the n threads of one training run, plus a slot each.
class ThreadGroup {
 public:
  explicit ThreadGroup(int n) : n_(n), slots_(n, nullptr) {}
  int size() const { return n_; }

  void Barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return generation_ != generation; });
    }
  }
  float*& slot(int rank) { return slots_[rank]; }

  // Every rank passes its own action; all get the root's.
  SolverAction Agree(int rank, SolverAction action) {
    if (rank == 0) agreed_ = action;
    Barrier();
    const SolverAction result = agreed_;
    Barrier();  // nobody may overwrite agreed_ before everyone has read it
    return result;
  }

 private:
  const int n_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<float*> slots_;
  SolverAction agreed_ = SolverAction::NONE;
};

// Host-memory collectives between the threads of a ThreadGroup. AllReduceSum: every rank
// publishes its buffer, then sums one slice of the array over all buffers and writes the
// sum into all of them (slices are disjoint, so no element has two writers).
class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadGroup> group, int rank)
      : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  bool on_device() const override { return false; }

  void AllReduceSum(float* data, size_t count) override {
    const int n = size();
    group_->slot(rank_) = data;
    group_->Barrier();
    const size_t begin = count * rank_ / n, end = count * (rank_ + 1) / n;
    for (size_t i = begin; i < end; ++i) {
      float sum = 0.f;
      for (int r = 0; r < n; ++r) sum += group_->slot(r)[i];
      for (int r = 0; r < n; ++r) group_->slot(r)[i] = sum;
    }
    group_->Barrier();
  }
  void Broadcast(float* data, size_t count) override {
    group_->slot(rank_) = data;
    group_->Barrier();
    if (rank_ != 0) std::copy(group_->slot(0), group_->slot(0) + count, data);
    group_->Barrier();
  }
  void Wait() override {}

 private:
  std::shared_ptr<ThreadGroup> group_;
  int rank_;
};

float* diff_of(Blob* blob, bool device) {
#ifdef CREMA_WITH_CUDA
  if (device) return blob->mutable_gpu_diff();
#endif
  return blob->mutable_cpu_diff();
}
float* data_of(Blob* blob, bool device) {
#ifdef CREMA_WITH_CUDA
  if (device) return blob->mutable_gpu_data();
#endif
  return blob->mutable_cpu_data();
}

// One solver's side of the gradient exchange. Each learnable parameter is summed right
// after the backward of the first layer (in forward order) that holds it: backward runs
// last to first, so by then every layer sharing it has added its part.
class GradientExchange : public Solver::Callback {
 public:
  GradientExchange(Solver* solver, Communicator* comm) : solver_(solver), comm_(comm) {
    Net& net = *solver->net();
    std::unordered_set<const void*> learnable, assigned;
    for (Blob* blob : net.learnable_params()) learnable.insert(blob->diff().get());
    for (int layer = 0; layer < net.num_layers(); ++layer) {
      for (const auto& blob : net.layers()[layer]->blobs()) {
        const void* key = blob->diff().get();
        if (!learnable.count(key) || !assigned.insert(key).second) continue;
        by_layer_[layer].push_back(blob.get());
      }
    }
    // With iter_size > 1 the gradients of several passes accumulate first.
    overlap_ = solver->param().iter_size() == 1;
    if (overlap_) net.add_after_backward([this](int layer) { ExchangeLayer(layer); });
  }

  void on_start() override {}

  void on_gradients_ready() override {
    Net& net = *solver_->net();
    if (!overlap_)
      for (int layer = 0; layer < net.num_layers(); ++layer) ExchangeLayer(layer);
    MixedPrecision& mixed = *net.mixed_precision();
    if (mixed.precision == Precision::FP16 && Context::mode() == Mode::GPU)
      comm_->AllReduceSum(data_of(&mixed.overflow, comm_->on_device()), 1);
    comm_->Wait();
    // The update sees the mean gradient over the solvers.
    const float inverse = 1.f / comm_->size();
    for (Blob* blob : net.learnable_params()) {
#ifdef CREMA_WITH_CUDA
      if (comm_->on_device()) {
        gpu_scal(blob->count(), inverse, blob->mutable_gpu_diff());
        continue;
      }
#endif
      cpu_scal(blob->count(), inverse, blob->mutable_cpu_diff());
    }
  }

  // Makes the replicas equal to the root's: every parameter blob (learnable or not).
  void BroadcastParameters() {
    for (const auto& blob : solver_->net()->params())
      comm_->Broadcast(data_of(blob.get(), comm_->on_device()), blob->count());
    comm_->Wait();
  }

 private:
  void ExchangeLayer(int layer) {
    auto it = by_layer_.find(layer);
    if (it == by_layer_.end()) return;
    for (Blob* blob : it->second)
      comm_->AllReduceSum(diff_of(blob, comm_->on_device()), blob->count());
  }

  Solver* solver_;
  Communicator* comm_;
  std::unordered_map<int, std::vector<Blob*>> by_layer_;
  bool overlap_ = true;
};

// Makes the calling thread solver `rank`, on its device in GPU mode.
void enter_rank(int rank, const std::vector<int>& devices) {
  Context::set_solver_rank(rank);
  if (devices.empty()) return;
  Context::set_device(devices[rank]);
#ifdef CREMA_WITH_CUDA
  CudaSetDevice(devices[rank]);
#endif
}

}  // namespace

std::vector<std::unique_ptr<Communicator>> MakeThreadCommunicators(int n) {
  CHECK_GE(n, 1);
  auto group = std::make_shared<ThreadGroup>(n);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<ThreadCommunicator>(group, r));
  return out;
}

std::unique_ptr<Solver> TrainDataParallel(const pb::SolverParameter& param,
                                          const DataParallelOptions& options) {
  const std::vector<int>& devices = options.devices;
  const int n = devices.empty() ? options.cpu_solvers : static_cast<int>(devices.size());
  CREMA_REQUIRE(n >= 1, "data-parallel training needs at least one solver");
  CREMA_REQUIRE(devices.empty() == (Context::mode() == Mode::CPU),
                "data-parallel training: devices must be given exactly in GPU mode");
  const int caller_rank = Context::solver_rank();
  const int caller_device = Context::device_id();
  const int previous_count = Context::solver_count();
  Context::set_solver_count(n);

  // Build the solvers here, one after the other, each under its own rank and device (the
  // data layers learn their share of the data, memory lands on the right device).
  std::vector<std::unique_ptr<Solver>> solvers(n);
  try {
    for (int r = 0; r < n; ++r) {
      enter_rank(r, devices);
      solvers[r].reset(CreateSolver(param));
      if (r == 0) {
        for (const auto& path : options.weights) {
          LOG(INFO) << "Fine-tuning from " << path;
          solvers[0]->net()->CopyTrainedLayersFrom(path);
        }
      }
    }
  } catch (...) {
    enter_rank(caller_rank, devices);
    Context::set_device(caller_device);
    Context::set_solver_count(previous_count);
    throw;
  }
  enter_rank(0, devices);
  if (options.setup_root) options.setup_root(*solvers[0]);
#ifdef CREMA_WITH_CUDA
  // Each rank queues its GPU work on its own thread's stream, which is not ordered after this
  // thread's: the fills and copies of building the replicas must be done before they start.
  for (size_t r = 0; r < devices.size(); ++r) {
    enter_rank(static_cast<int>(r), devices);
    CudaStreamSynchronize();
  }
  enter_rank(0, devices);
#endif
  std::vector<std::unique_ptr<Communicator>> comms =
      devices.empty() ? MakeThreadCommunicators(n) : MakeNcclCommunicators(devices);
  LOG(INFO) << "Data-parallel training on " << n << (devices.empty() ? " CPU solver(s)" : " GPU(s)")
            << "; every iteration uses " << n << " times the net's batch";

  auto group = std::make_shared<ThreadGroup>(n);
  auto run_rank = [&](int r) {
    try {
      enter_rank(r, devices);
      Solver& solver = *solvers[r];
      GradientExchange exchange(&solver, comms[r].get());
      solver.add_callback(&exchange);
      solver.SetActionAgreement(
          [&group, r](SolverAction action) { return group->Agree(r, action); });
      if (!options.resume_file.empty()) {
        LOG_IF(INFO, r == 0) << "Restoring previous solver status from " << options.resume_file;
        solver.Restore(options.resume_file);
      }
      exchange.BroadcastParameters();
      solver.Solve();
      solver.SetActionAgreement(nullptr);
      solver.remove_callback(&exchange);
      solver.net()->clear_after_backward();
    } catch (const std::exception& e) {
      // The other solvers would wait for this one forever: report and end the process.
      std::cerr << "crema: error in solver " << r << ": " << e.what() << std::endl;
      LOG(ERROR) << "error in solver " << r << ": " << e.what();
      std::_Exit(1);
    }
  };
  std::vector<std::thread> threads;
  for (int r = 1; r < n; ++r) threads.emplace_back(run_rank, r);
  run_rank(0);
  for (auto& thread : threads) thread.join();

  // The replicas go (each on its own device), the root stays.
  for (int r = 1; r < n; ++r) {
    enter_rank(r, devices);
    solvers[r].reset();
  }
  comms.clear();
  enter_rank(0, devices);
  Context::set_solver_rank(caller_rank);
  Context::set_solver_count(previous_count);
  return std::move(solvers[0]);
}

}  // namespace crema
