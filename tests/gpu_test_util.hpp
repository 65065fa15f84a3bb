// Shared helpers of the GPU tests (tests/test_gpu_*.cpp): every test needs a CUDA device;
// in CPU-only builds, or when no device is visible, REQUIRE_GPU() skips it with
// "no CUDA device: GPU test skipped".
//
// CompareCpuGpu: forward and backward of one layer on random data, once in CPU mode and
// once in GPU mode from identical bottoms, parameters and top gradients; tops, bottom
// gradients and parameter gradients must agree within relative 1e-4 (fp32).
// GradientCheckGpu: the numerical gradient check with the layer running on the GPU.
#pragma once
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "crema/net.hpp"
#include "solvers/sgd.hpp"
#include "tests/gradient_checker.hpp"

#ifdef CREMA_WITH_CUDA
#include "crema/gpu_math.hpp"
#include "src/cuda_util.hpp"
#include "src/cudnn_adapter.hpp"
#endif

namespace crema {
namespace gputest {

inline bool GpuAvailable() {
#ifdef CREMA_WITH_CUDA
  static const bool available = CudaDeviceCount() > 0;
  return available;
#else
  return false;
#endif
}

#define REQUIRE_GPU()                                                        \
  do {                                                                       \
    if (!GpuAvailable()) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)

#ifdef CREMA_WITH_CUDA
// REQUIRE_GPU, and skips too in a GPU build without cuDNN.
#define REQUIRE_CUDNN()                                             \
  do {                                                              \
    REQUIRE_GPU();                                                  \
    if (!cudnn::Available()) GTEST_SKIP() << "built without cuDNN"; \
  } while (0)
#endif

// Every test starts from the suite's seed (so it draws the same numbers alone, as ctest runs
// it, or after other tests in one process, as tools/gpu_check.sh does) and leaves the
// process in CPU mode.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override { Context::set_random_seed(1701); }
  void TearDown() override { Context::set_mode(Mode::CPU); }
};
class GpuLayers : public GpuTest {};
class GpuMath : public GpuTest {};
class GpuSolver : public GpuTest {};

inline std::shared_ptr<Layer> MakeLayer(const std::string& text) {
  pb::LayerParameter p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &p)) << text;
  return LayerRegistry::Create(p);
}

// How a bottom is filled.
struct Fill {
  enum Kind { GAUSSIAN, POSITIVE, LABELS } kind = GAUSSIAN;
  int classes = 0;  // LABELS: integers in [0, classes)
};
inline Fill Gaussian() {
  return {};
}
inline Fill Positive() {
  return {Fill::POSITIVE, 0};
}
inline Fill Labels(int classes) {
  return {Fill::LABELS, classes};
}

inline void FillBlob(Blob* b, const Fill& f, uint64_t seed) {
  switch (f.kind) {
    case Fill::GAUSSIAN:
      testing::FillGaussian(b, 1.f, seed);
      break;
    case Fill::POSITIVE:
      testing::FillUniform(b, 0.5f, 2.f, seed);
      break;
    case Fill::LABELS: {
      testing::FillUniform(b, 0.f, static_cast<float>(f.classes), seed);
      float* x = b->mutable_cpu_data();
      for (int i = 0; i < b->count(); ++i)
        x[i] = std::min(static_cast<float>(f.classes - 1), std::floor(x[i]));
      break;
    }
  }
}

// |gpu - cpu| <= 1e-4 * max(|cpu|, 1e-2 * max|cpu| over the array) + 1e-6.
inline void ExpectClose(const std::vector<float>& cpu, const float* gpu, const std::string& what) {
  float peak = 0.f;
  for (float v : cpu) peak = std::max(peak, std::fabs(v));
  int failures = 0;
  for (size_t i = 0; i < cpu.size() && failures < 10; ++i) {
    const float tol = 1e-4f * std::max(std::fabs(cpu[i]), 1e-2f * peak) + 1e-6f;
    if (!(std::fabs(gpu[i] - cpu[i]) <= tol)) {
      ++failures;
      ADD_FAILURE() << what << "[" << i << "]: GPU " << gpu[i] << " vs CPU " << cpu[i]
                    << " (tolerance " << tol << ")";
    }
  }
}

inline std::vector<float> Data(const Blob& b) {
  return {b.cpu_data(), b.cpu_data() + b.count()};
}
inline std::vector<float> Diff(const Blob& b) {
  return {b.cpu_diff(), b.cpu_diff() + b.count()};
}

struct CompareOptions {
  bool backward = true;
  std::vector<bool> propagate_down;  // empty: every bottom except LABELS ones
  int num_tops = 1;
};

