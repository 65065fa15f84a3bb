#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>

#include "crema/common.hpp"
#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"

namespace crema {
namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    CREMA_THROW("CUDA error in " << what << ": " << cudaGetErrorString(status));
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    CREMA_THROW("cuBLAS error " << static_cast<int>(status) << " in " << what);
}

// One cuBLAS handle per host thread, created on first use, queueing on crema's stream.
cublasHandle_t cublas_handle() {
  thread_local cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "cublasCreate");
    check_cublas(cublasSetStream(h, cuda_stream()), "cublasSetStream");
    return h;
  }();
  return handle;
}

}  // namespace

float CudaTimeMs(const std::function<void()>& work, int repeats) {
  cudaEvent_t start = nullptr, end = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&end), "cudaEventCreate");
  work();  // warm-up: first-use allocations and library set-up stay out of the timing
  float best = 0.f;
  for (int r = 0; r < repeats; ++r) {
    check_cuda(cudaEventRecord(start, cuda_stream()), "cudaEventRecord");
    work();
    check_cuda(cudaEventRecord(end, cuda_stream()), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(end), "cudaEventSynchronize");
    float ms = 0.f;
    check_cuda(cudaEventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
    if (r == 0 || ms < best) best = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(end);
  return best;
}

namespace {
std::atomic<uint64_t> g_shared_scratch_generation{0};
}  // namespace

uint64_t CudaSharedScratchGeneration() {
  return g_shared_scratch_generation.load();
}

void CudaSharedScratchReallocated() {
  ++g_shared_scratch_generation;
}

void* CudaCublasHandle() {
  return cublas_handle();
}

int CudaCurrentDevice() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

void CudaSetDevice(int device) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
}

int CudaMultiprocessorCount() {
  int value = 0;
  check_cuda(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, CudaCurrentDevice()),
             "cudaDeviceGetAttribute (multiprocessors)");
  return value;
}

size_t CudaMaxSharedBytesPerBlockOptin() {
  int value = 0;
  check_cuda(
      cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, CudaCurrentDevice()),
      "cudaDeviceGetAttribute (shared memory per block)");
  return static_cast<size_t>(value);
}

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

void* CudaHostMalloc(size_t bytes) {
  void* ptr = nullptr;
  check_cuda(cudaMallocHost(&ptr, bytes > 0 ? bytes : 1), "cudaMallocHost");
  return ptr;
}

void CudaHostFree(void* ptr) {
  cudaFreeHost(ptr);
}

void* CudaDeviceMalloc(size_t bytes) {
  void* ptr = nullptr;
  check_cuda(cudaMalloc(&ptr, bytes > 0 ? bytes : 1), "cudaMalloc");
  return ptr;
}

void CudaDeviceFree(void* ptr, int device) {
  int current = 0;
  cudaGetDevice(&current);
  if (device >= 0 && device != current) cudaSetDevice(device);
  cudaFree(ptr);
  if (device >= 0 && device != current) cudaSetDevice(current);
}

// Copies and fills go to crema's stream (cuda_stream()), after the work queued there. A copy
// to or from the host returns when it is done, as cudaMemcpy does (the host may reuse or read
// the buffer then); one between device arrays, and a fill, only queue.
void CudaMemsetAsync(void* ptr, int byte_value, size_t bytes) {
  check_cuda(cudaMemsetAsync(ptr, byte_value, bytes, cuda_stream()), "cudaMemsetAsync");
}

void CudaMemsetZero(void* ptr, size_t bytes) {
  CudaMemsetAsync(ptr, 0, bytes);
}

void CudaCopyHostToDevice(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_stream()),
             "cudaMemcpyAsync H2D");
  check_cuda(cudaStreamSynchronize(cuda_stream()), "cudaStreamSynchronize (H2D copy)");
}

void CudaCopyDeviceToHost(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_stream()),
             "cudaMemcpyAsync D2H");
  check_cuda(cudaStreamSynchronize(cuda_stream()), "cudaStreamSynchronize (D2H copy)");
}

void CudaCopyDeviceToDevice(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream()),
             "cudaMemcpyAsync D2D");
}

void CudaCopyHostToDeviceAsync(void* dst, const void* src, size_t bytes, void* stream) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                             stream ? static_cast<cudaStream_t>(stream) : cuda_stream()),
             "cudaMemcpyAsync H2D");
}

void CudaCopyDeviceToHostAsync(void* dst, const void* src, size_t bytes, void* stream) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost,
                             stream ? static_cast<cudaStream_t>(stream) : cuda_stream()),
             "cudaMemcpyAsync (device to host)");
}

bool CudaStreamCapturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check_cuda(cudaStreamIsCapturing(cuda_stream(), &status), "cudaStreamIsCapturing");
  return status != cudaStreamCaptureStatusNone;
}

DeferredDeviceReport::DeferredDeviceReport(size_t bytes) : bytes_(bytes) {
  host_ = CudaHostMalloc(bytes);
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  arrived_ = event;
}

DeferredDeviceReport::~DeferredDeviceReport() {
  if (arrived_) cudaEventDestroy(static_cast<cudaEvent_t>(arrived_));
  CudaHostFree(host_);
}

void DeferredDeviceReport::Queue(const void* device_bytes) {
  CudaCopyDeviceToHostAsync(host_, device_bytes, bytes_, nullptr);
  check_cuda(cudaEventRecord(static_cast<cudaEvent_t>(arrived_), cuda_stream()), "cudaEventRecord");
  pending_ = true;
}

const void* DeferredDeviceReport::Collect() {
  if (!pending_) return nullptr;
  pending_ = false;
  check_cuda(cudaEventSynchronize(static_cast<cudaEvent_t>(arrived_)), "cudaEventSynchronize");
  return host_;
}

void CudaStreamSynchronize() {
  check_cuda(cudaStreamSynchronize(cuda_stream()), "cudaStreamSynchronize");
}

void gpu_axpy(int n, float alpha, const float* x, float* y) {
  check_cublas(cublasSaxpy(cublas_handle(), n, &alpha, x, 1, y, 1), "cublasSaxpy");
}

void gpu_scal(int n, float alpha, float* x) {
  check_cublas(cublasSscal(cublas_handle(), n, &alpha, x, 1), "cublasSscal");
}

float gpu_asum(int n, const float* x) {
  float result = 0;
  check_cublas(cublasSasum(cublas_handle(), n, x, 1, &result), "cublasSasum");
  return result;
}

float gpu_dot(int n, const float* x, const float* y) {
  float result = 0;
  check_cublas(cublasSdot(cublas_handle(), n, x, 1, y, 1, &result), "cublasSdot");
  return result;
}

}  // namespace crema
