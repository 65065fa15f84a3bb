#include "crema/common.hpp"

#include <omp.h>

#include <atomic>
#include <chrono>

namespace crema {
namespace {

std::atomic<Mode> g_mode{Mode::CPU};
std::atomic<int64_t> g_random_seed{-1};
std::atomic<uint64_t> g_base_seed{5489u};
std::atomic<int> g_solver_count{1};
std::atomic<bool> g_allow_cpu_fallback{false};
// Per thread: multi-GPU training runs one solver per device, each on its own thread.
thread_local int t_device_id = 0;
thread_local int t_solver_rank = 0;
thread_local bool t_loss_readback = true;

// SplitMix64: a cheap, well-mixed 64-bit hash used to derive independent seeds.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::mt19937& thread_rng() {
  thread_local std::mt19937 generator(static_cast<uint32_t>(splitmix64(g_base_seed.load())));
  return generator;
}

}  // namespace

Mode Context::mode() {
  return g_mode.load();
}
void Context::set_mode(Mode mode) {
  g_mode = mode;
}
int Context::device_id() {
  return t_device_id;
}
void Context::set_device(int device_id) {
  t_device_id = device_id;
}

void Context::set_random_seed(int64_t seed) {
  g_random_seed = seed;
  if (seed >= 0) {
    g_base_seed = static_cast<uint64_t>(seed);
    // As Caffe: a Mersenne Twister seeded with the seed's low 32 bits, so the draws made
    // while nets are set up (fillers) are Caffe's numbers (see cpu_rng_uniform).
    thread_rng().seed(static_cast<uint32_t>(seed));
    return;
  }
  const uint64_t base =
      static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  g_base_seed = base;
  thread_rng().seed(static_cast<uint32_t>(splitmix64(base)));
}

int64_t Context::random_seed() {
  return g_random_seed.load();
}
std::mt19937& Context::rng() {
  return thread_rng();
}

uint64_t Context::derive_seed(uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(g_base_seed.load() ^ splitmix64(stream)) + index);
}

void Context::reseed(uint64_t stream, uint64_t index) {
  thread_rng().seed(static_cast<uint32_t>(derive_seed(stream, index)));
}

int Context::num_threads() {
  return omp_get_max_threads();
}
void Context::set_num_threads(int n) {
  omp_set_num_threads(n > 0 ? n : 1);
}

int Context::solver_count() {
  return g_solver_count.load();
}
void Context::set_solver_count(int n) {
  g_solver_count = n;
}
int Context::solver_rank() {
  return t_solver_rank;
}
void Context::set_solver_rank(int r) {
  t_solver_rank = r;
}

bool Context::loss_readback() {
  return t_loss_readback;
}
void Context::set_loss_readback(bool on) {
  t_loss_readback = on;
}

bool Context::allow_cpu_fallback() {
  return g_allow_cpu_fallback.load();
}
void Context::set_allow_cpu_fallback(bool allow) {
  g_allow_cpu_fallback = allow;
}

bool Context::has_gpu_support() {
#ifdef CREMA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::string shape_string(const std::vector<int>& shape) {
  std::ostringstream out;
  int64_t count = 1;
  for (int d : shape) {
    out << d << " ";
    count *= d;
  }
  out << "(" << count << ")";
  return out.str();
}

}  // namespace crema
