// Data-parallel training: N solvers, one per GPU, each on its own host thread, train one
// model together (Caffe's multi-GPU scheme, with NCCL).
//
//   - Every solver has its own copy of the net. The root solver (rank 0) is built first and
//     alone reads --weights / tests / logs / snapshots; the others' parameters are
//     overwritten by a broadcast of the root's before the first iteration (after a resume
//     every rank restores the same .solverstate).
//   - Each iteration every solver runs forward/backward on its own share of the data (the
//     Data layer interleaves records as Caffe does; ImageData and WindowData take every
//     N-th batch), so one iteration sees N times the batch.
//   - Gradients are summed over the solvers layer by layer as soon as each layer's backward
//     is queued (overlapping the rest of the backward pass; with iter_size > 1, once after
//     the last pass), then divided by N: every solver applies the same averaged update and
//     the replicas stay identical. FP16 nets also sum their overflow flags, so all skip
//     together.
//   - At the end of each iteration the solvers agree on the root's action (stop, snapshot).
//
// The exchange goes through a Communicator: NCCL on GPUs (on its own stream, ordered
// against the compute stream by events, no host synchronisation), or shared host memory
// between threads for CPU solvers (used by the tests to check the scheme without a GPU).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crema/solver.hpp"

namespace crema {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Whether buffers are device memory (GPU communicators) or host memory.
  virtual bool on_device() const = 0;
  // Queues an in-place sum over all ranks of this rank's `count` floats at `data`.
  virtual void AllReduceSum(float* data, size_t count) = 0;
  // Queues a copy of rank 0's `count` floats into every rank's `data`.
  virtual void Broadcast(float* data, size_t count) = 0;
  // Compute work issued after this call sees the results of everything queued before.
  virtual void Wait() = 0;
};

// Communicators for n solver threads of one process that exchange through host memory.
// Each call blocks until all n ranks have made it.
std::vector<std::unique_ptr<Communicator>> MakeThreadCommunicators(int n);

// NCCL communicators for `devices` (one rank per device, rank i on devices[i]). Throws
// crema::Error when this build has no NCCL or NCCL fails to initialise.
std::vector<std::unique_ptr<Communicator>> MakeNcclCommunicators(const std::vector<int>& devices);
bool HasNccl();

struct DataParallelOptions {
  // GPU ids, one solver each (NCCL). Empty: cpu_solvers solvers on the CPU (threads).
  std::vector<int> devices;
  int cpu_solvers = 0;
  std::string resume_file;           // a .solverstate to resume from
  std::vector<std::string> weights;  // .caffemodel files to fine-tune from
  // Called with the root solver once it is built (attach the action function, callbacks).
  std::function<void(Solver&)> setup_root;
};

// Builds the solvers, trains to max_iter and returns the root solver (its net holds the
// trained weights; the other replicas are gone). User errors while building throw
// crema::Error; an error inside a solver thread during training is logged and ends the
// process with status 1 (the other solvers would otherwise wait for it forever).
std::unique_ptr<Solver> TrainDataParallel(const pb::SolverParameter& param,
                                          const DataParallelOptions& options);

}  // namespace crema
