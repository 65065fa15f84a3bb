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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/cuda_emu/emu_device.hpp"

// The objects behind cudaGraph_t and cudaGraphNode_t (the CUDA headers only declare them).
// A node is one recorded operation; a captured graph is a chain, run in node order.
struct CUgraphNode_st {
  cudaGraphNodeType type;
  std::shared_ptr<const std::function<void()>> run;
};
struct CUgraph_st {
  std::vector<std::unique_ptr<CUgraphNode_st>> nodes;
};

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
  const std::function<void()>* body = nullptr;  // one CUDA thread's work
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  uint64_t warp_slots[kMaxBlockThreads / 32][32];
  bool synced = false;  // some thread met a barrier in this launch
  // The launch's dynamic shared memory (extern __shared__), refilled with 0xff bytes for
  // every block: a kernel that reads what it did not write there sees NaNs, not zeros.
  std::vector<unsigned char> dynamic_shared;
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
  (*run.body)();
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
    (*run.body)();
  }
}

// Kernels seen to meet no barrier in their first launch (per host thread: no locking).
thread_local std::set<const void*> barrier_free_kernels;
const bool always_fibers = [] {
  const char* v = std::getenv("CREMA_EMU_FIBERS");
  return v != nullptr && std::string(v) == "1";
}();

thread_local cudaError_t last_error = cudaSuccess;

// Shared memory per block: 48 KiB by default; up to the opt-in limit of an H100 (227 KiB)
// after cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize). The emulator
// does not tell kernels apart there: the largest value set for any kernel applies.
constexpr size_t kDefaultSharedBytes = 48 * 1024;
constexpr int kOptInSharedBytes = 232448;
std::atomic<size_t> opted_in_shared_bytes{kDefaultSharedBytes};

bool ValidConfig(const LaunchConfig& c) {
  const uint64_t threads = uint64_t{c.block.x} * c.block.y * c.block.z;
  return threads >= 1 && threads <= kMaxBlockThreads && c.block.z <= 64 && c.grid.x >= 1 &&
         c.grid.y >= 1 && c.grid.z >= 1 && c.grid.x <= 2147483647u && c.grid.y <= 65535 &&
         c.grid.z <= 65535 && c.shared <= opted_in_shared_bytes.load();
}

thread_local int current_device = 0;

int DeviceCount() {
  const char* v = std::getenv("CREMA_EMU_DEVICES");
  const int n = v ? std::atoi(v) : 1;
  return n < 0 ? 0 : n;
}

// ---- Streams (see emu_memory.hpp) --------------------------------------------------------

const bool sync_mode = [] {
  const char* v = std::getenv("CREMA_EMU_SYNC");
  return v != nullptr && std::string(v) == "1";
}();

// Depth of queued work the calling thread is running (0: plain host code).
thread_local int running_queued_work = 0;

// A stream: a queue of operations, run in order by whichever thread needs them.
struct Stream {
  explicit Stream(int on_device) : device(on_device) {}
  const int device;
  std::mutex queue_mutex;
  std::deque<std::function<void()>> queue;
  uint64_t submitted = 0;              // operations ever queued (under queue_mutex)
  std::atomic<uint64_t> completed{0};  // operations run
  bool busy = false;                   // an operation is running (under the turn)
};

// Queued work runs one operation at a time, in the thread that holds the turn; a thread
// that waits for another stream runs that stream's work itself. Only an NCCL collective,
// which must meet the other ranks' threads, gives the turn away while it waits.
class Turn {
 public:
  void Take() {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::thread::id me = std::this_thread::get_id();
    if (depth_ > 0 && owner_ == me) {
      ++depth_;
      return;
    }
    free_.wait(lock, [this] { return depth_ == 0; });
    owner_ = me;
    depth_ = 1;
  }
  void Give() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--depth_ == 0) free_.notify_all();
  }
  int GiveAll() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (depth_ == 0 || owner_ != std::this_thread::get_id()) return 0;
    const int depth = depth_;
    depth_ = 0;
    free_.notify_all();
    return depth;
  }
  void TakeAgain(int depth) {
    if (depth == 0) return;
    std::unique_lock<std::mutex> lock(mutex_);
    free_.wait(lock, [this] { return depth_ == 0; });
    owner_ = std::this_thread::get_id();
    depth_ = depth;
  }

 private:
  std::mutex mutex_;
  std::condition_variable free_;
  std::thread::id owner_;
  int depth_ = 0;
};

Turn& turn() {
  static Turn* instance = new Turn;
  return *instance;
}

// Runs the operations of `stream` up to number `upto` (1-based count of submitted ones).
void FlushUpTo(Stream& stream, uint64_t upto) {
  if (stream.completed.load() >= upto) return;
  turn().Take();
  while (stream.completed.load() < upto) {
    if (stream.busy)
      Die("a stream operation waits for later work of its own stream (a deadlock on a GPU)");
    std::function<void()> op;
    {
      std::lock_guard<std::mutex> lock(stream.queue_mutex);
      if (stream.queue.empty()) Die("a stream waits for work that was never queued");
      op = std::move(stream.queue.front());
      stream.queue.pop_front();
    }
    ++running_queued_work;
    stream.busy = true;
    op();
    stream.busy = false;
    --running_queued_work;
    ++stream.completed;
  }
  turn().Give();
}

