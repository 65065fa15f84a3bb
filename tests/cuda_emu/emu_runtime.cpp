// crema's CUDA emulator: device memory, kernel execution and the CUDA runtime API.
//
// Device memory is one reserved range of the address space (the arena), readable only
// while a device operation runs, so a host dereference of a device pointer faults. Kernel
// threads run as fibers (ucontext): a block's threads run in turn until each reaches a
// barrier or returns; a barrier opens when every live thread of its block (or warp) has
// arrived. A kernel that never met a barrier in its first launch runs its threads as
// plain calls from then on, which is what keeps whole training runs affordable.
#include <cuda_runtime.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "tests/cuda_emu/emu_device.hpp"

namespace crema_emu {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "\ncrema CUDA emulator: %s\n", message.c_str());
  void* frames[48];
  const int n = backtrace(frames, 48);
  backtrace_symbols_fd(frames, n, 2);
  std::fflush(stderr);
  std::abort();
}

// ---- Device memory --------------------------------------------------------------------

constexpr size_t kArenaBytes = size_t{1} << 37;  // 128 GiB of address space, reserved only
constexpr size_t kAlignment = 256;               // cudaMalloc's guarantee
constexpr size_t kRedzone = 256;                 // guard bytes after every allocation
constexpr unsigned char kGuardByte = 0xa5;

// Every allocation is followed by guard bytes (from its requested end to the next
// alignment boundary, plus kRedzone). When the last open DeviceScope closes, the guards of
// all live allocations are checked, so a kernel or library call that wrote past the end of
// a buffer is named right after it ran.
class Arena {
 public:
  Arena() {
    base_ = static_cast<char*>(
        mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base_ == MAP_FAILED) Die("cannot reserve the device arena");
    // Transparent huge pages where the kernel offers them: changing the protection of the
    // arena around every device operation then walks 2 MiB entries, not 4 KiB ones.
    madvise(base_, kArenaBytes, MADV_HUGEPAGE);
    protect_ = std::getenv("CREMA_EMU_PROTECT") == nullptr ||
               std::string(std::getenv("CREMA_EMU_PROTECT")) != "0";
    if (!protect_) mprotect(base_, kArenaBytes, PROT_READ | PROT_WRITE);
  }

  void* Allocate(size_t bytes) {
    const size_t size =
        (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment + kRedzone;
    std::lock_guard<std::mutex> lock(mutex_);
    size_t offset;
    auto fit = free_.lower_bound(size);
    if (fit != free_.end() && fit->first <= 2 * size + 65536) {
      offset = fit->second;
      if (fit->first > size) free_.emplace(fit->first - size, offset + size);
      free_.erase(fit);
    } else {
      if (top_ + size > kArenaBytes) return nullptr;
      offset = top_;
      top_ += size;
    }
    Unprotect();  // to fill: fresh device memory is garbage (NaN for floats), then guards
    std::memset(base_ + offset, 0xff, bytes);
    std::memset(base_ + offset + bytes, kGuardByte, size - bytes);
    if (scopes_ == 0 && protect_) mprotect(base_, Extent(), PROT_NONE);
    live_[offset] = Block{size, bytes};
    return base_ + offset;
  }

  bool Free(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(static_cast<char*>(p) - base_);
    if (!Contains(p) || it == live_.end()) return false;
    free_.emplace(it->second.size, it->first);
    live_.erase(it);
    return true;
  }

  bool Contains(const void* p) const {
    const char* c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + kArenaBytes;
  }

  // True when [p, p + bytes) lies in one live allocation's requested bytes. A pointer one
  // past an allocation's end counts when bytes is 0.
  bool Find(const void* p, size_t bytes) {
    if (!Contains(p)) return false;
    const size_t at = static_cast<const char*>(p) - base_;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.upper_bound(at);
    if (it == live_.begin()) return false;
    --it;
    return at + bytes <= it->first + it->second.bytes;
  }

  void Enter() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (scopes_++ == 0 && protect_) Unprotect();
  }
  void Leave(const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--scopes_ > 0) return;
    CheckGuards(what);
    if (protect_) mprotect(base_, Extent(), PROT_NONE);
  }

 private:
  struct Block {
    size_t size;   // reserved, guards included
    size_t bytes;  // requested
  };

  size_t Extent() const {
    const size_t page = 4096;
    return std::max<size_t>(page, (top_ + page - 1) / page * page);
  }
  void Unprotect() { mprotect(base_, Extent(), PROT_READ | PROT_WRITE); }

  void CheckGuards(const char* what) const {
    for (const auto& [offset, block] : live_) {
      const unsigned char* guard =
          reinterpret_cast<const unsigned char*>(base_ + offset + block.bytes);
      for (size_t i = 0; i < block.size - block.bytes; ++i)
        if (guard[i] != kGuardByte) {
          char message[256];
          std::snprintf(message, sizeof message,
                        "%s wrote past the end of a device allocation: %zu bytes at %p, "
                        "overwritten at byte %zu after its end",
                        what, block.bytes, static_cast<const void*>(base_ + offset), i);
          Die(message);
        }
    }
  }

  char* base_ = nullptr;
  bool protect_ = true;
  std::mutex mutex_;
  size_t top_ = 0;
  int scopes_ = 0;
  std::map<size_t, Block> live_;        // offset -> block
  std::multimap<size_t, size_t> free_;  // size -> offset
};

