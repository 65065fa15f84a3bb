// Single-precision GEMM throughput: the ceiling for crema's convolution and inner-product
// layers, which spend nearly all their time in sgemm (im2col + GEMM).
//
//   BM_openblas_sgemm/<n>/<threads>   cblas_sgemm directly, C = A * B, all n x n, row-major
//   BM_crema_cpu_gemm/<n>/<threads>   the same product through crema::cpu_gemm
//
// Reported counter "GFLOP/s" = 2 n^3 / wall-clock seconds per product. Wall-clock time (not
// CPU time) is used because OpenBLAS runs the product on an OpenMP team.
// Thread counts: 1 and the machine's core count (CREMA_BENCH_THREADS overrides the latter).
// bench/run_cpu.sh runs this with --benchmark_format=json and reads the counter.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "crema/common.hpp"
#include "crema/math_functions.hpp"

namespace {

// Deterministic, non-trivial operands (no denormals, no zeros).
std::vector<float> make_operand(int n, float seed) {
  std::vector<float> v(static_cast<size_t>(n) * n);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = 0.5f + 0.001f * static_cast<float>((i * 7 + 3) % 997) * seed;
  return v;
}

void set_gflops(benchmark::State& state, int n) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * static_cast<double>(n) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_openblas_sgemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  const std::vector<float> a = make_operand(n, 1.f), b = make_operand(n, 2.f);
  std::vector<float> c(static_cast<size_t>(n) * n, 0.f);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n,
                0.f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, n);
}

void BM_crema_cpu_gemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  crema::Context::set_num_threads(threads);
  openblas_set_num_threads(threads);
  const std::vector<float> a = make_operand(n, 1.f), b = make_operand(n, 2.f);
  std::vector<float> c(static_cast<size_t>(n) * n, 0.f);
  for (auto _ : state) {
    crema::cpu_gemm(crema::Trans::No, crema::Trans::No, n, n, n, 1.f, a.data(), b.data(), 0.f,
                    c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gflops(state, n);
}

int machine_threads() {
  if (const char* env = std::getenv("CREMA_BENCH_THREADS")) {
    const int t = std::atoi(env);
    if (t > 0) return t;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

void register_all() {
  std::vector<int> thread_counts{1};
  if (machine_threads() > 1) thread_counts.push_back(machine_threads());
  for (int t : thread_counts) {
    benchmark::RegisterBenchmark("BM_openblas_sgemm", BM_openblas_sgemm)
        ->Args({1024, t})
        ->ArgNames({"n", "threads"})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_crema_cpu_gemm", BM_crema_cpu_gemm)
        ->Args({1024, t})
        ->ArgNames({"n", "threads"})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
  benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
