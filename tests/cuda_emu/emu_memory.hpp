// crema's CUDA emulator: the "device memory" every emulated library shares.
//
// Device allocations live in one reserved address range (the arena) that is mapped
// PROT_NONE while no device operation runs, so host code that dereferences a device
// pointer faults at once, as it would on a real GPU. Kernels, copies and the emulated
// cuBLAS/cuDNN/NCCL open a DeviceScope, which makes the arena readable for their duration.
#pragma once

#include <cstddef>

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

}  // namespace crema_emu