Arena& arena() {
  static Arena* instance = new Arena;  // never destroyed: static destructors may still free
  return *instance;
}

struct sigaction previous_segv;

void OnSegv(int signal, siginfo_t* info, void* context) {
  if (arena().Contains(info->si_addr)) {
    char message[160];
    std::snprintf(message, sizeof message,
                  "\ncrema CUDA emulator: host code dereferenced device memory at %p "
                  "(a real GPU would fault too). Host stack:\n",
                  info->si_addr);
    ssize_t ignored = write(2, message, std::strlen(message));
    (void)ignored;
    void* frames[48];
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    _exit(134);
  }
  if (previous_segv.sa_flags & SA_SIGINFO) {
    previous_segv.sa_sigaction(signal, info, context);
  } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(signal);
  } else {
    std::signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
  }
}

const bool segv_handler_installed = [] {
  struct sigaction action = {};
  action.sa_sigaction = &OnSegv;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  return true;
}();

// ---- Kernel execution -----------------------------------------------------------------

constexpr int kMaxBlockThreads = 1024;
constexpr size_t kFiberStackBytes = 256 * 1024;

enum class FiberState { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;
  FiberState state = FiberState::kDone;
  uint3 thread_idx;
};

// What the host thread that runs a grid knows about it (kernels do not nest).
struct GridRun {
  dim3 grid, block;
  uint3 block_idx;
  uint3 thread_idx;  // of the running thread
  int thread_count = 0;
  int current = -1;  // running fiber, or -1 when threads run as plain calls
  bool direct = false;
  const char* name = "";
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  uint64_t warp_slots[kMaxBlockThreads / 32][32];
  bool synced = false;  // some thread met a barrier in this launch
};

thread_local GridRun* running = nullptr;

GridRun& Run() {
  if (running == nullptr) Die("a device function was called outside a kernel");
  return *running;
}

