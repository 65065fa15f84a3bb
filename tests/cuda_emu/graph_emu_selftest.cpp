// Self-test of the CUDA emulator's stream capture and graphs (emu_runtime.cpp, with the
// emulated cuBLAS, cuDNN and NCCL): what a capture records, that nothing recorded runs before
// cudaGraphLaunch, that replays see current memory and captured scalars, and that each call
// CUDA forbids during a capture fails and invalidates it. Plain main(); the exit status is the
// number of failed checks. The refused calls print the emulator's messages: that is expected.
#include "tests/cuda_emu/emu_device.hpp"

#include <cudnn.h>
#include <nccl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/cuda_emu/selftest_check.hpp"

namespace {

template <typename T>
void CheckCode(T got, T want, const char* call, int line) {
  selftest::Check(got == want,
                  std::string(call) + ": got " + std::to_string(static_cast<long long>(got)) +
                      ", want " + std::to_string(static_cast<long long>(want)),
                  line);
}
#define CHECK_CODE(call, want) CheckCode((call), (want), #call, __LINE__)
#define CHECK_OK(call) CHECK_CODE((call), cudaSuccess)

cudaStream_t const kPerThread = cudaStreamPerThread;

// ---- Kernels, launched as translate.py rewrites `k<<<grid, block, 0, stream>>>(args)` ----

__global__ void AddOne(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.f;
}

__global__ void Scale(const float* x, float* y, float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i];
}

void LaunchAddOne(float* x, int n, cudaStream_t stream) {
  ::crema_emu::Launch("AddOne", ::crema_emu::LaunchConfig((n + 31) / 32, 32, 0, stream),
                      [](auto... a) { AddOne(a...); })(x, n);
}

void LaunchScale(const float* x, float* y, float a, int n, cudaStream_t stream) {
  ::crema_emu::Launch("Scale", ::crema_emu::LaunchConfig((n + 31) / 32, 32, 0, stream),
                      [](auto... a) { Scale(a...); })(x, y, a, n);
}

// ---- Host helpers (synchronous copies on the legacy stream) ----------------------------

float* DeviceFloats(size_t n) {
  void* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) std::abort();
  return static_cast<float*>(p);
}

void Upload(float* d, const std::vector<float>& h) {
  if (cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)
    std::abort();
}

std::vector<float> Download(const float* d, size_t n) {
  std::vector<float> h(n);
  if (cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess)
    std::abort();
  return h;
}

bool AllEqual(const std::vector<float>& v, float value) {
  for (float x : v)
    if (x != value) return false;
  return true;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

cudaStreamCaptureStatus CaptureStatus(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) std::abort();
  return status;
}

size_t NodeCount(cudaGraph_t graph) {
  size_t count = 0;
  if (cudaGraphGetNodes(graph, nullptr, &count) != cudaSuccess) std::abort();
  return count;
}

// Instantiates, launches `times` on `stream`, waits, and destroys graph and exec.
void Replay(cudaGraph_t graph, int times, cudaStream_t stream) {
  cudaGraphExec_t exec = nullptr;
  CHECK_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < times; ++i) CHECK_OK(cudaGraphLaunch(exec, stream));
  CHECK_OK(cudaStreamSynchronize(stream));
  CHECK_OK(cudaGraphExecDestroy(exec));
  CHECK_OK(cudaGraphDestroy(graph));
}

// ---- Cases -----------------------------------------------------------------------------

// Kernels, a memset and copies recorded on the per-thread stream; nothing runs until the graph
// is launched, and every launch runs everything again.
void TestCaptureAndReplay() {
  const int n = 50;
  float* a = DeviceFloats(n);
  float* b = DeviceFloats(n);
  float* c = DeviceFloats(n);
  float* pinned = nullptr;
  CHECK_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned), n * sizeof(float)));
  for (int i = 0; i < n; ++i) pinned[i] = static_cast<float>(i);
  Upload(a, std::vector<float>(n, 0.f));
  Upload(b, std::vector<float>(n, 7.f));
  Upload(c, std::vector<float>(n, 7.f));
  cudaEvent_t event;
  CHECK_OK(cudaEventCreate(&event));

  CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusNone);
  CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusActive);
  CHECK_OK(cudaMemsetAsync(b, 0, n * sizeof(float), kPerThread));
  CHECK_OK(cudaMemcpyAsync(b, pinned, n * sizeof(float), cudaMemcpyHostToDevice, kPerThread));
  LaunchAddOne(a, n, kPerThread);
  LaunchAddOne(b, n, kPerThread);
  CHECK_OK(cudaEventRecord(event, kPerThread));  // no node
  CHECK_OK(cudaMemcpyAsync(c, b, n * sizeof(float), cudaMemcpyDeviceToDevice, kPerThread));
  CHECK_OK(cudaGetLastError());