uint64_t Submitted(Stream& stream) {
  std::lock_guard<std::mutex> lock(stream.queue_mutex);
  return stream.submitted;
}

void FlushAll(Stream& stream) {
  FlushUpTo(stream, Submitted(stream));
}

// Queues `op`; returns its number (what an event recorded just after it waits for).
uint64_t Submit(Stream& stream, std::function<void()> op) {
  uint64_t number;
  {
    std::lock_guard<std::mutex> lock(stream.queue_mutex);
    stream.queue.push_back(std::move(op));
    number = ++stream.submitted;
  }
  if (sync_mode) FlushUpTo(stream, number);
  return number;
}

struct StreamRegistry {
  std::mutex mutex;
  std::map<int, std::shared_ptr<Stream>> legacy;  // per device
  std::vector<std::weak_ptr<Stream>> created;
};
StreamRegistry& streams() {
  static StreamRegistry* registry = new StreamRegistry;  // never destroyed
  return *registry;
}

std::shared_ptr<Stream> LegacyStream(int device) {
  StreamRegistry& r = streams();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::shared_ptr<Stream>& s = r.legacy[device];
  if (!s) s = std::make_shared<Stream>(device);
  return s;
}

// A stream capture sequence (see emu_memory.hpp). Its fields are guarded by the capture
// registry's mutex.
struct Capture {
  unsigned long long id = 0;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id owner;  // the thread that began it
  int device = 0;
  bool blocking = true;  // its stream synchronises with the legacy stream
  bool invalidated = false;
  bool ended = false;
  std::unique_ptr<CUgraph_st> graph = std::make_unique<CUgraph_st>();  // being built
  cudaGraphNode_t last = nullptr;  // the latest node (cudaStreamGetCaptureInfo)
};

// What a cudaStream_t created by the emulator points to.
struct StreamHandle {
  std::shared_ptr<Stream> stream;
  bool blocking = true;              // not created with cudaStreamNonBlocking
  std::shared_ptr<Capture> capture;  // while capturing (under the capture registry's mutex)
};

bool IsLegacyHandle(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
}

std::shared_ptr<Stream> Resolve(cudaStream_t s) {
  if (IsLegacyHandle(s)) return LegacyStream(current_device);
  return reinterpret_cast<StreamHandle*>(s)->stream;
}

// Everything queued on the current device's streams (cudaDeviceSynchronize, cudaFree).
void FlushDevice() {
  std::vector<std::shared_ptr<Stream>> all = {LegacyStream(current_device)};
  {
    StreamRegistry& r = streams();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& weak : r.created)
      if (auto s = weak.lock(); s && s->device == current_device) all.push_back(s);
  }
  for (auto& s : all) FlushAll(*s);
}

// Page-locked host allocations: only copies to or from them are asynchronous in CUDA
// (a copy from pageable memory has read it when the call returns, a copy to it has
// finished).
struct PinnedRegistry {
  std::mutex mutex;
  std::map<uintptr_t, size_t> blocks;
  bool Contains(const void* p, size_t bytes) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    std::lock_guard<std::mutex> lock(mutex);
    auto it = blocks.upper_bound(at);
    if (it == blocks.begin()) return false;
    --it;
    return at + bytes <= it->first + it->second;
  }
};
PinnedRegistry& pinned() {
  static PinnedRegistry* registry = new PinnedRegistry;
  return *registry;
}

// ---- Stream capture (see emu_memory.hpp) --------------------------------------------------

struct CaptureRegistry {
  std::mutex mutex;                            // guards every Capture and capture slot
  std::vector<std::shared_ptr<Capture>> live;  // begun, not ended
  unsigned long long next_id = 1;
};
CaptureRegistry& captures() {
  static CaptureRegistry* registry = new CaptureRegistry;  // never destroyed
  return *registry;
}

// Marks `c` ended and forgets it (the caller clears the slot that held it).
void EndLocked(Capture& c) {
  c.ended = true;
  std::vector<std::shared_ptr<Capture>>& live = captures().live;
  live.erase(std::remove_if(live.begin(), live.end(),
                            [&c](const std::shared_ptr<Capture>& p) { return p.get() == &c; }),
             live.end());
}

// The captures of the calling thread's per-thread streams, by device. A thread that exits
// while capturing ends its captures (they could never be ended otherwise).
struct PerThreadCaptures {
  std::map<int, std::shared_ptr<Capture>> by_device;
  ~PerThreadCaptures() {
    std::lock_guard<std::mutex> lock(captures().mutex);
    for (auto& entry : by_device)
      if (entry.second) EndLocked(*entry.second);
  }
};
thread_local PerThreadCaptures per_thread_captures;

bool IsLegacyStream(cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy;
}

// Where the capture of `s` (not the legacy stream) is kept, as the calling thread sees it.
std::shared_ptr<Capture>& CaptureSlotLocked(cudaStream_t s) {
  if (s == cudaStreamPerThread) return per_thread_captures.by_device[current_device];
  return reinterpret_cast<StreamHandle*>(s)->capture;
}

// True when the calling thread's work on the legacy stream would wait for `c`: a capture it
// began on a blocking stream of the current device. CUDA makes any thread's legacy work wait;
// the emulator looks at the calling thread only, so other threads run as before.
bool BlocksLegacyLocked(const Capture& c) {
  return !c.ended && c.blocking && c.device == current_device &&
         c.owner == std::this_thread::get_id();
}

