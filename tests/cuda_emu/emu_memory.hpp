// crema's CUDA emulator: the "device memory" every emulated library shares.
//
// Device allocations live in one reserved address range (the arena) that is mapped
// PROT_NONE while no device operation runs, so host code that dereferences a device
// pointer faults at once, as it would on a real GPU. Kernels, copies and the emulated
// cuBLAS/cuDNN/NCCL open a DeviceScope, which makes the arena readable for their duration.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>

namespace crema_emu {

// True when [p, p + bytes) lies inside one live device allocation.
bool IsDevice(const void* p, size_t bytes);

// Aborts with a message naming `what` unless [p, p + bytes) is device memory.
void RequireDevice(const void* p, size_t bytes, const char* what);

// While at least one DeviceScope exists (in any thread) the arena is readable and writable.
// When the last one closes, the guard bytes after every allocation are checked; an overrun
// is reported naming `what` (the kernel or library call that just ran).
class DeviceScope {
 public:
  explicit DeviceScope(const char* what = "a device library call");
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  const char* what_;
};

// Streams. Work queued on a stream (kernels, asynchronous copies and memsets, event records,
// waits, NCCL collectives) does not run when it is queued but when something needs it: a
// synchronisation (stream, event, device), a synchronous copy or library call (which first
// runs the calling thread's legacy default stream), cudaFree, or a stream waiting on an
// event. That is a legal CUDA schedule - the latest one - so host code that reads a result,
// or reuses a buffer, without the synchronisation CUDA requires sees stale data here.
// CREMA_EMU_SYNC=1 runs everything at once instead.
//
// Queues `op` on `stream` (nullptr, cudaStreamLegacy and cudaStreamPerThread mean the
// current device's legacy default stream).
void StreamSubmit(cudaStream_t stream, std::function<void()> op);
// Runs everything queued on `stream` so far.
void StreamFlush(cudaStream_t stream);

// Queued work runs in one thread at a time. A queued operation that must wait for another
// thread (an NCCL collective meeting the other ranks) gives up that turn while it waits.
int GiveUpTurn();  // returns what TakeTurnAgain needs
void TakeTurnAgain(int depth);

}  // namespace crema_emu