#if CUDART_VERSION >= 13000
  cudaStreamCaptureStatus status;
  unsigned long long id = 0;
  cudaGraph_t building = nullptr;
  const cudaGraphNode_t* deps = nullptr;
  size_t num_deps = 0;
  CHECK_OK(
      cudaStreamGetCaptureInfo(kPerThread, &status, &id, &building, &deps, nullptr, &num_deps));
  CHECK(status == cudaStreamCaptureStatusActive && id != 0 && building != nullptr);
  CHECK(num_deps == 1 && deps != nullptr && deps[0] != nullptr);
#endif
  cudaGraph_t graph = nullptr;
  CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
  CHECK(graph != nullptr);
  CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusNone);

  // Nothing ran at capture time (cudaMemcpy waits for all queued legacy-stream work).
  CHECK(AllEqual(Download(a, n), 0.f));
  CHECK(AllEqual(Download(b, n), 7.f));
  CHECK(AllEqual(Download(c, n), 7.f));

  CHECK(NodeCount(graph) == 5);
  cudaGraphNode_t nodes[7];
  size_t count = 7;
  CHECK_OK(cudaGraphGetNodes(graph, nodes, &count));
  CHECK(count == 5 && nodes[5] == nullptr && nodes[6] == nullptr);
  const cudaGraphNodeType want[5] = {cudaGraphNodeTypeMemset, cudaGraphNodeTypeMemcpy,
                                     cudaGraphNodeTypeKernel, cudaGraphNodeTypeKernel,
                                     cudaGraphNodeTypeMemcpy};
  for (int i = 0; i < 5; ++i) {
    cudaGraphNodeType type;
    CHECK_OK(cudaGraphNodeGetType(nodes[i], &type));
    CHECK(type == want[i]);
  }
  count = 2;
  CHECK_OK(cudaGraphGetNodes(graph, nodes, &count));
  CHECK(count == 2 && nodes[0] != nullptr && nodes[1] != nullptr);

  cudaGraphExec_t exec = nullptr;
  CHECK_OK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK_OK(cudaGraphDestroy(graph));  // the executable graph stands alone
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaStreamSynchronize(kPerThread));
  CHECK(AllEqual(Download(a, n), 2.f));
  std::vector<float> want_b(n);
  for (int i = 0; i < n; ++i) want_b[i] = static_cast<float>(i) + 1.f;
  CHECK(Download(b, n) == want_b);
  CHECK(Download(c, n) == want_b);

  // On a created stream, after a launch on another one: launches of one executable graph run
  // in launch order, so waiting for the second waits for the first.
  cudaStream_t s1, s2;
  CHECK_OK(cudaStreamCreate(&s1));
  CHECK_OK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  CHECK_OK(cudaGraphLaunch(exec, s1));
  CHECK_OK(cudaGraphLaunch(exec, s2));
  CHECK_OK(cudaStreamSynchronize(s2));
  CHECK(AllEqual(Download(a, n), 4.f));
  CHECK_OK(cudaGraphExecDestroy(exec));

  // The same with cudaGraphInstantiateWithFlags, and an empty capture.
  CHECK_OK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
  LaunchAddOne(a, n, s1);
  CHECK_OK(cudaStreamEndCapture(s1, &graph));
  CHECK_OK(cudaGraphInstantiateWithFlags(&exec, graph, 0));
  CHECK_OK(cudaGraphLaunch(exec, s1));
  CHECK_OK(cudaStreamSynchronize(s1));
  CHECK(AllEqual(Download(a, n), 5.f));
  CHECK_OK(cudaGraphExecDestroy(exec));
  CHECK_OK(cudaGraphDestroy(graph));
  CHECK_OK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeThreadLocal));
  CHECK_OK(cudaStreamEndCapture(s1, &graph));
  CHECK(graph != nullptr && NodeCount(graph) == 0);
  Replay(graph, 1, s1);

  CHECK_OK(cudaStreamDestroy(s1));
  CHECK_OK(cudaStreamDestroy(s2));
  CHECK_OK(cudaEventDestroy(event));
  CHECK_OK(cudaFreeHost(pinned));
  CHECK_OK(cudaFree(a));
  CHECK_OK(cudaFree(b));
  CHECK_OK(cudaFree(c));
}