// Fiber stacks, kept per host thread and reused by every block.
struct StackPool {
  std::vector<char*> stacks;
  ~StackPool() {
    for (char* s : stacks) munmap(s, kFiberStackBytes);
  }
  char* Get(int i) {
    while (static_cast<int>(stacks.size()) <= i) {
      void* s = mmap(nullptr, kFiberStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (s == MAP_FAILED) Die("cannot allocate a fiber stack");
      stacks.push_back(static_cast<char*>(s));
    }
    return stacks[i];
  }
};
thread_local StackPool stack_pool;

void FiberMain() {
  GridRun& run = *running;
  run.body(run.ctx);
  run.fibers[run.current].state = FiberState::kDone;
  // Returning resumes the scheduler through uc_link.
}

void Yield(FiberState state) {
  GridRun& run = Run();
  run.synced = true;
  if (run.direct)
    Die(std::string("kernel ") + run.name +
        " met a barrier although its first launch did not; run with CREMA_EMU_FIBERS=1");
  Fiber& fiber = run.fibers[run.current];
  fiber.state = state;
  swapcontext(&fiber.context, &run.scheduler);
}

uint3 ThreadIndex(const dim3& block, int linear) {
  uint3 t;
  t.x = linear % block.x;
  t.y = (linear / block.x) % block.y;
  t.z = linear / (block.x * block.y);
  return t;
}

// Opens a barrier whose members have all arrived; dies on a deadlock.
void OpenBarriers(GridRun& run) {
  std::vector<Fiber>& f = run.fibers;
  const int n = run.thread_count;
  bool any_live = false, all_at_block = true;
  for (int i = 0; i < n; ++i) {
    if (f[i].state == FiberState::kDone) continue;
    any_live = true;
    if (f[i].state != FiberState::kAtBlockBarrier) all_at_block = false;
  }
  if (!any_live) return;
  if (all_at_block) {
    for (int i = 0; i < n; ++i)
      if (f[i].state == FiberState::kAtBlockBarrier) f[i].state = FiberState::kReady;
    return;
  }
  bool opened = false;
  for (int w = 0; w * 32 < n; ++w) {
    const int end = std::min(n, w * 32 + 32);
    bool waiting = false, complete = true;
    for (int i = w * 32; i < end; ++i) {
      if (f[i].state == FiberState::kAtWarpBarrier) waiting = true;
      if (f[i].state != FiberState::kAtWarpBarrier && f[i].state != FiberState::kDone)
        complete = false;
    }
    if (waiting && complete) {
      for (int i = w * 32; i < end; ++i)
        if (f[i].state == FiberState::kAtWarpBarrier) f[i].state = FiberState::kReady;
      opened = true;
    }
  }
  if (!opened)
    Die(std::string("kernel ") + run.name +
        ": deadlock - threads of one block wait at different barriers (a __syncthreads or "
        "warp shuffle inside divergent code)");
}

// The order in which a block's threads run (between two barriers): a permutation that
// changes from one block and round to the next, i -> (i * step + offset) mod n with step
// coprime to n. Code whose result depends on the order of unsynchronised threads (a race)
// then gives results that differ from the CPU's, instead of passing by luck.
// CREMA_EMU_ORDER=linear runs threads in index order.
struct ThreadOrder {
  int n, step, offset;
  int operator()(int k) const { return static_cast<int>((int64_t{k} * step + offset) % n); }
};

const bool linear_order = [] {
  const char* v = std::getenv("CREMA_EMU_ORDER");
  return v != nullptr && std::string(v) == "linear";
}();
thread_local uint64_t order_state = 0x9e3779b97f4a7c15ull;

int Gcd(int a, int b) {
  return b == 0 ? a : Gcd(b, a % b);
}

ThreadOrder NextOrder(int n) {
  if (linear_order || n <= 1) return ThreadOrder{std::max(n, 1), 1, 0};
  order_state = order_state * 6364136223846793005ull + 1442695040888963407ull;
  const int r = static_cast<int>(order_state >> 33);
  int step = 1 + r % (n - 1);
  while (Gcd(step, n) != 1) step = step % (n - 1) + 1;
  return ThreadOrder{n, step, (r >> 7) % n};
}

void RunBlockWithFibers(GridRun& run) {
  const int n = run.thread_count;
  for (int i = 0; i < n; ++i) {
    Fiber& fiber = run.fibers[i];
    fiber.state = FiberState::kReady;
    fiber.thread_idx = ThreadIndex(run.block, i);
    fiber.stack = stack_pool.Get(i);
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = fiber.stack;
    fiber.context.uc_stack.ss_size = kFiberStackBytes;
    fiber.context.uc_link = &run.scheduler;
    makecontext(&fiber.context, &FiberMain, 0);
  }
  for (;;) {
    const ThreadOrder order = NextOrder(n);
    for (int k = 0; k < n; ++k) {
      const int i = order(k);
      if (run.fibers[i].state != FiberState::kReady) continue;
      run.current = i;
      run.thread_idx = run.fibers[i].thread_idx;
      swapcontext(&run.scheduler, &run.fibers[i].context);
    }
    bool all_done = true;
    for (int i = 0; i < n; ++i)
      if (run.fibers[i].state != FiberState::kDone) all_done = false;
    if (all_done) break;
    OpenBarriers(run);  // every live thread now waits at a barrier
  }
  run.current = -1;
}

void RunBlockDirect(GridRun& run) {
  const ThreadOrder order = NextOrder(run.thread_count);
  for (int k = 0; k < run.thread_count; ++k) {
    run.thread_idx = ThreadIndex(run.block, order(k));
    run.body(run.ctx);
  }
}

// Kernels seen to meet no barrier in their first launch (per host thread: no locking).
thread_local std::set<const void*> barrier_free_kernels;
const bool always_fibers = [] {
  const char* v = std::getenv("CREMA_EMU_FIBERS");
  return v != nullptr && std::string(v) == "1";
}();

thread_local cudaError_t last_error = cudaSuccess;

bool ValidConfig(const LaunchConfig& c) {
  const uint64_t threads = uint64_t{c.block.x} * c.block.y * c.block.z;
  return threads >= 1 && threads <= kMaxBlockThreads && c.block.z <= 64 && c.grid.x >= 1 &&
         c.grid.y >= 1 && c.grid.z >= 1 && c.grid.x <= 2147483647u && c.grid.y <= 65535 &&
         c.grid.z <= 65535 && c.shared <= 48 * 1024;
}

thread_local int current_device = 0;

int DeviceCount() {
  const char* v = std::getenv("CREMA_EMU_DEVICES");
  const int n = v ? std::atoi(v) : 1;
  return n < 0 ? 0 : n;
}

}  // namespace