// Runs the layer described by `text` once on the CPU and once on the GPU from identical
// bottoms, parameters and top gradients, and compares tops, bottom gradients and parameter
// gradients.
inline void CompareCpuGpu(const std::string& text, const std::vector<std::vector<int>>& shapes,
                          const std::vector<Fill>& fills, const CompareOptions& options = {}) {
  struct Run {
    std::shared_ptr<Layer> layer;
    std::vector<std::unique_ptr<Blob>> bottoms, tops;
    BlobVec bottom, top;
  };
  Run runs[2];
  for (Run& r : runs) {
    r.layer = MakeLayer(text);
    for (size_t i = 0; i < shapes.size(); ++i) {
      r.bottoms.emplace_back(new Blob(shapes[i]));
      FillBlob(r.bottoms.back().get(), fills[i], 11 + i);
      r.bottom.push_back(r.bottoms.back().get());
    }
    for (int t = 0; t < options.num_tops; ++t) {
      r.tops.emplace_back(new Blob());
      r.top.push_back(r.tops.back().get());
    }
    r.layer->SetUp(r.bottom, r.top);
  }
  // Same parameters in both.
  ASSERT_EQ(runs[0].layer->blobs().size(), runs[1].layer->blobs().size());
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    runs[1].layer->blobs()[p]->CopyFrom(*runs[0].layer->blobs()[p]);

  std::vector<bool> propagate = options.propagate_down;
  if (propagate.empty())
    for (const Fill& f : fills) propagate.push_back(f.kind != Fill::LABELS);

  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    Context::reseed(/*stream=*/777, 0);
    r.layer->Forward(r.bottom, r.top);
    if (!options.backward) continue;
    // Zero the bottom and parameter diffs first: a view layer's top shares its bottom's diff.
    for (Blob* b : r.bottom) cpu_set(b->count(), 0.f, b->mutable_cpu_diff());
    for (auto& p : r.layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    for (size_t t = 0; t < r.top.size(); ++t) {
      // Loss tops keep their loss weight in the diff; others get random gradients.
      if (r.layer->loss(static_cast<int>(t)) != 0) continue;
      Context::reseed(/*stream=*/778, t);
      cpu_rng_gaussian(r.top[t]->count(), 0.f, 1.f, r.top[t]->mutable_cpu_diff());
    }
    r.layer->Backward(r.top, propagate, r.bottom);
  }
  Context::set_mode(Mode::CPU);

  const std::string type = runs[0].layer->type();
  for (size_t t = 0; t < runs[0].top.size(); ++t) {
    ASSERT_EQ(runs[0].top[t]->shape(), runs[1].top[t]->shape()) << type << " top " << t;
    ExpectClose(Data(*runs[0].top[t]), runs[1].top[t]->cpu_data(),
                type + " top " + std::to_string(t));
  }
  if (!options.backward) return;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (!propagate[i]) continue;
    ExpectClose(Diff(*runs[0].bottom[i]), runs[1].bottom[i]->cpu_diff(),
                type + " bottom diff " + std::to_string(i));
  }
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    ExpectClose(Diff(*runs[0].layer->blobs()[p]), runs[1].layer->blobs()[p]->cpu_diff(),
                type + " param diff " + std::to_string(p));
}

// The numerical gradient check with the layer running on the GPU.
inline void GradientCheckGpu(const std::string& text, const std::vector<std::vector<int>>& shapes,
                             const std::vector<Fill>& fills,
                             testing::GradientCheckOptions options = {}, int num_tops = 1) {
  std::shared_ptr<Layer> layer = MakeLayer(text);
  EXPECT_TRUE(layer->HasGpuImplementation()) << layer->type();
  std::vector<std::unique_ptr<Blob>> bottoms, tops;
  BlobVec bottom, top;
  for (size_t i = 0; i < shapes.size(); ++i) {
    bottoms.emplace_back(new Blob(shapes[i]));
    FillBlob(bottoms.back().get(), fills[i], 31 + i);
    bottom.push_back(bottoms.back().get());
    if (fills[i].kind == Fill::LABELS && options.bottoms_to_check.empty())
      for (size_t j = 0; j < shapes.size(); ++j)
        if (fills[j].kind != Fill::LABELS) options.bottoms_to_check.push_back(static_cast<int>(j));
  }
  for (int t = 0; t < num_tops; ++t) {
    tops.emplace_back(new Blob());
    top.push_back(tops.back().get());
  }
  Context::set_mode(Mode::GPU);
  testing::GradientChecker(options).Check(layer.get(), bottom, top);
  Context::set_mode(Mode::CPU);
}

inline const std::vector<int> kImage = {2, 3, 7, 7};

}  // namespace gputest
}  // namespace crema