// A replay reads device memory as it is then; kernel scalars are the captured values.
void TestReplayReadsCurrentInput() {
  const int n = 40;
  float* x = DeviceFloats(n);
  float* y = DeviceFloats(n);
  float factor = 2.f;
  CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  LaunchScale(x, y, factor, n, kPerThread);
  cudaGraph_t graph = nullptr;
  CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
  factor = 100.f;
  cudaGraphExec_t exec = nullptr;
  CHECK_OK(cudaGraphInstantiate(&exec, graph, 0));
  Upload(x, std::vector<float>(n, 1.f));
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaStreamSynchronize(kPerThread));
  CHECK(AllEqual(Download(y, n), 2.f));
  Upload(x, std::vector<float>(n, 5.f));
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaStreamSynchronize(kPerThread));
  CHECK(AllEqual(Download(y, n), 10.f));
  CHECK_OK(cudaGraphExecDestroy(exec));
  CHECK_OK(cudaGraphDestroy(graph));
  CHECK_OK(cudaFree(x));
  CHECK_OK(cudaFree(y));
}

std::vector<float> Ramp(size_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = offset + scale * static_cast<float>((i * 7) % 13) - 3.f;
  return v;
}

// cuBLAS calls recorded with their scalars: the replay equals the eager call bit for bit,
// though the host scalars changed after the capture.
void TestCublas() {
  const int m = 7, n = 5, k = 6;
  float* A = DeviceFloats(m * k);
  float* B = DeviceFloats(k * n);
  float* C = DeviceFloats(m * n);
  float* y = DeviceFloats(m);
  Upload(A, Ramp(m * k, 0.25f, 0.f));
  Upload(B, Ramp(k * n, 0.5f, 1.f));
  cublasHandle_t handle;
  CHECK_CODE(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  CHECK_CODE(cublasSetStream(handle, kPerThread), CUBLAS_STATUS_SUCCESS);

  float alpha = 1.5f, beta = 0.f, axpy = -0.75f;
  CHECK_CODE(
      cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A, m, B, k, &beta, C, m),
      CUBLAS_STATUS_SUCCESS);
  Upload(y, std::vector<float>(m, 1.f));
  CHECK_CODE(cublasSaxpy(handle, m, &axpy, C, 1, y, 1), CUBLAS_STATUS_SUCCESS);
  const std::vector<float> c_eager = Download(C, m * n), y_eager = Download(y, m);

  Upload(C, std::vector<float>(m * n, 0.f));
  CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  CHECK_OK(cudaMemsetAsync(C, 0xff, m * n * sizeof(float), kPerThread));  // NaN: beta 0 ignores C
  CHECK_CODE(
      cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A, m, B, k, &beta, C, m),
      CUBLAS_STATUS_SUCCESS);
  CHECK_CODE(cublasSaxpy(handle, m, &axpy, C, 1, y, 1), CUBLAS_STATUS_SUCCESS);
  cudaGraph_t graph = nullptr;
  CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
  alpha = 99.f;
  beta = 1.f;
  axpy = 3.f;
  CHECK(AllEqual(Download(C, m * n), 0.f));  // not run yet
  CHECK(NodeCount(graph) == 3);
  Upload(y, std::vector<float>(m, 1.f));
  CHECK_CODE(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);  // the graph does not need it
  Replay(graph, 1, kPerThread);
  CHECK(SameBits(Download(C, m * n), c_eager));
  CHECK(SameBits(Download(y, m), y_eager));
  CHECK_OK(cudaFree(A));
  CHECK_OK(cudaFree(B));
  CHECK_OK(cudaFree(C));
  CHECK_OK(cudaFree(y));
}

// cuDNN descriptors for a 2 -> 3 channel 3x3 convolution (pad 1) of a 1x2x5x5 input.
struct ConvSetup {
  cudnnHandle_t handle;
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  cudnnActivationDescriptor_t relu;