// Where the calling thread's next operation on `s` goes.
struct Route {
  enum Kind { kRun, kRecord, kRefuse } kind = kRun;
  std::shared_ptr<Capture> capture;  // kRecord, or the invalidated capture of kRefuse
  cudaError_t error = cudaSuccess;   // kRefuse
};

// The legacy stream refuses work while the thread captures a blocking stream, and that
// invalidates those captures; an invalidated capture refuses everything.
Route RouteLocked(cudaStream_t s) {
  Route route;
  if (IsLegacyStream(s)) {
    for (const std::shared_ptr<Capture>& c : captures().live)
      if (BlocksLegacyLocked(*c)) {
        c->invalidated = true;
        route.kind = Route::kRefuse;
        route.error = cudaErrorStreamCaptureImplicit;
      }
    return route;
  }
  const std::shared_ptr<Capture>& c = CaptureSlotLocked(s);
  if (!c) return route;
  route.capture = c;
  route.kind = c->invalidated ? Route::kRefuse : Route::kRecord;
  if (c->invalidated) route.error = cudaErrorStreamCaptureInvalidated;
  return route;
}

void AppendLocked(Capture& c, cudaGraphNodeType type, std::function<void()> op) {
  auto node = std::make_unique<CUgraphNode_st>();
  node->type = type;
  node->run = std::make_shared<const std::function<void()>>(std::move(op));
  c.last = node.get();
  c.graph->nodes.push_back(std::move(node));
}

// Reports a call refused because of a stream capture; returns `error`.
cudaError_t Refused(cudaError_t error, const char* what) {
  std::fprintf(stderr, "crema CUDA emulator: stream capture: %s: %s\n", what,
               cudaGetErrorString(error));
  last_error = error;
  return error;
}

// For an operation that may not happen on `s` while it captures: cudaSuccess when no capture
// concerns the calling thread's work on `s`; otherwise the capture is invalidated and the
// error (cudaErrorStreamCaptureUnsupported, or the refusal's own) reported and returned.
cudaError_t Forbid(cudaStream_t s, const char* what) {
  Route route;
  {
    std::lock_guard<std::mutex> lock(captures().mutex);
    route = RouteLocked(s);
    if (route.kind == Route::kRun) return cudaSuccess;
    if (route.kind == Route::kRecord) {
      route.capture->invalidated = true;
      route.error = cudaErrorStreamCaptureUnsupported;
    }
  }
  return Refused(route.error, what);
}

// A potentially unsafe call (CUDA's term) by a thread that captures in Global or ThreadLocal
// mode invalidates those captures and fails with cudaErrorStreamCaptureUnsupported.
cudaError_t ForbidUnsafe(const char* what) {
  bool refused = false;
  {
    std::lock_guard<std::mutex> lock(captures().mutex);
    for (const std::shared_ptr<Capture>& c : captures().live)
      if (c->owner == std::this_thread::get_id() && c->mode != cudaStreamCaptureModeRelaxed) {
        c->invalidated = true;
        refused = true;
      }
  }
  return refused ? Refused(cudaErrorStreamCaptureUnsupported, what) : cudaSuccess;
}

// Queues `op` on `s`, or records it as a node of `type` when the calling thread's work on `s`
// is being captured (with `replay_check`, if given, run before it at every replay). A refused
// operation runs nothing and returns the error.
cudaError_t Enqueue(cudaStream_t s, cudaGraphNodeType type, const char* what,
                    std::function<void()> op, std::function<void()> replay_check = nullptr) {
  Route route;
  {
    std::lock_guard<std::mutex> lock(captures().mutex);
    route = RouteLocked(s);
    if (route.kind == Route::kRecord) {
      if (replay_check)
        AppendLocked(*route.capture, type, [replay_check, op] {
          replay_check();
          op();
        });
      else
        AppendLocked(*route.capture, type, std::move(op));
      return cudaSuccess;
    }
  }
  if (route.kind == Route::kRefuse) return Refused(route.error, what);
  Submit(*Resolve(s), std::move(op));
  return cudaSuccess;
}

}  // namespace

void StreamSubmit(cudaStream_t stream, std::function<void()> op) {
  Submit(*Resolve(stream), std::move(op));
}

void StreamFlush(cudaStream_t stream) {
  FlushAll(*Resolve(stream));
}

CaptureOutcome RecordIfCapturing(cudaStream_t stream, const std::function<void()>& op,
                                 const char* what) {
  Route route;
  {
    std::lock_guard<std::mutex> lock(captures().mutex);
    route = RouteLocked(stream);
    if (route.kind == Route::kRun) return CaptureOutcome::kNotCapturing;
    if (route.kind == Route::kRecord) {
      AppendLocked(*route.capture, cudaGraphNodeTypeKernel, op);
      return CaptureOutcome::kRecorded;
    }
  }
  Refused(route.error, what);
  return CaptureOutcome::kRefused;
}

bool RefuseIfCapturing(cudaStream_t stream, const char* what) {
  return Forbid(stream, what) != cudaSuccess;
}

bool RefuseUnsafeCall(const char* what) {
  return ForbidUnsafe(what) != cudaSuccess;
}

int GiveUpTurn() {
  return turn().GiveAll();
}
void TakeTurnAgain(int depth) {
  turn().TakeAgain(depth);
}

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

