#include "crema/syncedmem.hpp"

#include <cstdlib>
#include <cstring>

#ifdef CREMA_WITH_CUDA
#include "src/cuda_util.hpp"
#endif

namespace crema {

void* HostMalloc(size_t bytes, bool pinned) {
#ifdef CREMA_WITH_CUDA
  if (pinned) return CudaHostMalloc(bytes);
#endif
  void* ptr = nullptr;
  const size_t rounded = (bytes + 63) / 64 * 64;
  if (posix_memalign(&ptr, 64, rounded > 0 ? rounded : 64) != 0) ptr = nullptr;
  if (!ptr) CREMA_THROW("out of host memory allocating " << bytes << " bytes");
  return ptr;
}

void HostFree(void* ptr, bool pinned) {
#ifdef CREMA_WITH_CUDA
  if (pinned) return CudaHostFree(ptr);
#endif
  std::free(ptr);
}

SyncedMemory::SyncedMemory(size_t bytes) : size_(bytes) {}

SyncedMemory::~SyncedMemory() {
  if (cpu_ptr_ && own_cpu_data_) HostFree(cpu_ptr_, cpu_malloc_pinned_);
#ifdef CREMA_WITH_CUDA
  if (gpu_ptr_ && own_gpu_data_) CudaDeviceFree(gpu_ptr_, device_);
#endif
}

void SyncedMemory::to_cpu() {
  switch (head_) {
    case Head::UNINITIALIZED:
      cpu_ptr_ = HostMalloc(size_, false);
      std::memset(cpu_ptr_, 0, size_);
      own_cpu_data_ = true;
      head_ = Head::AT_CPU;
      break;
    case Head::AT_GPU:
#ifdef CREMA_WITH_CUDA
      if (!cpu_ptr_) {
        cpu_ptr_ = HostMalloc(size_, false);
        own_cpu_data_ = true;
      }
      CudaCopyDeviceToHost(cpu_ptr_, gpu_ptr_, size_);
      head_ = Head::SYNCED;
#else
      LOG(FATAL) << "memory at GPU in a CPU-only build";
#endif
      break;
    case Head::AT_CPU:
    case Head::SYNCED:
      break;
  }
}

void SyncedMemory::to_gpu() {
#ifdef CREMA_WITH_CUDA
  switch (head_) {
    case Head::UNINITIALIZED:
      device_ = CudaCurrentDevice();
      gpu_ptr_ = CudaDeviceMalloc(size_);
      CudaMemsetZero(gpu_ptr_, size_);
      own_gpu_data_ = true;
      head_ = Head::AT_GPU;
      break;
    case Head::AT_CPU:
      if (!gpu_ptr_) {
        device_ = CudaCurrentDevice();
        gpu_ptr_ = CudaDeviceMalloc(size_);
        own_gpu_data_ = true;
      }
      CudaCopyHostToDevice(gpu_ptr_, cpu_ptr_, size_);
      head_ = Head::SYNCED;
      break;
    case Head::AT_GPU:
    case Head::SYNCED:
      break;
  }
#else
  CREMA_THROW("this crema was built without CUDA: no GPU memory is available");
#endif
}

void SyncedMemory::refresh_device() {
  if (head_ == Head::AT_CPU && gpu_ptr_) to_gpu();
}

void SyncedMemory::mark_device_newer() {
  if (gpu_ptr_ && head_ == Head::SYNCED) head_ = Head::AT_GPU;
}

const void* SyncedMemory::cpu_data() {
  to_cpu();
  return cpu_ptr_;
}

void* SyncedMemory::mutable_cpu_data() {
  to_cpu();
  head_ = Head::AT_CPU;
  ++version_;
  return cpu_ptr_;
}

const void* SyncedMemory::gpu_data() {
  to_gpu();
  return gpu_ptr_;
}

void* SyncedMemory::mutable_gpu_data() {
  to_gpu();
  head_ = Head::AT_GPU;
  ++version_;
  return gpu_ptr_;
}

void SyncedMemory::set_cpu_data(void* data) {
  CHECK(data);
  if (own_cpu_data_) HostFree(cpu_ptr_, cpu_malloc_pinned_);
  cpu_ptr_ = data;
  head_ = Head::AT_CPU;
  own_cpu_data_ = false;
  ++version_;
}

void SyncedMemory::set_gpu_data(void* data) {
#ifdef CREMA_WITH_CUDA
  CHECK(data);
  if (own_gpu_data_) CudaDeviceFree(gpu_ptr_, device_);
  gpu_ptr_ = data;
  head_ = Head::AT_GPU;
  own_gpu_data_ = false;
  ++version_;
#else
  CREMA_THROW("this crema was built without CUDA");
#endif
}

void SyncedMemory::async_gpu_push(void* stream) {
#ifdef CREMA_WITH_CUDA
  CHECK(head_ == Head::AT_CPU);
  if (!gpu_ptr_) {
    device_ = CudaCurrentDevice();
    gpu_ptr_ = CudaDeviceMalloc(size_);
    own_gpu_data_ = true;
  }
  CudaCopyHostToDeviceAsync(gpu_ptr_, cpu_ptr_, size_, stream);
  head_ = Head::SYNCED;
#else
  CREMA_THROW("this crema was built without CUDA");
#endif
}

void SyncedMemory::check_device() const {}

}  // namespace crema