  ConvSetup() {
    cudnnCreate(&handle);
    cudnnCreateTensorDescriptor(&x);
    cudnnCreateTensorDescriptor(&y);
    cudnnCreateTensorDescriptor(&bias);
    cudnnCreateFilterDescriptor(&w);
    cudnnCreateConvolutionDescriptor(&conv);
    cudnnCreateActivationDescriptor(&relu);
    cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 5, 5);
    cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 5, 5);
    cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1);
    const int w_dims[4] = {3, 2, 3, 3};
    cudnnSetFilterNdDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, w_dims);
    const int pad[2] = {1, 1}, stride[2] = {1, 1}, dilation[2] = {1, 1};
    cudnnSetConvolutionNdDescriptor(conv, 2, pad, stride, dilation, CUDNN_CROSS_CORRELATION,
                                    CUDNN_DATA_FLOAT);
    cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0);
  }
  ~ConvSetup() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyActivationDescriptor(relu);
    cudnnDestroy(handle);
  }
};

// Convolution, bias and ReLU through cuDNN: replayed equal to the eager calls, after the
// descriptors were reconfigured or destroyed and the scalars changed.
void TestCudnn() {
  float* x = DeviceFloats(50);
  float* w = DeviceFloats(54);
  float* bias = DeviceFloats(3);
  float* y = DeviceFloats(75);
  float* z = DeviceFloats(75);
  Upload(x, Ramp(50, 0.5f, 0.f));
  Upload(w, Ramp(54, 0.125f, 0.5f));
  Upload(bias, {0.5f, -1.f, 2.f});
  std::vector<float> eager_y, eager_z;
  float one = 1.f, zero = 0.f;
  {
    ConvSetup d;
    cudnnSetStream(d.handle, kPerThread);
    CHECK_CODE(cudnnConvolutionForward(d.handle, &one, d.x, x, d.w, w, d.conv,
                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                       d.y, y),
               CUDNN_STATUS_SUCCESS);
    CHECK_CODE(cudnnAddTensor(d.handle, &one, d.bias, bias, &one, d.y, y), CUDNN_STATUS_SUCCESS);
    CHECK_CODE(cudnnActivationForward(d.handle, d.relu, &one, d.y, y, &zero, d.y, z),
               CUDNN_STATUS_SUCCESS);
    eager_y = Download(y, 75);
    eager_z = Download(z, 75);
  }
  Upload(y, std::vector<float>(75, 0.f));
  Upload(z, std::vector<float>(75, 0.f));

  cudaGraph_t graph = nullptr;
  {
    ConvSetup d;
    cudnnSetStream(d.handle, kPerThread);
    CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
    CHECK_CODE(cudnnConvolutionForward(d.handle, &one, d.x, x, d.w, w, d.conv,
                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero,
                                       d.y, y),
               CUDNN_STATUS_SUCCESS);
    CHECK_CODE(cudnnAddTensor(d.handle, &one, d.bias, bias, &one, d.y, y), CUDNN_STATUS_SUCCESS);
    CHECK_CODE(cudnnActivationForward(d.handle, d.relu, &one, d.y, y, &zero, d.y, z),
               CUDNN_STATUS_SUCCESS);
    CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
    // Reconfigured after the capture: the graph keeps what the descriptors said then.
    const int pad[2] = {0, 0}, stride[2] = {2, 2}, dilation[2] = {1, 1};
    cudnnSetConvolutionNdDescriptor(d.conv, 2, pad, stride, dilation, CUDNN_CONVOLUTION,
                                    CUDNN_DATA_FLOAT);
    cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 2, 2);
    cudnnSetActivationDescriptor(d.relu, CUDNN_ACTIVATION_SIGMOID, CUDNN_NOT_PROPAGATE_NAN, 0.0);
    one = 3.f;
    zero = 1.f;
  }  // ... and now destroyed, with the handle
  CHECK(NodeCount(graph) == 3);
  CHECK(AllEqual(Download(y, 75), 0.f));
  CHECK(AllEqual(Download(z, 75), 0.f));
  cudaGraphExec_t exec = nullptr;
  CHECK_OK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaStreamSynchronize(kPerThread));
  CHECK(SameBits(Download(y, 75), eager_y));
  CHECK(SameBits(Download(z, 75), eager_z));
  // Replayed twice more: AddTensor adds to the convolution's fresh output each time.
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaGraphLaunch(exec, kPerThread));
  CHECK_OK(cudaStreamSynchronize(kPerThread));
  CHECK(SameBits(Download(y, 75), eager_y));
  CHECK_OK(cudaGraphExecDestroy(exec));
  CHECK_OK(cudaGraphDestroy(graph));
  for (float* p : {x, w, bias, y, z}) CHECK_OK(cudaFree(p));
}