// A device operation started by host code (a synchronous copy, a library call) comes after
// everything the thread queued on its legacy default stream.
DeviceScope::DeviceScope(const char* what) : what_(what) {
  if (running_queued_work == 0 && running == nullptr) FlushAll(*LegacyStream(current_device));
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

namespace {

void ExecuteGrid(const char* name, const void* kernel_id, const LaunchConfig& config,
                 const std::function<void()>& thread_body) {
  DeviceScope scope(name);
  static thread_local GridRun run;
  run.grid = config.grid;
  run.block = config.block;
  run.thread_count = static_cast<int>(config.block.x * config.block.y * config.block.z);
  run.name = name;
  run.body = &thread_body;
  run.synced = false;
  run.direct = !always_fibers && barrier_free_kernels.count(kernel_id) > 0;
  if (run.fibers.size() < static_cast<size_t>(run.thread_count))
    run.fibers.resize(run.thread_count);
  running = &run;
  for (unsigned z = 0; z < config.grid.z; ++z)
    for (unsigned y = 0; y < config.grid.y; ++y)
      for (unsigned x = 0; x < config.grid.x; ++x) {
        run.block_idx = uint3{x, y, z};
        run.dynamic_shared.assign(config.shared, 0xff);
        if (run.direct)
          RunBlockDirect(run);
        else
          RunBlockWithFibers(run);
      }
  running = nullptr;
  if (!run.synced) barrier_free_kernels.insert(kernel_id);
}

}  // namespace

void* DynamicSharedBytes() {
  GridRun& run = Run();
  if (run.dynamic_shared.empty())
    Die(std::string("kernel ") + run.name +
        " uses extern __shared__ memory but was launched without any");
  return run.dynamic_shared.data();
}

void RunGrid(const char* name, const void* kernel_id, const LaunchConfig& config,
             std::function<void()> thread_body, std::function<void()> replay_check) {
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
  const cudaError_t status = Enqueue(
      config.stream, cudaGraphNodeTypeKernel, name,
      [name, kernel_id, config, thread_body = std::move(thread_body)] {
        ExecuteGrid(name, kernel_id, config, thread_body);
      },
      std::move(replay_check));
  if (status != cudaSuccess) last_error = status;
}

}  // namespace crema_emu

// ---- The CUDA runtime API ----------------------------------------------------------------

using crema_emu::DeviceScope;

// An executable graph: the nodes' operations, shared with the graph (which may be destroyed
// first), and its latest launch.
struct CUgraphExec_st {
  std::shared_ptr<const std::vector<std::shared_ptr<const std::function<void()>>>> ops;
  std::mutex mutex;
  std::shared_ptr<crema_emu::Stream> last_stream;  // null: never launched
  uint64_t last_number = 0;
};

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

// An event: the stream and operation number of its latest record; the record's marker
// operation stamps the time when it runs.
struct EventState {
  std::mutex mutex;
  std::shared_ptr<crema_emu::Stream> stream;  // null: never recorded
  uint64_t number = 0;
  uint64_t records = 0;
  std::chrono::steady_clock::time_point time;
  // The capture that holds the latest record, when that record was captured (the record
  // above is then the one before it).
  std::weak_ptr<crema_emu::Capture> captured_in;
};
struct EmuEvent {
  std::shared_ptr<EventState> state = std::make_shared<EventState>();
};

EventState& StateOf(cudaEvent_t event) {
  return *reinterpret_cast<EmuEvent*>(event)->state;
}

// Runs the event's stream up to its latest record (nothing if it was never recorded).
void CompleteEvent(cudaEvent_t event) {
  EventState& e = StateOf(event);
  std::shared_ptr<crema_emu::Stream> stream;
  uint64_t number;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    stream = e.stream;
    number = e.number;
  }
  if (stream) crema_emu::FlushUpTo(*stream, number);
}

// The live capture that holds the event's latest record, or null.
std::shared_ptr<crema_emu::Capture> LiveCaptureOf(cudaEvent_t event) {
  std::shared_ptr<crema_emu::Capture> c;
  {
    EventState& e = StateOf(event);
    std::lock_guard<std::mutex> lock(e.mutex);
    c = e.captured_in.lock();
  }
  std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
  return c && !c->ended ? c : nullptr;
}

// A host wait for an event whose latest record was captured (it will never complete as
// such): invalidates that capture and fails with cudaErrorCapturedEvent.
cudaError_t ForbidCapturedEvent(cudaEvent_t event, const char* what) {
  std::shared_ptr<crema_emu::Capture> c = LiveCaptureOf(event);
  if (!c) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
    c->invalidated = true;
  }
  return crema_emu::Refused(cudaErrorCapturedEvent, what);
}

// Asynchronous copies queue only when host memory on their side is page-locked.
bool CopyIsAsynchronous(void* dst, const void* src, size_t bytes) {
  auto host_side_pinned = [bytes](const void* p) {
    return crema_emu::arena().Contains(p) || crema_emu::pinned().Contains(p, bytes);
  };
  return host_side_pinned(dst) && host_side_pinned(src);
}

