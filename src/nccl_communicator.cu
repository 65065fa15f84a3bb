// NCCL communicators for data-parallel training (see include/crema/parallel.hpp). One rank
// per device; every collective runs on the rank's own communication stream, which waits
// (through an event) for the compute work queued so far on the default stream, so a
// layer's gradients are summed while the backward pass of the layers below it runs. Wait()
// makes the default stream wait for the communication stream, again without blocking the
// host.
#include <cuda_runtime.h>

#include "crema/parallel.hpp"
#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"

#ifdef CREMA_WITH_NCCL
#include <nccl.h>
#endif

namespace crema {

#ifdef CREMA_WITH_NCCL

namespace {

void check_nccl(ncclResult_t result, const char* what) {
  if (result != ncclSuccess)
    CREMA_THROW("NCCL error in " << what << ": " << ncclGetErrorString(result));
}

void check_cuda_call(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    CREMA_THROW("CUDA error in " << what << ": " << cudaGetErrorString(status));
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device)
      : comm_(comm), rank_(rank), size_(size), device_(device) {
    CudaSetDevice(device_);
    check_cuda_call(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check_cuda_call(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming),
                    "cudaEventCreate");
    check_cuda_call(cudaEventCreateWithFlags(&exchange_done_, cudaEventDisableTiming),
                    "cudaEventCreate");
  }
  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaEventDestroy(compute_done_);
    cudaEventDestroy(exchange_done_);
    cudaStreamDestroy(stream_);
    ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool on_device() const override { return true; }

  void AllReduceSum(float* data, size_t count) override {
    AfterCompute();
    check_nccl(ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm_, stream_),
               "ncclAllReduce");
  }
  void Broadcast(float* data, size_t count) override {
    AfterCompute();
    check_nccl(ncclBroadcast(data, data, count, ncclFloat, /*root=*/0, comm_, stream_),
               "ncclBroadcast");
  }
  void Wait() override {
    check_cuda_call(cudaEventRecord(exchange_done_, stream_), "cudaEventRecord");
    check_cuda_call(cudaStreamWaitEvent(cuda_stream(), exchange_done_, 0), "cudaStreamWaitEvent");
  }

 private:
  // The communication stream waits for everything queued on the compute stream so far.
  void AfterCompute() {
    check_cuda_call(cudaEventRecord(compute_done_, cuda_stream()), "cudaEventRecord");
    check_cuda_call(cudaStreamWaitEvent(stream_, compute_done_, 0), "cudaStreamWaitEvent");
  }

  ncclComm_t comm_;
  int rank_, size_, device_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr, exchange_done_ = nullptr;
};

}  // namespace

bool HasNccl() {
  return true;
}

std::vector<std::unique_ptr<Communicator>> MakeNcclCommunicators(const std::vector<int>& devices) {
  const int n = static_cast<int>(devices.size());
  CREMA_REQUIRE(n >= 1, "NCCL needs at least one device");
  std::vector<ncclComm_t> comms(n);
  check_nccl(ncclCommInitAll(comms.data(), n, devices.data()), "ncclCommInitAll");
  int version = 0;
  ncclGetVersion(&version);
  LOG(INFO) << "NCCL " << version << ": " << n << " rank(s)";
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < n; ++r)
    out.push_back(std::make_unique<NcclCommunicator>(comms[r], r, n, devices[r]));
  return out;
}

#else  // CUDA without NCCL

bool HasNccl() {
  return false;
}

std::vector<std::unique_ptr<Communicator>> MakeNcclCommunicators(const std::vector<int>&) {
  CREMA_THROW(
      "multi-GPU training needs NCCL, which this crema was built without (CMake did not find "
      "nccl.h / libnccl under /usr/local/cuda); install NCCL and rebuild, or train on one GPU");
}

#endif

}  // namespace crema
