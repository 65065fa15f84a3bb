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
// current device's legacy default stream). No stream-capture check: callers ask
// RefuseIfCapturing first.
void StreamSubmit(cudaStream_t stream, std::function<void()> op);
// Runs everything queued on `stream` so far.
void StreamFlush(cudaStream_t stream);

// Stream capture (cudaStreamBeginCapture .. cudaStreamEndCapture). A capture belongs to one
// stream handle: a created stream, or the per-thread stream of the thread that began it
// (cudaStreamPerThread shares the legacy stream's queue here, but each thread's capture is
// its own). Work issued on a capturing stream is recorded into the capture's graph, in issue
// order, instead of being queued; cudaGraphLaunch runs the records again, in that order.
// While a thread captures a stream that synchronises with the legacy stream, that thread's
// work on the legacy stream is refused (CUDA's implicit-synchronisation error) and
// invalidates the capture; work on an invalidated capture is refused until it ends.
enum class CaptureOutcome {
  kNotCapturing,  // no capture concerns the call: run it as usual
  kRecorded,      // `op` went into the graph; nothing ran
  kRefused,       // an error was reported; nothing ran or was recorded
};
// For a library call on `stream` (its handle's stream) that has checked its arguments and
// built `op`, which must own copies of every host value it reads (scalars, descriptor
// contents) and may run any number of times. `what` names the call in messages.
CaptureOutcome RecordIfCapturing(cudaStream_t stream, const std::function<void()>& op,
                                 const char* what);
// For work that may not be captured (a result returned to host memory, an NCCL collective):
// true, after reporting the error and invalidating the capture, when the calling thread's
// work on `stream` would be captured or refused; false when no capture concerns it.
bool RefuseIfCapturing(cudaStream_t stream, const char* what);
// For a call that allocates or synchronises behind the streams' backs (cudaMalloc,
// cudnnFind*): true, after invalidating them, when the calling thread has a capture begun
// in cudaStreamCaptureModeGlobal or ThreadLocal (Global is treated as ThreadLocal: other
// threads' captures are not looked at).
bool RefuseUnsafeCall(const char* what);

// Queued work runs in one thread at a time. A queued operation that must wait for another
// thread (an NCCL collective meeting the other ranks) gives up that turn while it waits.
int GiveUpTurn();  // returns what TakeTurnAgain needs
void TakeTurnAgain(int depth);

}  // namespace crema_emu