// A copy that completes before the call returns (cudaMemcpy, and cudaMemcpyAsync of pageable
// memory).
cudaError_t CopyNow(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                    const char* what) {
  const cudaError_t status = CheckCopy(dst, src, bytes, kind, what);
  if (status != cudaSuccess) return status;
  DeviceScope scope(what);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

// Run before every replay of a recorded copy or memset: its device or page-locked memory
// may have been freed since the capture.
void CheckStillAllocated(const void* p, size_t bytes, const char* what) {
  if (crema_emu::arena().Contains(p)) {
    crema_emu::RequireDevice(p, bytes, what);
  } else if (!crema_emu::pinned().Contains(p, bytes)) {
    char message[160];
    std::snprintf(message, sizeof message,
                  "%s: page-locked host memory at %p was freed after the capture", what, p);
    crema_emu::Die(message);
  }
}

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (const cudaError_t e = crema_emu::ForbidUnsafe("cudaMalloc"); e != cudaSuccess) {
    *ptr = nullptr;
    return e;
  }
  *ptr = crema_emu::arena().Allocate(bytes);
  if (*ptr == nullptr) return Fail(cudaErrorMemoryAllocation, "device arena exhausted");
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (const cudaError_t e = crema_emu::ForbidUnsafe("cudaFree"); e != cudaSuccess) return e;
  if (ptr == nullptr) return cudaSuccess;
  crema_emu::FlushDevice();  // cudaFree waits for the device
  if (!crema_emu::arena().Free(ptr))
    return Fail(cudaErrorInvalidValue, "cudaFree of a pointer that is not a live allocation");
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (const cudaError_t e = crema_emu::ForbidUnsafe("cudaMallocHost"); e != cudaSuccess) {
    *ptr = nullptr;
    return e;
  }
  const size_t size = (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096;
  *ptr = std::aligned_alloc(4096, size);
  if (*ptr == nullptr) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(crema_emu::pinned().mutex);
  crema_emu::pinned().blocks[reinterpret_cast<uintptr_t>(*ptr)] = size;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) {
  return cudaMallocHost(ptr, bytes);
}
cudaError_t cudaFreeHost(void* ptr) {
  if (const cudaError_t e = crema_emu::ForbidUnsafe("cudaFreeHost"); e != cudaSuccess) return e;
  if (crema_emu::arena().Contains(ptr))
    return Fail(cudaErrorInvalidValue, "cudaFreeHost of device memory");
  crema_emu::FlushDevice();  // like cudaFree, waits for the device
  {
    std::lock_guard<std::mutex> lock(crema_emu::pinned().mutex);
    crema_emu::pinned().blocks.erase(reinterpret_cast<uintptr_t>(ptr));
  }
  std::free(ptr);
  return cudaSuccess;
}

// Synchronous copies and memsets run on the legacy stream: refused while the thread captures
// a blocking stream.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t e = crema_emu::Forbid(cudaStreamLegacy, "cudaMemcpy"); e != cudaSuccess)
    return e;
  return CopyNow(dst, src, bytes, kind, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  const cudaError_t status = CheckCopy(dst, src, bytes, kind, "cudaMemcpyAsync");
  if (status != cudaSuccess) return status;
  if (!CopyIsAsynchronous(dst, src, bytes)) {
    // Pageable host memory: a synchronous copy, which a capture cannot record. (CUDA's code
    // for this is not documented; cudaErrorStreamCaptureUnsupported is the closest.)
    if (const cudaError_t e = crema_emu::Forbid(stream, "cudaMemcpyAsync of pageable host memory");
        e != cudaSuccess)
      return e;
    crema_emu::FlushAll(*crema_emu::Resolve(stream));
    return CopyNow(dst, src, bytes, kind, "cudaMemcpy");
  }
  return crema_emu::Enqueue(
      stream, cudaGraphNodeTypeMemcpy, "cudaMemcpyAsync",
      [dst, src, bytes] {
        DeviceScope scope("cudaMemcpyAsync");
        std::memmove(dst, src, bytes);
      },
      [dst, src, bytes] {
        CheckStillAllocated(dst, bytes, "cudaMemcpyAsync (graph replay) destination");
        CheckStillAllocated(src, bytes, "cudaMemcpyAsync (graph replay) source");
      });
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream) {
  if (width > dpitch || width > spitch)
    return Fail(cudaErrorInvalidPitchValue, "cudaMemcpy2DAsync: width exceeds a pitch");
  if (!crema_emu::IsLegacyStream(stream)) {
    bool capturing;
    {
      std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
      capturing = crema_emu::CaptureSlotLocked(stream) != nullptr;
    }
    // Captured: one node that copies every row (each row checked now, as below).
    if (capturing && width > 0 && height > 0) {
      for (size_t row = 0; row < height; ++row) {
        char* d = static_cast<char*>(dst) + row * dpitch;
        const char* s = static_cast<const char*>(src) + row * spitch;
        if (const cudaError_t e = CheckCopy(d, s, width, kind, "cudaMemcpy2DAsync");
            e != cudaSuccess)
          return e;
        if (!CopyIsAsynchronous(d, s, width))
          return crema_emu::Forbid(stream, "cudaMemcpy2DAsync of pageable host memory");
      }
      const size_t dst_span = (height - 1) * dpitch + width,
                   src_span = (height - 1) * spitch + width;
      return crema_emu::Enqueue(
          stream, cudaGraphNodeTypeMemcpy, "cudaMemcpy2DAsync",
          [=] {
            DeviceScope scope("cudaMemcpy2DAsync");
            for (size_t row = 0; row < height; ++row)
              std::memmove(static_cast<char*>(dst) + row * dpitch,
                           static_cast<const char*>(src) + row * spitch, width);
          },
          [=] {
            CheckStillAllocated(dst, dst_span, "cudaMemcpy2DAsync (graph replay) destination");
            CheckStillAllocated(src, src_span, "cudaMemcpy2DAsync (graph replay) source");
          });
    }
  }
  for (size_t row = 0; row < height; ++row) {
    const cudaError_t status =
        cudaMemcpyAsync(static_cast<char*>(dst) + row * dpitch,
                        static_cast<const char*>(src) + row * spitch, width, kind, stream);
    if (status != cudaSuccess) return status;
  }
  return cudaSuccess;
}
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind) {
  const cudaError_t status =
      cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, kind, nullptr);
  crema_emu::StreamFlush(nullptr);
  return status;
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!crema_emu::IsDevice(ptr, bytes))
    return Fail(cudaErrorInvalidValue, "cudaMemset outside a device allocation");
  if (const cudaError_t e = crema_emu::Forbid(cudaStreamLegacy, "cudaMemset"); e != cudaSuccess)
    return e;
  DeviceScope scope("cudaMemset");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!crema_emu::IsDevice(ptr, bytes))
    return Fail(cudaErrorInvalidValue, "cudaMemsetAsync outside a device allocation");
  return crema_emu::Enqueue(
      stream, cudaGraphNodeTypeMemset, "cudaMemsetAsync",
      [ptr, value, bytes] {
        DeviceScope scope("cudaMemsetAsync");
        std::memset(ptr, value, bytes);
      },
      [ptr, bytes] { crema_emu::RequireDevice(ptr, bytes, "cudaMemsetAsync (graph replay)"); });
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
  return crema_emu::ForbidUnsafe("cudaDeviceSynchronize");
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
  prop->sharedMemPerBlockOptin = crema_emu::kOptInSharedBytes;
  prop->memoryBusWidth = 5120;
  prop->l2CacheSize = 50 << 20;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->unifiedAddressing = 1;
  prop->pciBusID = device;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device < 0 || device >= crema_emu::DeviceCount())
    return Fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: no such device");
  switch (attr) {
    case cudaDevAttrMultiProcessorCount:
      *value = 132;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = crema_emu::kOptInSharedBytes;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = static_cast<int>(crema_emu::kDefaultSharedBytes);
      return cudaSuccess;
    default:
      return Fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " +
                                             std::to_string(static_cast<int>(attr)) +
                                             " is not emulated");
  }
}
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr) return Fail(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: null");
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return Fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute not emulated");
  if (value < 0 || value > crema_emu::kOptInSharedBytes)
    return Fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                           " bytes of shared memory is over the device's limit");
  size_t seen = crema_emu::opted_in_shared_bytes.load();
  while (static_cast<size_t>(value) > seen &&
         !crema_emu::opted_in_shared_bytes.compare_exchange_weak(seen, value)) {
  }
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
    case cudaErrorIllegalState:
      return "the operation does not fit the object's state";
    case cudaErrorStreamCaptureUnsupported:
      return "not allowed while the stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "the stream's capture was invalidated by an earlier error";
    case cudaErrorStreamCaptureMerge:
      return "would merge two separate stream captures";
    case cudaErrorStreamCaptureIsolation:
      return "would make the capture depend on work outside it";
    case cudaErrorStreamCaptureImplicit:
      return "would make the legacy stream wait for a capturing stream";
    case cudaErrorCapturedEvent:
      return "not allowed on an event last recorded in a stream capture";
    case cudaErrorStreamCaptureWrongThread:
      return "the capture must be ended by the thread that began it";
    default:
      return "CUDA error (emulated)";
  }
}
const char* cudaGetErrorName(cudaError_t error) {
  return cudaGetErrorString(error);
}