// ---- emu_memory.hpp --------------------------------------------------------------------

bool IsDevice(const void* p, size_t bytes) {
  return arena().Find(p, bytes);
}

void RequireDevice(const void* p, size_t bytes, const char* what) {
  if (IsDevice(p, bytes)) return;
  char message[256];
  std::snprintf(message, sizeof message, "%s: %p (%zu bytes) is not inside one device allocation%s",
                what, p, bytes,
                arena().Contains(p) ? " (it overruns or is freed)" : " (a host pointer?)");
  Die(message);
}

DeviceScope::DeviceScope(const char* what) : what_(what) {
  arena().Enter();
}
DeviceScope::~DeviceScope() {
  arena().Leave(what_);
}

// ---- emu_device.hpp --------------------------------------------------------------------

const uint3& ThreadIdx() {
  return Run().thread_idx;
}
const uint3& BlockIdx() {
  return Run().block_idx;
}
const dim3& BlockDim() {
  return Run().block;
}
const dim3& GridDim() {
  return Run().grid;
}
void SyncThreads() {
  Yield(FiberState::kAtBlockBarrier);
}
void SyncWarp() {
  Yield(FiberState::kAtWarpBarrier);
}

int LaneId() {
  GridRun& run = Run();
  if (run.current < 0) Die("warp operation outside a fiber");
  return run.current % 32;
}
bool LaneExists(int lane) {
  GridRun& run = Run();
  return (run.current / 32) * 32 + lane < run.thread_count;
}
void* WarpSlot(int lane) {
  GridRun& run = Run();
  return &run.warp_slots[run.current / 32][lane];
}

void CheckKernelPointer(const char* name, int index, const void* p) {
  if (p == nullptr || IsDevice(p, 0)) return;
  char message[256];
  std::snprintf(message, sizeof message,
                "kernel %s: pointer argument %d (%p) is not device memory%s", name, index, p,
                arena().Contains(p) ? " (freed or out of range)" : " (a host pointer)");
  Die(message);
}

void RunGrid(const char* name, const void* kernel_id, const LaunchConfig& config,
             void (*body)(void*), void* ctx) {
  if (running != nullptr) Die(std::string("kernel ") + name + " launched from inside a kernel");
  if (!ValidConfig(config)) {
    std::fprintf(stderr,
                 "crema CUDA emulator: kernel %s: invalid launch configuration grid (%u,%u,%u) "
                 "block (%u,%u,%u) shared %zu\n",
                 name, config.grid.x, config.grid.y, config.grid.z, config.block.x, config.block.y,
                 config.block.z, config.shared);
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  DeviceScope scope(name);
  static thread_local GridRun run;
  run.grid = config.grid;
  run.block = config.block;
  run.thread_count = static_cast<int>(config.block.x * config.block.y * config.block.z);
  run.name = name;
  run.body = body;
  run.ctx = ctx;
  run.synced = false;
  run.direct = !always_fibers && barrier_free_kernels.count(kernel_id) > 0;
  if (run.fibers.size() < static_cast<size_t>(run.thread_count))
    run.fibers.resize(run.thread_count);
  running = &run;
  for (unsigned z = 0; z < config.grid.z; ++z)
    for (unsigned y = 0; y < config.grid.y; ++y)
      for (unsigned x = 0; x < config.grid.x; ++x) {
        run.block_idx = uint3{x, y, z};
        if (run.direct)
          RunBlockDirect(run);
        else
          RunBlockWithFibers(run);
      }
  running = nullptr;
  if (!run.synced) barrier_free_kernels.insert(kernel_id);
}

}  // namespace crema_emu

// ---- The CUDA runtime API ----------------------------------------------------------------

using crema_emu::DeviceScope;

