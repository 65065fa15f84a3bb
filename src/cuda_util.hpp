// The thin CUDA runtime layer the core needs (memory, copies, a few BLAS-1 routines on
// device arrays). Only compiled with CREMA_WITH_CUDA; the GPU backend builds on it.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstddef>
#include <functional>

namespace crema {

int CudaCurrentDevice();
void CudaSetDevice(int device);
int CudaDeviceCount();
void* CudaHostMalloc(size_t bytes);  // page-locked
void CudaHostFree(void* ptr);
void* CudaDeviceMalloc(size_t bytes);
void CudaDeviceFree(void* ptr, int device);
void CudaMemsetZero(void* ptr, size_t bytes);
void CudaCopyHostToDevice(void* dst, const void* src, size_t bytes);
void CudaCopyDeviceToHost(void* dst, const void* src, size_t bytes);
void CudaCopyDeviceToDevice(void* dst, const void* src, size_t bytes);
void CudaCopyHostToDeviceAsync(void* dst, const void* src, size_t bytes, void* stream);
// stream: a cudaStream_t, or null for the legacy default stream.
void CudaCopyDeviceToHostAsync(void* dst, const void* src, size_t bytes, void* stream);

// The shortest of `repeats` timings (ms, CUDA events on the legacy default stream) of the GPU
// work `work` queues there, after one untimed run. Synchronises the device.
float CudaTimeMs(const std::function<void()>& work, int repeats);

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