// Each call CUDA forbids to a capturing thread fails, invalidates the capture (later work on
// it fails too and runs nothing; cudaStreamEndCapture fails and returns no graph), and the
// stream works normally afterwards.
void TestIllegalCalls() {
  const int n = 8;
  float* d = DeviceFloats(n);
  float* spare = DeviceFloats(n);
  float* pinned = nullptr;
  float* spare_pinned = nullptr;
  CHECK_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned), n * sizeof(float)));
  CHECK_OK(cudaMallocHost(reinterpret_cast<void**>(&spare_pinned), n * sizeof(float)));
  std::vector<float> pageable(n, 1.f);
  cudaEvent_t event, outside;
  CHECK_OK(cudaEventCreate(&event));
  CHECK_OK(cudaEventCreate(&outside));
  CHECK_OK(cudaEventRecord(outside, nullptr));
  cudaStream_t other;
  CHECK_OK(cudaStreamCreate(&other));
  cublasHandle_t blas, blas_legacy;
  cublasCreate(&blas);
  cublasCreate(&blas_legacy);
  cublasSetStream(blas, kPerThread);
  ConvSetup dnn, dnn_legacy;
  cudnnSetStream(dnn.handle, kPerThread);
  ncclComm_t comm;
  CHECK_CODE(ncclCommInitAll(&comm, 1, nullptr), ncclSuccess);
  float* act = DeviceFloats(75);
  cudaGraph_t empty_graph;
  cudaGraphExec_t empty_exec;
  CHECK_OK(cudaStreamBeginCapture(other, cudaStreamCaptureModeThreadLocal));
  CHECK_OK(cudaStreamEndCapture(other, &empty_graph));
  CHECK_OK(cudaGraphInstantiate(&empty_exec, empty_graph, 0));
  float result = 0.f, one = 1.f, zero = 0.f;

  struct Case {
    const char* name;
    std::function<void()> call;  // checks the call's own return
  };
  const Case cases[] = {
      {"cudaStreamSynchronize",
       [&] { CHECK_CODE(cudaStreamSynchronize(kPerThread), cudaErrorStreamCaptureUnsupported); }},
      {"cudaStreamQuery",
       [&] { CHECK_CODE(cudaStreamQuery(kPerThread), cudaErrorStreamCaptureUnsupported); }},
      {"cudaDeviceSynchronize",
       [&] { CHECK_CODE(cudaDeviceSynchronize(), cudaErrorStreamCaptureUnsupported); }},
      {"cudaMalloc",
       [&] {
         void* p = &result;
         CHECK_CODE(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
         CHECK(p == nullptr);
       }},
      {"cudaFree", [&] { CHECK_CODE(cudaFree(spare), cudaErrorStreamCaptureUnsupported); }},
      {"cudaMallocHost",
       [&] {
         void* p = &result;
         CHECK_CODE(cudaMallocHost(&p, 64), cudaErrorStreamCaptureUnsupported);
         CHECK(p == nullptr);
       }},
      {"cudaHostAlloc",
       [&] {
         void* p = nullptr;
         CHECK_CODE(cudaHostAlloc(&p, 64, cudaHostAllocDefault), cudaErrorStreamCaptureUnsupported);
       }},
      {"cudaFreeHost",
       [&] { CHECK_CODE(cudaFreeHost(spare_pinned), cudaErrorStreamCaptureUnsupported); }},
      {"cudaEventSynchronize of a captured event",
       [&] {
         CHECK_OK(cudaEventRecord(event, kPerThread));
         CHECK_CODE(cudaEventSynchronize(event), cudaErrorCapturedEvent);
       }},
      {"cudaEventQuery of a captured event",
       [&] {
         CHECK_OK(cudaEventRecord(event, kPerThread));
         CHECK_CODE(cudaEventQuery(event), cudaErrorCapturedEvent);
       }},
      {"cudaStreamWaitEvent on an event recorded outside the capture",
       [&] {
         CHECK_CODE(cudaStreamWaitEvent(kPerThread, outside, 0), cudaErrorStreamCaptureIsolation);
       }},
      {"cudaStreamWaitEvent of another stream on a captured event",
       [&] {
         CHECK_OK(cudaEventRecord(event, kPerThread));
         CHECK_CODE(cudaStreamWaitEvent(other, event, 0), cudaErrorStreamCaptureUnsupported);
       }},
      {"cublasSdot (host pointer mode)",
       [&] { CHECK_CODE(cublasSdot(blas, n, d, 1, d, 1, &result), CUBLAS_STATUS_NOT_SUPPORTED); }},
      {"cublasSasum (host pointer mode)",
       [&] { CHECK_CODE(cublasSasum(blas, n, d, 1, &result), CUBLAS_STATUS_NOT_SUPPORTED); }},
      {"ncclAllReduce on the capturing stream",
       [&] {
         CHECK_CODE(ncclAllReduce(d, d, n, ncclFloat32, ncclSum, comm, kPerThread),
                    ncclInvalidUsage);
       }},
      {"cudnnFindConvolutionForwardAlgorithm",
       [&] {
         int returned = 0;
         cudnnConvolutionFwdAlgoPerf_t perf[4];
         CHECK_CODE(cudnnFindConvolutionForwardAlgorithm(dnn.handle, dnn.x, dnn.w, dnn.conv, dnn.y,
                                                         4, &returned, perf),
                    CUDNN_STATUS_EXECUTION_FAILED_CUDART);
       }},
      {"cudaMemcpyAsync of pageable memory",
       [&] {
         CHECK_CODE(cudaMemcpyAsync(d, pageable.data(), n * sizeof(float), cudaMemcpyHostToDevice,
                                    kPerThread),
                    cudaErrorStreamCaptureUnsupported);
       }},
      {"cudaGraphLaunch into the capturing stream",
       [&] {
         CHECK_CODE(cudaGraphLaunch(empty_exec, kPerThread), cudaErrorStreamCaptureUnsupported);
       }},
      // The legacy stream would wait for the capturing (blocking) per-thread stream.
      {"kernel launch on the legacy stream",
       [&] {
         LaunchAddOne(d, n, nullptr);
         CHECK_CODE(cudaGetLastError(), cudaErrorStreamCaptureImplicit);
       }},
      {"cudaMemcpy",
       [&] {
         CHECK_CODE(cudaMemcpy(d, pageable.data(), n * sizeof(float), cudaMemcpyHostToDevice),
                    cudaErrorStreamCaptureImplicit);
       }},
      {"cudaMemset",
       [&] { CHECK_CODE(cudaMemset(d, 0, n * sizeof(float)), cudaErrorStreamCaptureImplicit); }},
      {"cudaMemcpyAsync on cudaStreamLegacy",
       [&] {
         CHECK_CODE(cudaMemcpyAsync(d, pinned, n * sizeof(float), cudaMemcpyHostToDevice,
                                    cudaStreamLegacy),
                    cudaErrorStreamCaptureImplicit);
       }},
      {"cudaEventRecord on the legacy stream",
       [&] { CHECK_CODE(cudaEventRecord(event, nullptr), cudaErrorStreamCaptureImplicit); }},
      {"cublasSgemm with a handle on the legacy stream",
       [&] {
         CHECK_CODE(cublasSgemm(blas_legacy, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, d, 2,
                                &zero, spare, 2),
                    CUBLAS_STATUS_EXECUTION_FAILED);
       }},
      {"cudnnActivationForward with a handle on the legacy stream",
       [&] {
         CHECK_CODE(cudnnActivationForward(dnn_legacy.handle, dnn_legacy.relu, &one, dnn_legacy.y,
                                           act, &zero, dnn_legacy.y, act),
                    CUDNN_STATUS_EXECUTION_FAILED_CUDART);
       }},
  };

  for (const Case& c : cases) {
    const int failures_before = selftest::failures;
    Upload(d, std::vector<float>(n, 0.f));
    CHECK_OK(cudaGetLastError());
    CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
    LaunchAddOne(d, n, kPerThread);  // recorded
    c.call();
    CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusInvalidated);
    (void)cudaGetLastError();
    LaunchAddOne(d, n, kPerThread);  // refused
    CHECK_CODE(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    CHECK_CODE(cudaMemsetAsync(d, 0, n * sizeof(float), kPerThread),
               cudaErrorStreamCaptureInvalidated);
    CHECK_CODE(
        cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, d, 2, &zero, spare, 2),
        CUBLAS_STATUS_EXECUTION_FAILED);
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&result);
    CHECK_CODE(cudaStreamEndCapture(kPerThread, &graph), cudaErrorStreamCaptureInvalidated);
    CHECK(graph == nullptr);
    CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusNone);
    // Normal again (once the last error is read); nothing of the failed capture ever ran.
    CHECK_CODE(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    LaunchAddOne(d, n, kPerThread);
    CHECK_OK(cudaGetLastError());
    CHECK_OK(cudaStreamSynchronize(kPerThread));
    CHECK(AllEqual(Download(d, n), 1.f));
    if (selftest::failures != failures_before) std::printf("  ... in the case %s\n", c.name);
  }

  // The refused frees did not happen.
  CHECK_OK(cudaFree(spare));
  CHECK_OK(cudaFreeHost(spare_pinned));
  CHECK_OK(cudaFreeHost(pinned));
  CHECK_OK(cudaFree(d));
  CHECK_OK(cudaFree(act));
  CHECK_OK(cudaGraphExecDestroy(empty_exec));
  CHECK_OK(cudaGraphDestroy(empty_graph));
  CHECK_OK(cudaEventDestroy(event));
  CHECK_OK(cudaEventDestroy(outside));
  CHECK_OK(cudaStreamDestroy(other));
  cublasDestroy(blas);
  cublasDestroy(blas_legacy);
  ncclCommDestroy(comm);
}

