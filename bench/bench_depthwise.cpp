// Depthwise 3x3 convolution (group == channels, MobileNet's shapes, batch 8): crema's
// direct kernel (DepthwiseConvolutionLayer) against the im2col + GEMM path
// (ConvolutionLayer) on identical layers.
//
//   BM_depthwise_<path>_<pass>/<shape>/<threads>
//     path:  im2col | direct
//     pass:  forward | backward (input, weight and bias gradients)
//     shape: 0 = 32 x 112 x 112 stride 1, 1 = 64 x 112 x 112 stride 2,
//            2 = 128 x 56 x 56 stride 1,  3 = 512 x 14 x 14 stride 1
//
// Counter "GFLOP/s" = 2 * multiply-adds of the forward convolution / wall-clock seconds
// (for backward: twice that, the input and weight gradients). Wall-clock time, since the work
// runs on an OpenMP team. Threads: 1 and the core count (CREMA_BENCH_THREADS overrides).
#include <benchmark/benchmark.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/math_functions.hpp"
#include "layers/convolution.hpp"
#include "layers/depthwise_convolution.hpp"

namespace {

using crema::Blob;

struct Shape {
  int channels, size, stride;
};
constexpr Shape kShapes[] = {{32, 112, 1}, {64, 112, 2}, {128, 56, 1}, {512, 14, 1}};
constexpr int kBatch = 8;

crema::pb::LayerParameter Param(const Shape& s) {
  crema::pb::LayerParameter p;
  const std::string text = "name: 'dw' type: 'Convolution' convolution_param { num_output: " +
                           std::to_string(s.channels) + " group: " + std::to_string(s.channels) +
                           " kernel_size: 3 pad: 1 stride: " + std::to_string(s.stride) +
                           " weight_filler { type: 'gaussian' std: 0.1 } }";
  google::protobuf::TextFormat::ParseFromString(text, &p);
  return p;
}

void Fill(Blob* b, float scale) {
  float* d = b->mutable_cpu_data();
  for (int i = 0; i < b->count(); ++i) d[i] = scale * static_cast<float>((i * 37 + 11) % 101 - 50);
}

template <typename LayerT>
void Run(benchmark::State& state, bool backward) {
  const Shape& s = kShapes[state.range(0)];
  crema::Context::set_num_threads(static_cast<int>(state.range(1)));
  LayerT layer(Param(s));
  Blob x(std::vector<int>{kBatch, s.channels, s.size, s.size}), y;
  Fill(&x, 0.02f);
  layer.SetUp({&x}, {&y});
  layer.Forward({&x}, {&y});
  Fill(&y, 0.01f);
  crema::cpu_copy(y.count(), y.cpu_data(), y.mutable_cpu_diff());
  const double flops = layer.ForwardFlops({&x}, {&y}) * (backward ? 2.0 : 1.0);
  for (auto _ : state) {
    if (backward) {
      layer.Backward({&y}, {true}, {&x});
      benchmark::DoNotOptimize(x.cpu_diff());
    } else {
      layer.Forward({&x}, {&y});
      benchmark::DoNotOptimize(y.cpu_data());
    }
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_depthwise_im2col_forward(benchmark::State& state) {
  Run<crema::ConvolutionLayer>(state, false);
}
void BM_depthwise_direct_forward(benchmark::State& state) {
  Run<crema::DepthwiseConvolutionLayer>(state, false);
}
void BM_depthwise_im2col_backward(benchmark::State& state) {
  Run<crema::ConvolutionLayer>(state, true);
}
void BM_depthwise_direct_backward(benchmark::State& state) {
  Run<crema::DepthwiseConvolutionLayer>(state, true);
}

int MaxThreads() {
  if (const char* env = std::getenv("CREMA_BENCH_THREADS")) return std::max(1, std::atoi(env));
  return std::max(1u, std::thread::hardware_concurrency());
}

void Args(benchmark::internal::Benchmark* b) {
  const int t = MaxThreads();
  for (int shape = 0; shape < 4; ++shape) {
    b->Args({shape, 1});
    if (t > 1) b->Args({shape, t});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_depthwise_im2col_forward)->Apply(Args);
BENCHMARK(BM_depthwise_direct_forward)->Apply(Args);
BENCHMARK(BM_depthwise_im2col_backward)->Apply(Args);
BENCHMARK(BM_depthwise_direct_backward)->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
