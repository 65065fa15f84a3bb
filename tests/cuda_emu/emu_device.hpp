// crema's CUDA emulator: what a .cu file sees when it is compiled as plain C++.
//
// tools/emu_check.sh builds crema with -DCREMA_CUDA_EMULATOR=ON. Every .cu/.cuh file is
// then rewritten by tests/cuda_emu/translate.py (only the launch syntax changes:
// `k<<<grid, block, shmem, stream>>>(args)` becomes a call of crema_emu::Launch) and
// compiled by the host compiler with this header force-included. Each CUDA thread of a
// block runs as a fiber, so __syncthreads and warp shuffles keep their meaning; blocks
// run one after another; "device memory" is host memory in a guarded arena
// (emu_memory.hpp). Work queued on streams runs as late as CUDA allows (emu_memory.hpp), so
// a missing synchronisation shows as stale data. The emulator checks what kernels compute
// and which memory they touch; it says nothing about speed.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <curand_kernel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "tests/cuda_emu/emu_memory.hpp"

// The CUDA headers gave these attributes meanings g++ does not have; here a kernel is an
// ordinary function and block-shared memory is a static of the host thread that runs the
// block (blocks of one launch run one after another on that thread).
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __noinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __shared__ static thread_local
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)

namespace crema_emu {

// The position of the calling CUDA thread, valid inside a kernel.
const uint3& ThreadIdx();
const uint3& BlockIdx();
const dim3& BlockDim();
const dim3& GridDim();

// Barriers: every live thread of the block (or of the warp) must arrive.
void SyncThreads();
void SyncWarp();

// Lane exchange for shuffles: each lane owns an 8-byte slot of its warp.
int LaneId();
bool LaneExists(int lane);
void* WarpSlot(int lane);

struct LaunchConfig {
  LaunchConfig(dim3 grid_dim, dim3 block_dim, size_t shared_bytes = 0,
               cudaStream_t launch_stream = nullptr)
      : grid(grid_dim), block(block_dim), shared(shared_bytes), stream(launch_stream) {}
  dim3 grid, block;
  size_t shared;
  cudaStream_t stream;
};

// Queues the grid on its stream (records a launch error instead when the configuration is
// invalid); when it runs, thread_body runs once per CUDA thread. `kernel_id` identifies the
// kernel across launches. A grid recorded by a stream capture runs `replay_check` (the
// argument checks again) before every replay.
void RunGrid(const char* name, const void* kernel_id, const LaunchConfig& config,
             std::function<void()> thread_body, std::function<void()> replay_check);

// The running block's dynamic shared memory (the launch's third configuration value);
// translate.py turns `extern __shared__ T name[];` into `T* name = DynamicShared<T>();`.
void* DynamicSharedBytes();
template <typename T>
T* DynamicShared() {
  return static_cast<T*>(DynamicSharedBytes());
}

// Aborts naming the kernel and argument when a pointer argument is not device memory.
void CheckKernelPointer(const char* name, int index, const void* p);

template <typename T>
void CheckKernelArgument(const char* name, int index, const T& value) {
  if constexpr (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>)
    CheckKernelPointer(name, index, static_cast<const void*>(value));
}

// Identifies a launch site across launches (one closure type per site).
template <typename Body>
const void* LaunchSiteId() {
  static const char id = 0;
  return &id;
}

// A kernel bound to its launch configuration; calling it runs the grid. `Body` is a generic
// lambda that calls the kernel, so template arguments are deduced as in CUDA and each
// argument converts to its parameter type in every thread's call.
template <typename Body>
class BoundKernel {
 public:
  BoundKernel(const char* name, LaunchConfig config, Body body)
      : name_(name), config_(config), body_(body) {}

  // The arguments are copied at the launch (the grid may run later, in stream order, or
  // again and again from a graph); each CUDA thread then gets its own copies of them.
  template <typename... Args>
  void operator()(Args&&... args) const {
    using Values = std::tuple<std::decay_t<Args>...>;
    auto values = std::make_shared<Values>(std::forward<Args>(args)...);
    const char* name = name_;
    auto check = [name, values] {
      CheckArguments(name, *values, std::index_sequence_for<Args...>{});
    };
    check();
    Body body = body_;
    auto thread_body = [body, values] { std::apply(body, *values); };
    RunGrid(name_, LaunchSiteId<Body>(), config_, thread_body, check);
  }