// What is allowed around a capture, and the rules of beginning and ending one.
void TestCaptureRules() {
  const int n = 8;
  float* d = DeviceFloats(n);
  cudaGraph_t graph = nullptr;

  // The legacy stream cannot be captured; a capturing stream cannot begin again.
  CHECK_CODE(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeThreadLocal),
             cudaErrorStreamCaptureUnsupported);
  CHECK_CODE(cudaStreamBeginCapture(cudaStreamLegacy, cudaStreamCaptureModeGlobal),
             cudaErrorStreamCaptureUnsupported);
  CHECK_CODE(cudaStreamEndCapture(kPerThread, &graph), cudaErrorIllegalState);
  CHECK(graph == nullptr);
  CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  CHECK_CODE(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal),
             cudaErrorIllegalState);
  CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusActive);
  // The legacy stream reports the capture it would wait for, without invalidating it.
  cudaStreamCaptureStatus status;
  CHECK_CODE(cudaStreamIsCapturing(nullptr, &status), cudaErrorStreamCaptureImplicit);
  (void)cudaGetLastError();
  CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
  CHECK(graph != nullptr && NodeCount(graph) == 0);
  CHECK_OK(cudaGraphDestroy(graph));
  CHECK_OK(cudaStreamIsCapturing(nullptr, &status));
  CHECK(status == cudaStreamCaptureStatusNone);

  // Events recorded and waited for inside one capture are fine.
  cudaStream_t s;
  cudaEvent_t event;
  CHECK_OK(cudaStreamCreate(&s));
  CHECK_OK(cudaEventCreate(&event));
  Upload(d, std::vector<float>(n, 0.f));
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  LaunchAddOne(d, n, s);
  CHECK_OK(cudaEventRecord(event, s));
  CHECK_OK(cudaStreamWaitEvent(s, event, 0));
  LaunchAddOne(d, n, s);
  CHECK_OK(cudaStreamEndCapture(s, &graph));
  CHECK(NodeCount(graph) == 2);
  Replay(graph, 1, s);
  CHECK(AllEqual(Download(d, n), 2.f));
  CHECK_OK(cudaEventDestroy(event));

  // Relaxed mode allows cudaMalloc and cudaFree; the capture stays valid.
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  LaunchAddOne(d, n, s);
  void* p = nullptr;
  CHECK_OK(cudaMalloc(&p, 64));
  CHECK_OK(cudaFree(p));
  CHECK(CaptureStatus(s) == cudaStreamCaptureStatusActive);
  CHECK_OK(cudaStreamEndCapture(s, &graph));
  Replay(graph, 1, s);
  CHECK(AllEqual(Download(d, n), 3.f));

  // Global mode forbids them as ThreadLocal does.
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CHECK_CODE(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  CHECK_CODE(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);

  // A non-blocking stream does not make the legacy stream wait: synchronous copies stay legal.
  cudaStream_t nonblocking;
  CHECK_OK(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking));
  CHECK_OK(cudaStreamBeginCapture(nonblocking, cudaStreamCaptureModeThreadLocal));
  LaunchAddOne(d, n, nonblocking);
  CHECK(AllEqual(Download(d, n), 3.f));  // a cudaMemcpy on the legacy stream
  CHECK_OK(cudaStreamEndCapture(nonblocking, &graph));
  Replay(graph, 1, nonblocking);
  CHECK(AllEqual(Download(d, n), 4.f));
  CHECK_OK(cudaStreamDestroy(nonblocking));

  // A created stream's ThreadLocal capture is ended by its own thread only; a Relaxed one by
  // any thread.
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  std::thread([&] {
    cudaGraph_t g = nullptr;
    CHECK_CODE(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureWrongThread);
    CHECK(g == nullptr);
  }).join();
  CHECK(CaptureStatus(s) == cudaStreamCaptureStatusActive);
  CHECK_OK(cudaStreamEndCapture(s, &graph));
  CHECK_OK(cudaGraphDestroy(graph));
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  LaunchAddOne(d, n, s);
  std::thread([&] { CHECK_OK(cudaStreamEndCapture(s, &graph)); }).join();
  CHECK(graph != nullptr && NodeCount(graph) == 1);
  CHECK_OK(cudaGraphDestroy(graph));

  // Destroying a capturing stream discards its capture.
  CHECK_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  CHECK_OK(cudaStreamDestroy(s));
  p = nullptr;
  CHECK_OK(cudaMalloc(&p, 64));  // no capture left to forbid it
  CHECK_OK(cudaFree(p));
  CHECK_OK(cudaFree(d));
}

