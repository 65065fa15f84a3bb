// Convolution layer throughput, forward and backward, on the layers that dominate the
// LeNet and VGG-CIFAR benchmarks (batch 64):
//
//   lenet_conv2     20 -> 50 channels, 12x12 input, 5x5 kernel          (output 8x8)
//   vgg_conv1_1      3 -> 50, 32x32, 3x3 pad 1   (first layer: no data gradient)
//   vgg_conv1_2     50 -> 50, 32x32, 3x3 pad 1
//   vgg_conv2_1     50 -> 100, 16x16, 3x3 pad 1
//   vgg_conv2_2    100 -> 100, 16x16, 3x3 pad 1
//
//   BM_conv_forward/<layer>/<threads>    Forward
//   BM_conv_backward/<layer>/<threads>   Backward: bias + weight gradient (+ data gradient)
//
// Counter "GFLOP/s" = the GEMM work (2 x multiply-adds: ForwardFlops per pass, counted once
// for the weight gradient and once for the data gradient) / wall-clock seconds. Thread
// counts: 1 and the machine's core count (CREMA_BENCH_THREADS overrides the latter).
#include <benchmark/benchmark.h>
#include <google/protobuf/text_format.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace {

struct ConvSpec {
  const char* name;
  int in_channels, size, out_channels, kernel, pad;
  bool data_gradient;
};

const ConvSpec kSpecs[] = {
    {"lenet_conv2", 20, 12, 50, 5, 0, true},   {"vgg_conv1_1", 3, 32, 50, 3, 1, false},
    {"vgg_conv1_2", 50, 32, 50, 3, 1, true},   {"vgg_conv2_1", 50, 16, 100, 3, 1, true},
    {"vgg_conv2_2", 100, 16, 100, 3, 1, true},
};
constexpr int kBatch = 64;

struct Fixture {
  std::shared_ptr<crema::Layer> layer;
  crema::Blob bottom, top;
  double flops = 0;

  explicit Fixture(const ConvSpec& s) {
    crema::pb::LayerParameter param;
    const std::string text =
        std::string("name: '") + s.name +
        "' type: 'Convolution' convolution_param { num_output: " + std::to_string(s.out_channels) +
        " kernel_size: " + std::to_string(s.kernel) + " pad: " + std::to_string(s.pad) +
        " weight_filler { type: 'xavier' } bias_filler { type: 'constant' "
        "value: 0.1 } }";
    google::protobuf::TextFormat::ParseFromString(text, &param);
    layer = crema::LayerRegistry::Create(param);
    bottom.Reshape({kBatch, s.in_channels, s.size, s.size});
    crema::Context::reseed(1, 1);
    crema::cpu_rng_gaussian(bottom.count(), 0.f, 1.f, bottom.mutable_cpu_data());
    layer->SetUp({&bottom}, {&top});
    flops = layer->ForwardFlops({&bottom}, {&top});
    crema::cpu_rng_gaussian(top.count(), 0.f, 1.f, top.mutable_cpu_diff());
  }
};

void BM_conv_forward(benchmark::State& state) {
  const ConvSpec& spec = kSpecs[state.range(0)];
  crema::Context::set_num_threads(static_cast<int>(state.range(1)));
  Fixture f(spec);
  state.SetLabel(spec.name);
  for (auto _ : state) {
    f.layer->Forward({&f.bottom}, {&f.top});
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(f.flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_conv_backward(benchmark::State& state) {
  const ConvSpec& spec = kSpecs[state.range(0)];
  crema::Context::set_num_threads(static_cast<int>(state.range(1)));
  Fixture f(spec);
  state.SetLabel(spec.name);
  f.layer->Forward({&f.bottom}, {&f.top});
  const std::vector<bool> down = {spec.data_gradient};
  for (auto _ : state) {
    f.layer->Backward({&f.top}, down, {&f.bottom});
    benchmark::ClobberMemory();
  }
  const double flops = f.flops * (spec.data_gradient ? 2.0 : 1.0);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

int bench_threads() {
  if (const char* env = std::getenv("CREMA_BENCH_THREADS")) return std::max(1, std::atoi(env));
  return std::max(1u, std::thread::hardware_concurrency());
}

void Args(benchmark::internal::Benchmark* b) {
  std::vector<int> threads = {1};
  if (bench_threads() > 1) threads.push_back(bench_threads());
  for (int i = 0; i < static_cast<int>(sizeof(kSpecs) / sizeof(kSpecs[0])); ++i)
    for (int t : threads) b->Args({i, t});
  b->ArgNames({"layer", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_conv_forward)->Apply(Args);
BENCHMARK(BM_conv_backward)->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