 private:
  template <typename Tuple, size_t... I>
  static void CheckArguments(const char* name, const Tuple& values, std::index_sequence<I...>) {
    (void)name;  // unused when the kernel takes no arguments
    (CheckKernelArgument(name, static_cast<int>(I), std::get<I>(values)), ...);
  }

  const char* name_;
  LaunchConfig config_;
  Body body_;
};

template <typename Body>
BoundKernel<Body> Launch(const char* name, LaunchConfig config, Body body) {
  return BoundKernel<Body>(name, config, body);
}

}  // namespace crema_emu

#define threadIdx (::crema_emu::ThreadIdx())
#define blockIdx (::crema_emu::BlockIdx())
#define blockDim (::crema_emu::BlockDim())
#define gridDim (::crema_emu::GridDim())

// ---- Device intrinsics used by crema's kernels ----------------------------------------
inline void __syncthreads() {
  ::crema_emu::SyncThreads();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  ::crema_emu::SyncWarp();
}

// Shuffles: every lane publishes its value, the warp meets, each lane reads its source, and
// the warp meets again before the slots can be reused. A source lane outside the lane's
// width segment (or beyond the block) leaves the value unchanged, as CUDA specifies.
template <typename T>
T crema_emu_shuffle(T value, int source_lane, int width) {
  static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
  const int lane = ::crema_emu::LaneId();
  std::memcpy(::crema_emu::WarpSlot(lane), &value, sizeof(T));
  ::crema_emu::SyncWarp();
  T result = value;
  const bool same_segment =
      source_lane >= 0 && source_lane < 32 && source_lane / width == lane / width;
  if (same_segment && ::crema_emu::LaneExists(source_lane))
    std::memcpy(&result, ::crema_emu::WarpSlot(source_lane), sizeof(T));
  ::crema_emu::SyncWarp();
  return result;
}
template <typename T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int width = 32) {
  return crema_emu_shuffle(value, ::crema_emu::LaneId() + static_cast<int>(delta), width);
}
template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta, int width = 32) {
  return crema_emu_shuffle(value, ::crema_emu::LaneId() - static_cast<int>(delta), width);
}
template <typename T>
T __shfl_xor_sync(unsigned, T value, int mask, int width = 32) {
  return crema_emu_shuffle(value, ::crema_emu::LaneId() ^ mask, width);
}
template <typename T>
T __shfl_sync(unsigned, T value, int source, int width = 32) {
  const int lane = ::crema_emu::LaneId();
  return crema_emu_shuffle(value, (lane / width) * width + source % width, width);
}

// Atomics: the threads of a block are fibers of one host thread and switch only at
// barriers, so a read-modify-write is already indivisible.
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <typename T>
T atomicMin(T* address, T value) {
  const T old = *address;
  *address = std::min(old, value);
  return old;
}
template <typename T>
T atomicMax(T* address, T value) {
  const T old = *address;
  *address = std::max(old, value);
  return old;
}
template <typename T>
T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
template <typename T>
T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}

template <typename T>
T __ldg(const T* p) {
  return *p;
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float __logf(float x) {
  return std::log(x);
}
inline float __powf(float x, float y) {
  return std::pow(x, y);
}
inline float __fdividef(float x, float y) {
  return x / y;
}
inline float __saturatef(float x) {
  return std::min(1.f, std::max(0.f, x));
}
inline float rsqrtf(float x) {
  return 1.f / std::sqrt(x);
}
inline double rsqrt(double x) {
  return 1.0 / std::sqrt(x);
}
inline int __float2int_rn(float x) {
  return static_cast<int>(std::nearbyint(x));
}
inline float __int_as_float(int x) {
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}
inline unsigned int __float_as_uint(float x) {
  unsigned int u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
using std::max;
using std::min;
