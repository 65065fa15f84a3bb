// SyncedMemory: one buffer that lives on the host, on a device, or on both, copied lazily
// to wherever it is asked for next. Blob holds two of them (data and diff).
#pragma once

#include <cstddef>
#include <cstdint>

#include "crema/common.hpp"

namespace crema {

// Host allocation: 64-byte aligned (so vector kernels may use aligned loads). With CUDA
// and pinned == true, page-locked memory for asynchronous copies.
void* HostMalloc(size_t bytes, bool pinned);
void HostFree(void* ptr, bool pinned);

class SyncedMemory {
 public:
  // Where the newest copy is.
  enum class Head { UNINITIALIZED, AT_CPU, AT_GPU, SYNCED };

  SyncedMemory() = default;
  explicit SyncedMemory(size_t bytes);
  ~SyncedMemory();
  SyncedMemory(const SyncedMemory&) = delete;
  SyncedMemory& operator=(const SyncedMemory&) = delete;

  // Read access never marks the other side stale; mutable access does.
  const void* cpu_data();
  void* mutable_cpu_data();
  const void* gpu_data();
  void* mutable_gpu_data();

  // Points the host side at memory someone else owns (e.g. a prefetch buffer).
  void set_cpu_data(void* data);
  void set_gpu_data(void* data);

  Head head() const { return head_; }
  size_t size() const { return size_; }
  // The device buffer, or null when none is allocated yet; no copy, no state change.
  const void* gpu_ptr() const { return gpu_ptr_; }
  // A count that grows with every call that may change the contents (mutable_cpu_data,
  // mutable_gpu_data, set_cpu_data, set_gpu_data); copies between host and device leave it
  // alone. Derived copies of the contents (include/crema/activation_copies.hpp) compare it
  // to tell whether they are still current.
  uint64_t version() const { return version_; }

  // For work queued without these accessors (a replayed CUDA graph, src/net_graph.hpp):
  // copies the host's newer contents to the existing device buffer (nothing else), and
  // records that the device now holds the newest contents.
  void refresh_device();
  void mark_device_newer();

  // Starts an asynchronous host→device copy on `stream` (a cudaStream_t). GPU builds only.
  void async_gpu_push(void* stream);

 private:
  void to_cpu();
  void to_gpu();
  void check_device() const;

  void* cpu_ptr_ = nullptr;
  void* gpu_ptr_ = nullptr;
  size_t size_ = 0;
  Head head_ = Head::UNINITIALIZED;
  bool own_cpu_data_ = false;
  bool cpu_malloc_pinned_ = false;
  bool own_gpu_data_ = false;
  int device_ = -1;
  uint64_t version_ = 0;
};

}  // namespace crema