// Streams and events: see emu_memory.hpp.
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  auto handle = new crema_emu::StreamHandle;
  handle->stream = std::make_shared<crema_emu::Stream>(crema_emu::current_device);
  handle->blocking = (flags & cudaStreamNonBlocking) == 0;
  {
    crema_emu::StreamRegistry& r = crema_emu::streams();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.created.push_back(handle->stream);
  }
  *stream = reinterpret_cast<cudaStream_t>(handle);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int) {
  return cudaStreamCreateWithFlags(stream, flags);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (crema_emu::IsLegacyHandle(stream)) return cudaErrorInvalidResourceHandle;
  auto handle = reinterpret_cast<crema_emu::StreamHandle*>(stream);
  bool was_capturing = false;
  {
    std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
    if (handle->capture) {  // the capture can never be ended now: it is discarded
      crema_emu::EndLocked(*handle->capture);
      handle->capture.reset();
      was_capturing = true;
    }
  }
  if (was_capturing)
    std::fprintf(stderr,
                 "crema CUDA emulator: cudaStreamDestroy of a capturing stream; "
                 "its capture is discarded\n");
  crema_emu::StreamFlush(stream);  // its queued work still completes
  delete handle;
  return cudaSuccess;
}
// A capturing stream cannot be waited for (nor the legacy stream while the thread captures a
// blocking stream).
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (const cudaError_t e = crema_emu::Forbid(stream, "cudaStreamSynchronize"); e != cudaSuccess)
    return e;
  crema_emu::StreamFlush(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (const cudaError_t e = crema_emu::Forbid(stream, "cudaStreamQuery"); e != cudaSuccess)
    return e;
  crema_emu::StreamFlush(stream);  // a poll would otherwise wait forever
  return cudaSuccess;
}
// In a capture, a wait for an event recorded earlier in the same capture adds nothing (one
// stream: its order already holds); any other event would tie the graph to work outside it.
// A stream that is not capturing waiting for a captured event would join the capture in
// CUDA; the emulator captures one stream only and refuses that.
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!event) return cudaErrorInvalidResourceHandle;
  EventState& e = StateOf(event);
  std::shared_ptr<crema_emu::Stream> source;
  uint64_t number;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    source = e.stream;
    number = e.number;
  }
  const std::shared_ptr<crema_emu::Capture> event_capture = LiveCaptureOf(event);
  crema_emu::Route route;
  {
    std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
    route = crema_emu::RouteLocked(stream);
    if (route.kind == crema_emu::Route::kRecord) {
      if (event_capture == route.capture || (!event_capture && !source)) return cudaSuccess;
      route.capture->invalidated = true;
      route.kind = crema_emu::Route::kRefuse;
      route.error = event_capture ? cudaErrorStreamCaptureMerge : cudaErrorStreamCaptureIsolation;
    } else if (route.kind == crema_emu::Route::kRun && event_capture) {
      event_capture->invalidated = true;
      route.kind = crema_emu::Route::kRefuse;
      route.error = cudaErrorStreamCaptureUnsupported;
    }
  }
  if (route.kind == crema_emu::Route::kRefuse)
    return crema_emu::Refused(route.error, "cudaStreamWaitEvent");
  if (!source) return cudaSuccess;  // never recorded: nothing to wait for
  crema_emu::StreamSubmit(stream, [source, number] { crema_emu::FlushUpTo(*source, number); });
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
  delete reinterpret_cast<EmuEvent*>(event);  // a queued record keeps its state alive
  return cudaSuccess;
}
// A record in a capture adds no node; it marks the event as captured (see
// cudaStreamWaitEvent, cudaEventSynchronize).
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return cudaErrorInvalidResourceHandle;
  std::shared_ptr<EventState> state = reinterpret_cast<EmuEvent*>(event)->state;
  crema_emu::Route route;
  {
    std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
    route = crema_emu::RouteLocked(stream);
    if (route.kind == crema_emu::Route::kRecord) {
      std::lock_guard<std::mutex> event_lock(state->mutex);
      state->captured_in = route.capture;
      return cudaSuccess;
    }
  }
  if (route.kind == crema_emu::Route::kRefuse)
    return crema_emu::Refused(route.error, "cudaEventRecord");
  std::shared_ptr<crema_emu::Stream> s = crema_emu::Resolve(stream);
  uint64_t record;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    record = ++state->records;
    state->captured_in.reset();
  }
  const uint64_t number = crema_emu::Submit(*s, [state, record] {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->records == record) state->time = std::chrono::steady_clock::now();
  });
  std::lock_guard<std::mutex> lock(state->mutex);
  if (state->records == record) {
    state->stream = s;
    state->number = number;
  }
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return cudaErrorInvalidResourceHandle;
  if (const cudaError_t e = ForbidCapturedEvent(event, "cudaEventSynchronize"); e != cudaSuccess)
    return e;
  CompleteEvent(event);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (!event) return cudaErrorInvalidResourceHandle;
  if (const cudaError_t e = ForbidCapturedEvent(event, "cudaEventQuery"); e != cudaSuccess)
    return e;
  CompleteEvent(event);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end) return cudaErrorInvalidResourceHandle;
  CompleteEvent(start);
  CompleteEvent(end);
  const EventState &a = StateOf(start), &b = StateOf(end);
  if (!a.stream || !b.stream) return cudaErrorInvalidResourceHandle;
  *ms = std::chrono::duration<float, std::milli>(b.time - a.time).count();
  return cudaSuccess;
}