namespace {

cudaError_t Fail(cudaError_t error, const std::string& message) {
  std::fprintf(stderr, "crema CUDA emulator: %s\n", message.c_str());
  crema_emu::last_error = error;
  return error;
}

bool IsHostPointer(const void* p) {
  return !crema_emu::arena().Contains(p);
}

// Checks a copy's direction against where its pointers live.
cudaError_t CheckCopy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                      const char* what) {
  const bool dst_device = crema_emu::IsDevice(dst, bytes),
             src_device = crema_emu::IsDevice(src, bytes);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      ok = dst_device && IsHostPointer(src);
      break;
    case cudaMemcpyDeviceToHost:
      ok = src_device && IsHostPointer(dst);
      break;
    case cudaMemcpyDeviceToDevice:
      ok = dst_device && src_device;
      break;
    case cudaMemcpyHostToHost:
      ok = IsHostPointer(dst) && IsHostPointer(src);
      break;
    default:  // cudaMemcpyDefault: any direction, but device ranges must be whole
      ok = (IsHostPointer(dst) || dst_device) && (IsHostPointer(src) || src_device);
  }
  if (ok) return cudaSuccess;
  char message[256];
  std::snprintf(message, sizeof message, "%s of %zu bytes, kind %d: dst %p is %s, src %p is %s",
                what, bytes, static_cast<int>(kind), dst, dst_device ? "device" : "not device", src,
                src_device ? "device" : "not device");
  return Fail(cudaErrorInvalidValue, message);
}

struct EmuEvent {
  std::chrono::steady_clock::time_point time;
  bool recorded = false;
};

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = crema_emu::arena().Allocate(bytes);
  if (*ptr == nullptr) return Fail(cudaErrorMemoryAllocation, "device arena exhausted");
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (!crema_emu::arena().Free(ptr))
    return Fail(cudaErrorInvalidValue, "cudaFree of a pointer that is not a live allocation");
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::aligned_alloc(4096, (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096);
  return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) {
  return cudaMallocHost(ptr, bytes);
}
cudaError_t cudaFreeHost(void* ptr) {
  if (crema_emu::arena().Contains(ptr))
    return Fail(cudaErrorInvalidValue, "cudaFreeHost of device memory");
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const cudaError_t status = CheckCopy(dst, src, bytes, kind, "cudaMemcpy");
  if (status != cudaSuccess) return status;
  DeviceScope scope("cudaMemcpy");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind kind, cudaStream_t) {
  if (width > dpitch || width > spitch)
    return Fail(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync: width exceeds a pitch");
  for (size_t row = 0; row < height; ++row) {
    const cudaError_t status =
        cudaMemcpy(static_cast<char*>(dst) + row * dpitch,
                   static_cast<const char*>(src) + row * spitch, width, kind);
    if (status != cudaSuccess) return status;
  }
  return cudaSuccess;
}
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind) {
  return cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, nullptr);
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!crema_emu::IsDevice(ptr, bytes))
    return Fail(cudaErrorInvalidValue, "cudaMemset outside a device allocation");
  DeviceScope scope("cudaMemset");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(ptr, value, bytes);
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = crema_emu::DeviceCount();
  return *count > 0 ? cudaSuccess : cudaErrorNoDevice;
}
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= crema_emu::DeviceCount()) return cudaErrorInvalidDevice;
  crema_emu::current_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = crema_emu::current_device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}
cudaError_t cudaDeviceReset() {
  return cudaSuccess;
}
cudaError_t cudaDeviceCanAccessPeer(int* can, int, int) {
  *can = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= crema_emu::DeviceCount()) return cudaErrorInvalidDevice;
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "crema CUDA emulator (host)");
  prop->totalGlobalMem = size_t{80} << 30;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 << 20;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->unifiedAddressing = 1;
  prop->pciBusID = device;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *total = size_t{80} << 30;
  *free_bytes = *total;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = crema_emu::last_error;
  crema_emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return crema_emu::last_error;
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidPitchValue:
      return "invalid pitch argument";
    default:
      return "CUDA error (emulated)";
  }
}
const char* cudaGetErrorName(cudaError_t error) {
  return cudaGetErrorString(error);
}

// Streams run their work at once; a stream is only an identity.
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = reinterpret_cast<cudaStream_t>(new char);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  return cudaStreamCreate(stream);
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int, int) {
  return cudaStreamCreate(stream);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<char*>(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned int) {
  return event ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaStreamQuery(cudaStream_t) {
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = reinterpret_cast<cudaEvent_t>(new EmuEvent);
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  return cudaEventCreate(event);
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete reinterpret_cast<EmuEvent*>(event);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return cudaErrorInvalidResourceHandle;
  EmuEvent* e = reinterpret_cast<EmuEvent*>(event);
  e->time = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return event ? cudaSuccess : cudaErrorInvalidResourceHandle;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  const EmuEvent* a = reinterpret_cast<EmuEvent*>(start);
  const EmuEvent* b = reinterpret_cast<EmuEvent*>(end);
  if (!a || !b || !a->recorded || !b->recorded) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(b->time - a->time).count();
  return cudaSuccess;
}

}  // extern "C"
