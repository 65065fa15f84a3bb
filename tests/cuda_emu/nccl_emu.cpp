// crema's CUDA emulator: NCCL collectives between ranks that live in one process.
//
// ncclCommInitAll makes one clique of n ranks. A collective is queued on its stream, as in
// NCCL; when it runs, it blocks until every rank of the clique has reached it (ranks issue
// collectives in the same order, as NCCL requires), the last rank to arrive computes the
// result for all, and all go on. Collectives are not captured: one issued on a capturing
// stream fails (ncclInvalidUsage) and invalidates the capture.
#include <nccl.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"

namespace {

struct Operands {
  const void* send = nullptr;
  void* recv = nullptr;
};

struct Clique {
  explicit Clique(int n) : size(n), operands(n) {}
  const int size;
  std::mutex mutex;
  std::condition_variable all_arrived;
  int arrived = 0;
  uint64_t generation = 0;
  std::vector<Operands> operands;
};

}  // namespace

struct ncclComm {
  std::shared_ptr<Clique> clique;
  int rank;
};

namespace {

size_t TypeSize(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8:
      return 1;
    case ncclFloat16:
    case ncclBfloat16:
      return 2;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64:
      return 8;
    default:
      return 4;
  }
}

template <typename T>
void SumInto(const Clique& clique, size_t count) {
  std::vector<T> sum(count, T(0));
  for (const Operands& op : clique.operands)
    for (size_t i = 0; i < count; ++i) sum[i] += static_cast<const T*>(op.send)[i];
  for (const Operands& op : clique.operands) std::memcpy(op.recv, sum.data(), count * sizeof(T));
}

// Publishes this rank's operands, waits for the others; the last one runs `combine`.
template <typename Combine>
void Collective(ncclComm_t comm, const void* send, void* recv, Combine combine) {
  Clique& clique = *comm->clique;
  std::unique_lock<std::mutex> lock(clique.mutex);
  clique.operands[comm->rank] = Operands{send, recv};
  const uint64_t generation = clique.generation;
  if (++clique.arrived == clique.size) {
    {
      crema_emu::DeviceScope scope("an NCCL collective");
      combine(clique);
    }
    clique.arrived = 0;
    ++clique.generation;
    clique.all_arrived.notify_all();
  } else {
    // The other ranks' threads must be able to run their queued work meanwhile.
    const int turn = crema_emu::GiveUpTurn();
    clique.all_arrived.wait(lock, [&] { return clique.generation != generation; });
    lock.unlock();
    crema_emu::TakeTurnAgain(turn);
  }
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclInvalidArgument:
      return "invalid argument (emulated NCCL)";
    case ncclInvalidUsage:
      return "invalid usage (emulated NCCL)";
    default:
      return "NCCL error (emulated)";
  }
}

ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int* devlist) {
  if (ndev < 1 || comms == nullptr) return ncclInvalidArgument;
  auto clique = std::make_shared<Clique>(ndev);
  for (int r = 0; r < ndev; ++r) comms[r] = new ncclComm{clique, r};
  (void)devlist;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  *count = comm->clique->size;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  if (comm == nullptr) return ncclInvalidArgument;
  if (op != ncclSum) return ncclInvalidUsage;  // crema only sums
  if (type != ncclFloat32 && type != ncclFloat64 && type != ncclInt32) return ncclInvalidUsage;
  const size_t bytes = count * TypeSize(type);
  if (count > 0) {
    crema_emu::RequireDevice(send, bytes, "ncclAllReduce send buffer");
    crema_emu::RequireDevice(recv, bytes, "ncclAllReduce receive buffer");
  }
  if (crema_emu::RefuseIfCapturing(stream, "ncclAllReduce")) return ncclInvalidUsage;
  crema_emu::StreamSubmit(stream, [=] {
    Collective(comm, send, recv, [count, type](const Clique& clique) {
      if (type == ncclFloat32) SumInto<float>(clique, count);
      if (type == ncclFloat64) SumInto<double>(clique, count);
      if (type == ncclInt32) SumInto<int32_t>(clique, count);
    });
  });
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t stream) {
  if (comm == nullptr || root < 0 || root >= comm->clique->size) return ncclInvalidArgument;
  const size_t bytes = count * TypeSize(type);
  if (count > 0) {
    if (comm->rank == root) crema_emu::RequireDevice(send, bytes, "ncclBroadcast send buffer");
    crema_emu::RequireDevice(recv, bytes, "ncclBroadcast receive buffer");
  }
  if (crema_emu::RefuseIfCapturing(stream, "ncclBroadcast")) return ncclInvalidUsage;
  crema_emu::StreamSubmit(stream, [=] {
    Collective(comm, send, recv, [bytes, root](const Clique& clique) {
      const void* source = clique.operands[root].send;
      for (const Operands& op : clique.operands)
        if (op.recv != source) std::memmove(op.recv, source, bytes);
    });
  });
  return ncclSuccess;
}

ncclResult_t ncclGroupStart() {
  return ncclSuccess;
}
ncclResult_t ncclGroupEnd() {
  return ncclSuccess;
}

}  // extern "C"