// ---- Stream capture and graphs (see emu_memory.hpp) ---------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (crema_emu::IsLegacyStream(stream))
    return Fail(cudaErrorStreamCaptureUnsupported,
                "cudaStreamBeginCapture: the legacy default stream cannot be captured");
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return Fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: unknown capture mode");
  std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
  std::shared_ptr<crema_emu::Capture>& slot = crema_emu::CaptureSlotLocked(stream);
  // CUDA documents no code for this; cudaErrorIllegalState is the closest.
  if (slot)
    return Fail(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
  auto c = std::make_shared<crema_emu::Capture>();
  c->id = crema_emu::captures().next_id++;
  c->mode = mode;
  c->owner = std::this_thread::get_id();
  if (stream == cudaStreamPerThread) {
    c->device = crema_emu::current_device;
  } else {
    auto handle = reinterpret_cast<crema_emu::StreamHandle*>(stream);
    c->device = handle->stream->device;
    c->blocking = handle->blocking;
  }
  slot = c;
  crema_emu::captures().live.push_back(c);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  if (pGraph == nullptr) return Fail(cudaErrorInvalidValue, "cudaStreamEndCapture: no graph");
  *pGraph = nullptr;
  if (crema_emu::IsLegacyStream(stream))
    return Fail(cudaErrorIllegalState, "cudaStreamEndCapture: the legacy stream never captures");
  std::shared_ptr<crema_emu::Capture> c;
  {
    std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
    std::shared_ptr<crema_emu::Capture>& slot = crema_emu::CaptureSlotLocked(stream);
    if (!slot)
      return Fail(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
    if (slot->mode != cudaStreamCaptureModeRelaxed && slot->owner != std::this_thread::get_id())
      return Fail(cudaErrorStreamCaptureWrongThread,
                  "cudaStreamEndCapture from another thread than the one that began the capture");
    c = std::move(slot);
    slot.reset();
    crema_emu::EndLocked(*c);
  }
  if (c->invalidated)
    return Fail(cudaErrorStreamCaptureInvalidated,
                "cudaStreamEndCapture: the capture was invalidated; no graph");
  *pGraph = c->graph.release();
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* pCaptureStatus) {
  if (pCaptureStatus == nullptr) return cudaErrorInvalidValue;
  std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
  *pCaptureStatus = cudaStreamCaptureStatusNone;
  if (crema_emu::IsLegacyStream(stream)) {
    // As documented: the error, without invalidating the captures.
    for (const std::shared_ptr<crema_emu::Capture>& c : crema_emu::captures().live)
      if (crema_emu::BlocksLegacyLocked(*c))
        return crema_emu::last_error = cudaErrorStreamCaptureImplicit;
    return cudaSuccess;
  }
  const std::shared_ptr<crema_emu::Capture>& c = crema_emu::CaptureSlotLocked(stream);
  if (c)
    *pCaptureStatus =
        c->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

#if CUDART_VERSION >= 13000
cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream,
                                     cudaStreamCaptureStatus* captureStatus_out,
                                     unsigned long long* id_out, cudaGraph_t* graph_out,
                                     const cudaGraphNode_t** dependencies_out,
                                     const cudaGraphEdgeData** edgeData_out,
                                     size_t* numDependencies_out) {
  if (captureStatus_out == nullptr || (edgeData_out != nullptr && dependencies_out == nullptr))
    return cudaErrorInvalidValue;
  const cudaError_t status = cudaStreamIsCapturing(stream, captureStatus_out);
  if (status != cudaSuccess || *captureStatus_out != cudaStreamCaptureStatusActive) return status;
  std::lock_guard<std::mutex> lock(crema_emu::captures().mutex);
  crema_emu::Capture& c = *crema_emu::CaptureSlotLocked(stream);
  if (id_out) *id_out = c.id;
  if (graph_out) *graph_out = c.graph.get();
  // The next node depends on the latest one (a chain); no edge data.
  if (dependencies_out) *dependencies_out = c.last ? &c.last : nullptr;
  if (edgeData_out) *edgeData_out = nullptr;
  if (numDependencies_out) *numDependencies_out = c.last ? 1 : 0;
  return cudaSuccess;
}
#endif

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph,
                                 unsigned long long) {
  if (pGraphExec == nullptr || graph == nullptr)
    return Fail(cudaErrorInvalidValue, "cudaGraphInstantiate: null graph or result");
  auto exec = new CUgraphExec_st;
  auto ops = std::make_shared<std::vector<std::shared_ptr<const std::function<void()>>>>();
  for (const auto& node : graph->nodes) ops->push_back(node->run);
  exec->ops = std::move(ops);
  *pGraphExec = exec;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* pGraphExec, cudaGraph_t graph,
                                          unsigned long long flags) {
  return cudaGraphInstantiate(pGraphExec, graph, flags);
}