// Another thread's work, on its own per-thread stream, runs as usual while this thread
// captures its per-thread stream; none of it is recorded.
void TestOtherThreads() {
  const int n = 8;
  float* mine = DeviceFloats(n);
  float* theirs = DeviceFloats(n);
  Upload(mine, std::vector<float>(n, 0.f));
  Upload(theirs, std::vector<float>(n, 0.f));
  CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  LaunchAddOne(mine, n, kPerThread);
  std::thread([&] {
    CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusNone);
    LaunchAddOne(theirs, n, kPerThread);
    CHECK_OK(cudaGetLastError());
    CHECK_OK(cudaStreamSynchronize(kPerThread));
    void* p = nullptr;
    CHECK_OK(cudaMalloc(&p, 64));
    CHECK_OK(cudaFree(p));
    cudaGraph_t g = nullptr;
    CHECK_CODE(cudaStreamEndCapture(kPerThread, &g), cudaErrorIllegalState);
    CHECK(AllEqual(Download(theirs, n), 1.f));  // legacy work too: no capture of theirs
    (void)cudaGetLastError();
  }).join();
  CHECK(CaptureStatus(kPerThread) == cudaStreamCaptureStatusActive);
  cudaGraph_t graph = nullptr;
  CHECK_OK(cudaStreamEndCapture(kPerThread, &graph));
  CHECK(NodeCount(graph) == 1);
  CHECK(AllEqual(Download(mine, n), 0.f));
  Replay(graph, 2, kPerThread);
  CHECK(AllEqual(Download(mine, n), 2.f));
  CHECK(AllEqual(Download(theirs, n), 1.f));

  // A thread that exits while capturing leaves nothing behind.
  std::thread([] {
    CHECK_OK(cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal));
  }).join();
  void* p = nullptr;
  CHECK_OK(cudaMalloc(&p, 64));
  CHECK_OK(cudaFree(p));
  CHECK_OK(cudaFree(mine));
  CHECK_OK(cudaFree(theirs));
}

// A replay whose kernel argument was freed after the capture stops with the emulator's
// message, as the launch itself would have (run in a child process).
void TestReplayOfFreedMemory() {
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    float* x = DeviceFloats(8);
    if (cudaStreamBeginCapture(kPerThread, cudaStreamCaptureModeThreadLocal) != cudaSuccess)
      _exit(3);
    LaunchAddOne(x, 8, kPerThread);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (cudaStreamEndCapture(kPerThread, &graph) != cudaSuccess) _exit(3);
    if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) _exit(3);
    cudaFree(x);
    std::fprintf(stderr, "(expected) ");
    cudaGraphLaunch(exec, kPerThread);
    cudaStreamSynchronize(kPerThread);
    _exit(0);  // not reached: the replay aborts
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

}  // namespace

int main() {
  TestCaptureAndReplay();
  TestReplayReadsCurrentInput();
  TestCublas();
  TestCudnn();
  TestIllegalCalls();
  TestCaptureRules();
  TestOtherThreads();
  TestReplayOfFreedMemory();
  return selftest::Summary("graph_emu_selftest");
}
