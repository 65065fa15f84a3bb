// The thin CUDA runtime layer the core needs (memory, copies, a few BLAS-1 routines on
// device arrays). Only compiled with CREMA_WITH_CUDA; the GPU backend builds on it.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstddef>
#include <cstdint>
#include <functional>

namespace crema {

int CudaCurrentDevice();
void CudaSetDevice(int device);
int CudaDeviceCount();
// Of the current device: multiprocessors, and the shared memory a block may opt into.
int CudaMultiprocessorCount();
size_t CudaMaxSharedBytesPerBlockOptin();
void* CudaHostMalloc(size_t bytes);  // page-locked
void CudaHostFree(void* ptr);
void* CudaDeviceMalloc(size_t bytes);
void CudaDeviceFree(void* ptr, int device);
void CudaMemsetZero(void* ptr, size_t bytes);
void CudaMemsetAsync(void* ptr, int byte_value, size_t bytes);  // on crema's stream
void CudaCopyHostToDevice(void* dst, const void* src, size_t bytes);
void CudaCopyDeviceToHost(void* dst, const void* src, size_t bytes);
void CudaCopyDeviceToDevice(void* dst, const void* src, size_t bytes);
// stream: a cudaStream_t, or null for crema's stream (src/cuda_stream.hpp).
void CudaCopyHostToDeviceAsync(void* dst, const void* src, size_t bytes, void* stream);
void CudaCopyDeviceToHostAsync(void* dst, const void* src, size_t bytes, void* stream);
// Waits for the work the calling thread queued on crema's stream of the current device (so
// that another thread, with a stream of its own, may use what it wrote).
void CudaStreamSynchronize();
// Whether crema's stream of the calling thread is being captured into a CUDA graph.
bool CudaStreamCapturing();

// The shortest of `repeats` timings (ms, CUDA events on crema's stream) of the GPU
// work `work` queues there, after one untimed run. Synchronises the device.
float CudaTimeMs(const std::function<void()>& work, int repeats);

// Counts the reallocations of device scratch that is shared between layers (the cuDNN
// workspace): work captured into a CUDA graph before the count changed may point at freed
// memory (src/net_graph.cpp).
uint64_t CudaSharedScratchGeneration();
void CudaSharedScratchReallocated();

// A few bytes that device code writes about its inputs (a bad label, a bad id), examined on
// the host without stalling the GPU: Queue copies them to page-locked memory behind the work
// already queued on crema's stream and records their arrival; Collect, a pass later, waits
// for that arrival (normally long past) and returns the copy, or null when nothing is queued.
class DeferredDeviceReport {
 public:
  explicit DeferredDeviceReport(size_t bytes);
  ~DeferredDeviceReport();
  DeferredDeviceReport(const DeferredDeviceReport&) = delete;
  DeferredDeviceReport& operator=(const DeferredDeviceReport&) = delete;
  void Queue(const void* device_bytes);
  const void* Collect();

 private:
  size_t bytes_;
  void* host_ = nullptr;     // page-locked
  void* arrived_ = nullptr;  // cudaEvent_t
  bool pending_ = false;
};

// The calling thread's cuBLAS handle (a cublasHandle_t), created on first use; shared with
// the GPU math in src/math_functions.cu.
void* CudaCublasHandle();

// cuBLAS-backed level-1 routines on device arrays (results returned to the host).
void gpu_axpy(int n, float alpha, const float* x, float* y);
void gpu_scal(int n, float alpha, float* x);
float gpu_asum(int n, const float* x);
float gpu_dot(int n, const float* x, const float* y);

}  // namespace crema

#endif  // CREMA_WITH_CUDA