// One queued operation that runs the graph's nodes in order. It first waits for the exec's
// previous launch (CUDA orders launches of one executable graph, whatever their streams).
cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  if (graphExec == nullptr) return Fail(cudaErrorInvalidValue, "cudaGraphLaunch: null graph");
  // A launch into a capturing stream is refused (cudaErrorStreamCaptureUnsupported), as CUDA
  // has been seen to do; the emulator does not nest graphs.
  if (const cudaError_t e = crema_emu::Forbid(stream, "cudaGraphLaunch"); e != cudaSuccess)
    return e;
  std::shared_ptr<crema_emu::Stream> s = crema_emu::Resolve(stream);
  std::lock_guard<std::mutex> lock(graphExec->mutex);
  auto ops = graphExec->ops;
  auto previous = graphExec->last_stream;
  const uint64_t previous_number = graphExec->last_number;
  graphExec->last_number = crema_emu::Submit(*s, [ops, previous, previous_number] {
    if (previous) crema_emu::FlushUpTo(*previous, previous_number);
    for (const auto& op : *ops) (*op)();
  });
  graphExec->last_stream = s;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  delete graphExec;  // a queued launch keeps its operations alive
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* numNodes) {
  if (graph == nullptr || numNodes == nullptr) return cudaErrorInvalidValue;
  const size_t count = graph->nodes.size();
  if (nodes == nullptr) {
    *numNodes = count;
    return cudaSuccess;
  }
  for (size_t i = 0; i < *numNodes; ++i) nodes[i] = i < count ? graph->nodes[i].get() : nullptr;
  *numNodes = std::min(*numNodes, count);
  return cudaSuccess;
}
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType* pType) {
  if (node == nullptr || pType == nullptr) return cudaErrorInvalidValue;
  *pType = node->type;
  return cudaSuccess;
}

}  // extern "C"
