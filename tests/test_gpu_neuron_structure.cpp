// The GPU code of the neuron (AbsVal, BNLL, Clip, ELU, Exp, Log, Power, PReLU, Swish,
// Threshold) and structural (Bias, Scale, Silence, Parameter, ArgMax, BatchReindex, Filter,
// Tile, Crop, Embed, Reduction) layers against their CPU code. Every test needs a CUDA
// device: in CPU-only builds, or when no device is visible, each one is skipped with
// "no CUDA device: GPU test skipped".
//
// For each layer: forward and backward in GPU mode equal the CPU path (relative 1e-4) on
// settings that reach every branch, and the numerical gradient check passes in GPU mode.
// CompareMore (below) adds what CompareCpuGpu does not cover: in-place runs, gradients that
// must accumulate into (or overwrite) nonzero diffs, hand-placed input values (bounds,
// ties, zeros) and layers with some gradients switched off.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

using Shape = std::vector<int>;

// A fixed nonzero pattern for diffs that the layer must accumulate into or overwrite.
void PresetDiff(Blob* b, float phase) {
  float* d = b->mutable_cpu_diff();
  for (int i = 0; i < b->count(); ++i) d[i] = 0.5f * std::sin(0.7f * i + phase);
}

struct MoreOptions {
  bool in_place = false;  // top 0 is bottom 0
  bool backward = true;
  int num_tops = 1;
  std::vector<bool> propagate_down;         // empty: every bottom except LABELS ones
  std::function<void(int, Blob*)> prepare;  // adjusts bottom i after its fill
  std::function<void(Layer*)> configure;    // e.g. switches parameter gradients off
};

// As CompareCpuGpu, but every bottom and parameter diff starts from the same nonzero
// pattern in both runs (so accumulate-vs-overwrite must agree), every bottom diff is
// compared (those not asked for must stay untouched), and the options above apply.
void CompareMore(const std::string& text, const std::vector<Shape>& shapes,
                 const std::vector<Fill>& fills, const MoreOptions& options = {}) {
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
      if (options.prepare) options.prepare(static_cast<int>(i), r.bottoms.back().get());
      r.bottom.push_back(r.bottoms.back().get());
    }
    for (int t = 0; t < options.num_tops; ++t) {
      if (t == 0 && options.in_place) {
        r.top.push_back(r.bottom[0]);
        continue;
      }
      r.tops.emplace_back(new Blob());
      r.top.push_back(r.tops.back().get());
    }
    r.layer->SetUp(r.bottom, r.top);
    if (options.configure) options.configure(r.layer.get());
  }
  EXPECT_TRUE(runs[1].layer->HasGpuImplementation()) << runs[1].layer->type();
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
    for (size_t i = 0; i < r.bottom.size(); ++i)
      if (!(i == 0 && options.in_place)) PresetDiff(r.bottom[i], 1.f + i);
    for (size_t p = 0; p < r.layer->blobs().size(); ++p)
      PresetDiff(r.layer->blobs()[p].get(), 2.f + p);
    for (size_t t = 0; t < r.top.size(); ++t) {
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
  for (size_t i = 0; i < shapes.size(); ++i)
    ExpectClose(Diff(*runs[0].bottom[i]), runs[1].bottom[i]->cpu_diff(),
                type + " bottom diff " + std::to_string(i));
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    ExpectClose(Diff(*runs[0].layer->blobs()[p]), runs[1].layer->blobs()[p]->cpu_diff(),
                type + " param diff " + std::to_string(p));
}

// The numerical gradient check in GPU mode on bottoms the caller has filled.
void GradientCheckGpuOn(const std::string& text, const BlobVec& bottom,
                        const testing::GradientCheckOptions& options = {}, int num_tops = 1) {
  std::shared_ptr<Layer> layer = MakeLayer(text);
  EXPECT_TRUE(layer->HasGpuImplementation()) << layer->type();
  std::vector<std::unique_ptr<Blob>> tops;
  BlobVec top;
  for (int t = 0; t < num_tops; ++t) {
    tops.emplace_back(new Blob());
    top.push_back(tops.back().get());
  }
  Context::set_mode(Mode::GPU);
  testing::GradientChecker(options).Check(layer.get(), bottom, top);
  Context::set_mode(Mode::CPU);
}

// Moves every element within `range` of a kink 3 * range away from it.
void AvoidKinks(Blob* b, const std::vector<float>& kinks, float range) {
  float* x = b->mutable_cpu_data();
  for (int i = 0; i < b->count(); ++i)
    for (float k : kinks)
      if (std::fabs(x[i] - k) <= range) x[i] = x[i] >= k ? k + 3 * range : k - 3 * range;
}

// Expects f() to throw crema::Error whose message contains `part`.
template <typename F>
void ExpectErrorContaining(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected crema::Error containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

testing::GradientCheckOptions KinkAtZero() {
  testing::GradientCheckOptions o;
  o.kink = 0.f;
  o.kink_range = 0.02f;
  return o;
}

const Shape kSmall = {2, 3, 2, 2};
const Shape kLarge = {4, 3, 20, 20};  // 1600 elements per channel: full reduction blocks

// ---------------------------------------------------------------------------------------
// Neuron layers
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, AbsValMatchesCpu) {
  REQUIRE_GPU();
  const std::string abs = "name: 'a' type: 'AbsVal'";
  CompareCpuGpu(abs, {kImage}, {Gaussian()});
  MoreOptions zeros;  // sign(0) = 0
  zeros.prepare = [](int, Blob* b) {
    for (int i = 0; i < b->count(); i += 5) b->mutable_cpu_data()[i] = 0.f;
  };
  CompareMore(abs, {kImage}, {Gaussian()}, zeros);
  GradientCheckGpu(abs, {kSmall}, {Gaussian()}, KinkAtZero());
}

TEST_F(GpuLayers, BNLLMatchesCpu) {
  REQUIRE_GPU();
  const std::string bnll = "name: 'b' type: 'BNLL'";
  CompareCpuGpu(bnll, {kImage}, {Gaussian()});
  MoreOptions wide;  // large |x|: the exp clamp and the overflow-free forward
  wide.prepare = [](int, Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); ++i) x[i] *= 30.f;
  };
  CompareMore(bnll, {kImage}, {Gaussian()}, wide);
  MoreOptions in_place;
  in_place.in_place = true;
  CompareMore(bnll, {kImage}, {Gaussian()}, in_place);
  GradientCheckGpu(bnll, {kSmall}, {Gaussian()});
}

TEST_F(GpuLayers, ClipMatchesCpu) {
  REQUIRE_GPU();
  const std::string clip = "name: 'c' type: 'Clip' clip_param { min: -0.5 max: 0.8 }";
  CompareCpuGpu(clip, {kImage}, {Gaussian()});
  // Inputs exactly on the bounds pass their gradient, in place too (the saved input).
  MoreOptions bounds;
  bounds.prepare = [](int, Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); i += 7) x[i] = i % 2 ? 0.8f : -0.5f;
  };
  CompareMore(clip, {kImage}, {Gaussian()}, bounds);
  bounds.in_place = true;
  CompareMore(clip, {kImage}, {Gaussian()}, bounds);
  Blob x(kSmall);
  FillBlob(&x, Gaussian(), 5);
  AvoidKinks(&x, {-0.5f, 0.8f}, 0.02f);
  GradientCheckGpuOn(clip, {&x});
}

TEST_F(GpuLayers, ELUMatchesCpu) {
  REQUIRE_GPU();
  for (const char* alpha : {"1", "0.3", "-0.7"}) {
    SCOPED_TRACE(alpha);
    const std::string elu = std::string("name: 'e' type: 'ELU' elu_param { alpha: ") + alpha + " }";
    CompareCpuGpu(elu, {kImage}, {Gaussian()});
    MoreOptions in_place;  // alpha >= 0: the sign test on y; alpha < 0: the saved input
    in_place.in_place = true;
    CompareMore(elu, {kImage}, {Gaussian()}, in_place);
  }
  GradientCheckGpu("name: 'e' type: 'ELU'", {kSmall}, {Gaussian()}, KinkAtZero());
  GradientCheckGpu("name: 'e' type: 'ELU' elu_param { alpha: 0.3 }", {kSmall}, {Gaussian()},
                   KinkAtZero());
}

TEST_F(GpuLayers, ExpMatchesCpu) {
  REQUIRE_GPU();
  for (const char* p : {"", "base: 2 scale: 0.5 shift: 1", "base: 3 scale: 0.7 shift: -0.4",
                        "base: 0.5 scale: -1.2 shift: 1"}) {
    SCOPED_TRACE(p);
    const std::string exp = std::string("name: 'e' type: 'Exp' exp_param { ") + p + " }";
    CompareCpuGpu(exp, {kImage}, {Gaussian()});
    MoreOptions in_place;
    in_place.in_place = true;
    CompareMore(exp, {kImage}, {Gaussian()}, in_place);
    GradientCheckGpu(exp, {kSmall}, {Gaussian()});
  }
}

TEST_F(GpuLayers, LogMatchesCpu) {
  REQUIRE_GPU();
  for (const char* p : {"", "base: 10 scale: 1.5 shift: 0.3", "base: 0.5 scale: -0.5 shift: 2",
                        "base: 3 scale: 2 shift: 0.5"}) {
    SCOPED_TRACE(p);
    const std::string log = std::string("name: 'l' type: 'Log' log_param { ") + p + " }";
    CompareCpuGpu(log, {kImage}, {Positive()});
    MoreOptions in_place;
    in_place.in_place = true;
    CompareMore(log, {kImage}, {Positive()}, in_place);
    GradientCheckGpu(log, {kSmall}, {Positive()});
  }
}

TEST_F(GpuLayers, PowerMatchesCpu) {
  REQUIRE_GPU();
  // Every forward and backward branch: general, 0 (constant), 1, 2, 0.5, scale 0.
  for (const char* p : {"power: 0.37 scale: 0.83 shift: 0.4", "power: 0 scale: 0.83",
                        "power: 1 scale: 0.83 shift: -2.4", "power: 2 scale: -0.7",
                        "power: 2 scale: 0.83 shift: 0.5", "power: 3 scale: 0.5 shift: 1",
                        "power: -1.5 scale: 1 shift: 0.5", "power: 2.5 scale: 0 shift: 2",
                        "power: 0.5", "power: 1.7 scale: 2 shift: 1"}) {
    SCOPED_TRACE(p);
    const std::string power = std::string("name: 'p' type: 'Power' power_param { ") + p + " }";
    CompareCpuGpu(power, {kImage}, {Positive()});
    MoreOptions in_place;
    in_place.in_place = true;
    CompareMore(power, {kImage}, {Positive()}, in_place);
    GradientCheckGpu(power, {kSmall}, {Positive()});
  }
  // A zero base: the derivative is evaluated directly there (0 for power 3, not 0 / 0).
  MoreOptions zeros;
  zeros.prepare = [](int, Blob* b) {
    for (int i = 0; i < b->count(); i += 4) b->mutable_cpu_data()[i] = 0.f;
  };
  CompareMore("name: 'p' type: 'Power' power_param { power: 3 }", {kImage}, {Positive()}, zeros);
}

TEST_F(GpuLayers, PReLUMatchesCpu) {
  REQUIRE_GPU();
  const std::string per_channel =
      "name: 'p' type: 'PReLU' prelu_param { filler { type: 'uniform' min: -1 max: 1 } }";
  const std::string shared =
      "name: 'p' type: 'PReLU' prelu_param { channel_shared: true "
      "filler { type: 'constant' value: -0.3 } }";
  for (const std::string& prelu : {per_channel, shared}) {
    SCOPED_TRACE(prelu);
    CompareCpuGpu(prelu, {kImage}, {Gaussian()});
    CompareCpuGpu(prelu, {{5, 4}}, {Gaussian()});  // no spatial axes
    // The slope gradient accumulates; in place, x is saved and the slope gradient is
    // computed before dx overwrites dy.
    MoreOptions more;
    CompareMore(prelu, {kLarge}, {Gaussian()}, more);
    more.in_place = true;
    CompareMore(prelu, {kLarge}, {Gaussian()}, more);
    more.in_place = false;
    more.propagate_down = {false};  // the slope gradient alone
    CompareMore(prelu, {kImage}, {Gaussian()}, more);
    more.propagate_down = {true};  // the input gradient alone
    more.configure = [](Layer* l) { l->set_param_propagate_down(0, false); };
    CompareMore(prelu, {kImage}, {Gaussian()}, more);
  }
  GradientCheckGpu("name: 'p' type: 'PReLU' prelu_param { filler { type: 'gaussian' std: 0.5 } }",
                   {kSmall}, {Gaussian()}, KinkAtZero());
  GradientCheckGpu(shared, {kSmall}, {Gaussian()}, KinkAtZero());
}

TEST_F(GpuLayers, SwishMatchesCpu) {
  REQUIRE_GPU();
  for (const char* beta : {"1", "2.5", "-0.5"}) {
    SCOPED_TRACE(beta);
    const std::string swish =
        std::string("name: 's' type: 'Swish' swish_param { beta: ") + beta + " }";
    CompareCpuGpu(swish, {kImage}, {Gaussian()});
    MoreOptions in_place;
    in_place.in_place = true;
    CompareMore(swish, {kImage}, {Gaussian()}, in_place);
    GradientCheckGpu(swish, {kSmall}, {Gaussian()});
  }
}

TEST_F(GpuLayers, ThresholdForwardOnly) {
  REQUIRE_GPU();
  const std::string th = "name: 't' type: 'Threshold' threshold_param { threshold: 0.3 }";
  CompareOptions forward;
  forward.backward = false;
  CompareCpuGpu(th, {kImage}, {Gaussian()}, forward);
  MoreOptions more;
  more.backward = false;
  more.in_place = true;
  more.prepare = [](int, Blob* b) {  // inputs equal to the threshold give 0
    for (int i = 0; i < b->count(); i += 3) b->mutable_cpu_data()[i] = 0.3f;
  };
  CompareMore(th, {kImage}, {Gaussian()}, more);
  // Backward: nothing asked is fine; a gradient asked for is the CPU path's error.
  std::shared_ptr<Layer> layer = MakeLayer(th);
  Blob x(kSmall), y;
  FillBlob(&x, Gaussian(), 3);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&x}, {&y});
  layer->Backward({&y}, {false}, {&x});
  ExpectErrorContaining([&] { layer->Backward({&y}, {true}, {&x}); }, "no backward");
}

// ---------------------------------------------------------------------------------------
// Bias and Scale
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, BiasMatchesCpu) {
  REQUIRE_GPU();
  const std::string learned =
      "name: 'b' type: 'Bias' bias_param { filler { type: 'gaussian' std: 1 } }";
  CompareCpuGpu(learned, {kImage}, {Gaussian()});
  MoreOptions more;  // the learned bias accumulates; bottom[1]'s diff is overwritten
  CompareMore(learned, {kLarge}, {Gaussian()}, more);
  CompareMore("name: 'b' type: 'Bias' bias_param { axis: 2 num_axes: 2 }", {{2, 3, 4, 5}, {4, 5}},
              {Gaussian(), Gaussian()}, more);
  CompareMore("name: 'b' type: 'Bias' bias_param { axis: 0 num_axes: -1 }", {{2, 3, 4}, {2, 3, 4}},
              {Gaussian(), Gaussian()}, more);
  CompareMore(
      "name: 'b' type: 'Bias' bias_param { num_axes: 0 filler { type: 'constant' value: 0.7 } }",
      {kImage}, {Gaussian()}, more);  // a scalar bias
  more.in_place = true;
  CompareMore(learned, {kImage}, {Gaussian()}, more);
  CompareMore("name: 'b' type: 'Bias' bias_param { axis: -1 }", {{3, 4, 5}, {5}},
              {Gaussian(), Gaussian()}, more);
  GradientCheckGpu("name: 'b' type: 'Bias' bias_param { filler { type: 'gaussian' } }", {kSmall},
                   {Gaussian()});
  GradientCheckGpu("name: 'b' type: 'Bias' bias_param { axis: 2 num_axes: 2 }", {kSmall, {2, 2}},
                   {Gaussian(), Gaussian()});
}

TEST_F(GpuLayers, ScaleMatchesCpu) {
  REQUIRE_GPU();
  const std::string learned = "name: 's' type: 'Scale' scale_param { filler { type: 'gaussian' } }";
  const std::string learned_bias =
      "name: 's' type: 'Scale' scale_param { bias_term: true filler { type: 'gaussian' } "
      "bias_filler { type: 'gaussian' } }";
  const std::string two_bottoms_bias =
      "name: 's' type: 'Scale' scale_param { bias_term: true bias_filler { type: 'gaussian' } }";
  CompareCpuGpu(learned, {kImage}, {Gaussian()});
  CompareCpuGpu(learned_bias, {kImage}, {Gaussian()});
  MoreOptions more;  // learned scale and bias accumulate; bottom[1]'s diff is overwritten
  CompareMore(learned_bias, {kLarge}, {Gaussian()}, more);
  CompareMore(
      "name: 's' type: 'Scale' scale_param { axis: 1 num_axes: -1 bias_term: true "
      "filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
      {{2, 3, 2}}, {Gaussian()}, more);
  CompareMore("name: 's' type: 'Scale' scale_param { axis: 0 }", {{2, 3, 2, 2}, {2, 3}},
              {Gaussian(), Gaussian()}, more);
  CompareMore(two_bottoms_bias, {{2, 3, 4, 5}, {3, 4}}, {Gaussian(), Gaussian()}, more);
  CompareMore(
      "name: 's' type: 'Scale' scale_param { num_axes: 0 bias_term: true "
      "filler { type: 'constant' value: -1.5 } }",
      {kImage}, {Gaussian()}, more);  // a scalar scale
  // Only the bias gradient of the scale/bias pair: the separate bias-only pass.
  more.propagate_down = {true, false};
  CompareMore(two_bottoms_bias, {{2, 3, 4, 5}, {3, 4}}, {Gaussian(), Gaussian()}, more);
  more.propagate_down = {true};
  more.configure = [](Layer* l) { l->set_param_propagate_down(0, false); };
  CompareMore(learned_bias, {kImage}, {Gaussian()}, more);
  more.configure = [](Layer* l) { l->set_param_propagate_down(1, false); };
  CompareMore(learned_bias, {kImage}, {Gaussian()}, more);
  // In place: x is saved for the scale gradient; dx overwrites dy after the sums.
  more.configure = nullptr;
  more.propagate_down.clear();
  more.in_place = true;
  CompareMore(learned_bias, {kLarge}, {Gaussian()}, more);
  CompareMore(two_bottoms_bias, {{2, 3, 4, 5}, {3, 4}}, {Gaussian(), Gaussian()}, more);
  GradientCheckGpu(learned, {kSmall}, {Gaussian()});
  GradientCheckGpu(
      "name: 's' type: 'Scale' scale_param { axis: 1 num_axes: -1 bias_term: true "
      "filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
      {{2, 3, 2}}, {Gaussian()});
  GradientCheckGpu("name: 's' type: 'Scale' scale_param { axis: 0 }", {kSmall, {2, 3}},
                   {Gaussian(), Gaussian()});
  GradientCheckGpu(two_bottoms_bias, {kSmall, {3, 2}}, {Gaussian(), Gaussian()});
}

// ---------------------------------------------------------------------------------------
// Silence, Parameter
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, SilenceZeroesAskedDiffsOnly) {
  REQUIRE_GPU();
  MoreOptions more;
  more.num_tops = 0;
  more.propagate_down = {true, false};
  CompareMore("name: 's' type: 'Silence'", {kImage, {4}}, {Gaussian(), Gaussian()}, more);
}

TEST_F(GpuLayers, ParameterSharesItsBlobOnTheDevice) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer =
      MakeLayer("name: 'p' type: 'Parameter' parameter_param { shape { dim: 2 dim: 3 } }");
  EXPECT_TRUE(layer->HasGpuImplementation());
  Blob y;
  layer->SetUp({}, {&y});
  Blob& param = *layer->blobs()[0];
  for (int i = 0; i < 6; ++i) param.mutable_cpu_data()[i] = static_cast<float>(i + 1);
  Context::set_mode(Mode::GPU);
  layer->Forward({}, {&y});
  EXPECT_EQ(y.gpu_data(), param.gpu_data());
#ifdef CREMA_WITH_CUDA
  gpu_set(6, 2.5f, y.mutable_gpu_diff());
#endif
  layer->Backward({&y}, {}, {});
  Context::set_mode(Mode::CPU);
  EXPECT_EQ(Data(y), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Diff(param), std::vector<float>(6, 2.5f));
}

// ---------------------------------------------------------------------------------------
// ArgMax
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, ArgMaxMatchesCpu) {
  REQUIRE_GPU();
  MoreOptions ties;  // values rounded to halves: many ties (the larger index ranks first)
  ties.backward = false;
  ties.prepare = [](int, Blob* b) {
    float* x = b->mutable_cpu_data();
    for (int i = 0; i < b->count(); ++i) x[i] = std::round(2.f * x[i]) / 2.f;
  };
  for (const char* p : {"", "top_k: 3", "top_k: 4 out_max_val: true", "axis: 1",
                        "axis: 1 top_k: 2 out_max_val: true", "axis: -1 top_k: 7",
                        "axis: 0 top_k: 2", "axis: 2 out_max_val: true"}) {
    SCOPED_TRACE(p);
    const std::string argmax = std::string("name: 'a' type: 'ArgMax' argmax_param { ") + p + " }";
    CompareOptions forward;
    forward.backward = false;
    CompareCpuGpu(argmax, {kImage}, {Gaussian()}, forward);
    CompareMore(argmax, {kImage}, {Gaussian()}, ties);
  }
  std::shared_ptr<Layer> layer = MakeLayer("name: 'a' type: 'ArgMax'");
  Blob x(kSmall), y;
  FillBlob(&x, Gaussian(), 3);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&x}, {&y});
  ExpectErrorContaining([&] { layer->Backward({&y}, {true}, {&x}); }, "cannot backpropagate");
}

// ---------------------------------------------------------------------------------------
// BatchReindex, Filter, Tile, Crop
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, BatchReindexMatchesCpu) {
  REQUIRE_GPU();
  const std::string br = "name: 'br' type: 'BatchReindex'";
  CompareCpuGpu(br, {{5, 3, 2}, {9}}, {Gaussian(), Labels(5)});
  MoreOptions more;  // repeated and missing rows: dx sums and zeros, overwriting the diff
  more.prepare = [](int i, Blob* b) {
    if (i != 1) return;
    const float idx[] = {2, 0, 2, 4, 2, 0};
    for (int m = 0; m < 6; ++m) b->mutable_cpu_data()[m] = idx[m];
  };
  CompareMore(br, {{5, 3, 4}, {6}}, {Gaussian(), Labels(5)}, more);
  GradientCheckGpu(br, {{3, 2, 2}, {5}}, {Gaussian(), Labels(3)});
  std::shared_ptr<Layer> layer = MakeLayer("name: 'br' type: 'BatchReindex'");
  Blob x({3, 2}), idx({2}), y;
  idx.mutable_cpu_data()[0] = 0;
  idx.mutable_cpu_data()[1] = 3;
  layer->SetUp({&x, &idx}, {&y});
  Context::set_mode(Mode::GPU);
  ExpectErrorContaining([&] { layer->Forward({&x, &idx}, {&y}); }, "index 3");
}

TEST_F(GpuLayers, FilterMatchesCpu) {
  REQUIRE_GPU();
  const std::string filter = "name: 'f' type: 'Filter'";
  CompareOptions two;
  two.num_tops = 2;
  CompareCpuGpu(filter, {{6, 3, 2}, {6}, {6, 1}}, {Gaussian(), Gaussian(), Labels(2)}, two);
  MoreOptions more;
  more.num_tops = 2;
  more.propagate_down = {true, false, false};
  more.prepare = [](int i, Blob* b) {
    if (i != 2) return;
    const float sel[] = {0, 1, 1, 0, 0, 1, 0};
    for (int n = 0; n < 7; ++n) b->mutable_cpu_data()[n] = sel[n];
  };
  CompareMore(filter, {{7, 2, 3}, {7, 4}, {7}}, {Gaussian(), Gaussian(), Labels(2)}, more);
  more.prepare = [](int i, Blob* b) {  // nothing selected: empty tops, zero gradients
    if (i == 2) cpu_set(b->count(), 0.f, b->mutable_cpu_data());
  };
  CompareMore(filter, {{7, 2, 3}, {7, 4}, {7}}, {Gaussian(), Gaussian(), Labels(2)}, more);
  GradientCheckGpu(filter, {{4, 3}, {4}}, {Gaussian(), Labels(2)});
  // The selector gets no gradient.
  std::shared_ptr<Layer> layer = MakeLayer(filter);
  Blob a({4, 3}), sel({4}), y;
  cpu_set(4, 1.f, sel.mutable_cpu_data());
  layer->SetUp({&a, &sel}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&a, &sel}, {&y});
  ExpectErrorContaining([&] { layer->Backward({&y}, {true, true}, {&a, &sel}); }, "selector");
}

TEST_F(GpuLayers, TileMatchesCpu) {
  REQUIRE_GPU();
  for (const char* p : {"axis: 1 tiles: 3", "axis: -1 tiles: 2", "axis: 0 tiles: 4"}) {
    SCOPED_TRACE(p);
    const std::string tile = std::string("name: 't' type: 'Tile' tile_param { ") + p + " }";
    CompareCpuGpu(tile, {kImage}, {Gaussian()});
    CompareMore(tile, {kImage}, {Gaussian()});
  }
  GradientCheckGpu("name: 't' type: 'Tile' tile_param { axis: 1 tiles: 3 }", {{2, 3, 2}},
                   {Gaussian()});
}

TEST_F(GpuLayers, CropMatchesCpu) {
  REQUIRE_GPU();
  MoreOptions more;
  more.propagate_down = {true, false};  // the reference gets no gradient
  struct Case {
    const char* param;
    Shape x, ref;
  };
  for (const Case& c :
       {Case{"offset: 1 offset: 2", {2, 3, 6, 7}, {2, 3, 3, 4}},
        Case{"axis: 1 offset: 1", {2, 3, 6, 7}, {2, 2, 4, 5}}, Case{"", {2, 3, 6, 7}, {1, 1, 2, 3}},
        Case{"axis: 0 offset: 1 offset: 0 offset: 2 offset: 3", {3, 3, 6, 7}, {2, 3, 2, 4}},
        Case{"axis: 2 offset: 1", {2, 2, 4, 5, 6}, {2, 2, 2, 3, 4}},
        Case{"axis: -1 offset: 2", {3, 8}, {3, 5}}}) {
    SCOPED_TRACE(c.param);
    const std::string crop = std::string("name: 'c' type: 'Crop' crop_param { ") + c.param + " }";
    CompareCpuGpu(crop, {c.x, c.ref}, {Gaussian(), Gaussian()},
                  CompareOptions{true, {true, false}, 1});
    CompareMore(crop, {c.x, c.ref}, {Gaussian(), Gaussian()}, more);
  }
  testing::GradientCheckOptions o;
  o.bottoms_to_check = {0};
  GradientCheckGpu("name: 'c' type: 'Crop' crop_param { offset: 1 offset: 0 }",
                   {{2, 2, 4, 4}, {2, 2, 2, 3}}, {Gaussian(), Gaussian()}, o);
}

// ---------------------------------------------------------------------------------------
// Embed
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, EmbedMatchesCpu) {
  REQUIRE_GPU();
  const std::string with_bias =
      "name: 'e' type: 'Embed' embed_param { input_dim: 5 num_output: 6 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }";
  const std::string no_bias =
      "name: 'e' type: 'Embed' embed_param { input_dim: 7 num_output: 3 bias_term: false "
      "weight_filler { type: 'gaussian' } }";
  CompareCpuGpu(with_bias, {{4, 3}}, {Labels(5)});
  CompareCpuGpu(no_bias, {{10}}, {Labels(7)});
  MoreOptions more;  // repeated ids: dW and db accumulate into nonzero diffs
  CompareMore(with_bias, {{40}}, {Labels(5)}, more);
  CompareMore(no_bias, {{4, 5}}, {Labels(7)}, more);
  more.configure = [](Layer* l) { l->set_param_propagate_down(0, false); };
  CompareMore(with_bias, {{8}}, {Labels(5)}, more);
  more.configure = [](Layer* l) { l->set_param_propagate_down(1, false); };
  CompareMore(with_bias, {{8}}, {Labels(5)}, more);
}

TEST_F(GpuLayers, EmbedParameterGradients) {
  REQUIRE_GPU();
  // The ids are not differentiable: central differences of sum(w * y) against the
  // parameter gradients, as in EmbedLayer.Gradient on the CPU, in GPU mode.
  std::shared_ptr<Layer> layer = MakeLayer(
      "name: 'e' type: 'Embed' embed_param { input_dim: 5 num_output: 3 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }");
  Blob ids({4}), y;
  const float id_values[] = {4, 1, 1, 0};
  for (int m = 0; m < 4; ++m) ids.mutable_cpu_data()[m] = id_values[m];
  layer->SetUp({&ids}, {&y});
  std::vector<float> w(y.count());
  for (int i = 0; i < y.count(); ++i) w[i] = 0.1f * (i % 7) - 0.3f;
  Context::set_mode(Mode::GPU);
  auto objective = [&] {
    layer->Forward({&ids}, {&y});
    double s = 0;
    for (int i = 0; i < y.count(); ++i) s += w[i] * y.cpu_data()[i];
    return s;
  };
  layer->Forward({&ids}, {&y});
  std::copy(w.begin(), w.end(), y.mutable_cpu_diff());
  for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
  layer->Backward({&y}, {false}, {&ids});
  for (auto& p : layer->blobs()) {
    const std::vector<float> analytic = Diff(*p);
    for (int j = 0; j < p->count(); ++j) {
      const float orig = p->cpu_data()[j];
      p->mutable_cpu_data()[j] = orig + 1e-2f;
      const double plus = objective();
      p->mutable_cpu_data()[j] = orig - 1e-2f;
      const double minus = objective();
      p->mutable_cpu_data()[j] = orig;
      EXPECT_NEAR(analytic[j], (plus - minus) / 2e-2, 1e-3) << j;
    }
  }
  // Bad ids and a gradient for the ids are the CPU path's errors.
  ids.mutable_cpu_data()[2] = 5;
  ExpectErrorContaining([&] { layer->Forward({&ids}, {&y}); }, "index 5");
  ids.mutable_cpu_data()[2] = 1;
  layer->Forward({&ids}, {&y});
  ExpectErrorContaining([&] { layer->Backward({&y}, {true}, {&ids}); }, "cannot backpropagate");
  Context::set_mode(Mode::CPU);
}

// The ids are checked on the device. Without loss readback (training iterations whose loss
// nobody reads) the first bad id is reported by the next Forward, naming the earlier batch;
// its row is 0 meanwhile, the good rows are right, and the backward skips it.
TEST_F(GpuLayers, EmbedBadIdReportedAtNextForwardWithoutReadback) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer(
      "name: 'e' type: 'Embed' embed_param { input_dim: 5 num_output: 3 bias_term: false "
      "weight_filler { type: 'gaussian' } }");
  Blob ids({2, 3}), y;
  const float id_values[] = {4, 1, 0, 2.5f, 9, 3};  // position 3 is the first bad one
  for (int m = 0; m < 6; ++m) ids.mutable_cpu_data()[m] = id_values[m];
  layer->SetUp({&ids}, {&y});
  Context::set_mode(Mode::GPU);
  Context::set_loss_readback(false);
  layer->Forward({&ids}, {&y});  // nothing read back: no error yet
  const float* W = layer->blobs()[0]->cpu_data();
  for (int m : {0, 1, 2, 5})
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(y.cpu_data()[m * 3 + j], W[static_cast<int>(id_values[m]) * 3 + j]) << m;
  for (int m : {3, 4})
    for (int j = 0; j < 3; ++j) EXPECT_EQ(y.cpu_data()[m * 3 + j], 0.f) << m;
  cpu_set(y.count(), 1.f, y.mutable_cpu_diff());
  cpu_set(layer->blobs()[0]->count(), 0.f, layer->blobs()[0]->mutable_cpu_diff());
  layer->Backward({&y}, {false}, {&ids});
  const float* dW = layer->blobs()[0]->cpu_diff();
  const float expected_rows[] = {1, 1, 0, 1, 1};  // ids 0, 1, 3, 4 once; 2.5 and 9 skipped
  for (int k = 0; k < 5; ++k) EXPECT_EQ(dW[k * 3], expected_rows[k]) << k;
  ids.mutable_cpu_data()[3] = 1;  // this batch is fine; the earlier one was not
  ids.mutable_cpu_data()[4] = 1;
  ExpectErrorContaining([&] { layer->Forward({&ids}, {&y}); },
                        "index 2.5 (at position 3 of the bottom 2 3 (6), in an earlier batch) is "
                        "not an integer");
  // With readback the check is immediate; a NaN id is out of range.
  Context::set_loss_readback(true);
  EXPECT_NO_THROW(layer->Forward({&ids}, {&y}));
  ids.mutable_cpu_data()[5] = std::nanf("");
  ExpectErrorContaining([&] { layer->Forward({&ids}, {&y}); },
                        "(at position 5 of the bottom 2 3 (6)) is out of range [0, 5)");
  Context::set_mode(Mode::CPU);
}

// ---------------------------------------------------------------------------------------
// Reduction
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, ReductionMatchesCpu) {
  REQUIRE_GPU();
  for (const char* op : {"SUM", "ASUM", "SUMSQ", "MEAN"}) {
    SCOPED_TRACE(op);
    const std::string head =
        std::string("name: 'r' type: 'Reduction' reduction_param { ") + "operation: " + op;
    // Short rows (a warp per row), the default axis 0 (one row), negative axes.
    CompareCpuGpu(head + " axis: 1 coeff: -1.5 }", {kImage}, {Gaussian()});
    CompareCpuGpu(head + " }", {kImage}, {Gaussian()});
    CompareCpuGpu(head + " axis: -1 coeff: 2 }", {{40, 3, 5}}, {Gaussian()});
    // Long rows (a block per row); positive inputs keep the sums far from 0, where the
    // CPU's sequential float sums and the GPU's tree would differ by more than 1e-4.
    CompareMore(head + " axis: 1 coeff: 0.5 }", {{3, 40, 30}}, {Positive()});
    CompareMore(head + " axis: 0 }", {{5, 300}}, {Positive()});
    CompareMore(head + " axis: 2 }", {{2, 3, 4, 5}}, {Gaussian()});
    testing::GradientCheckOptions o;
    o.kink_range = 0.02f;  // |x| at 0 for ASUM
    GradientCheckGpu(head + " axis: 1 coeff: -1.5 }", {{2, 3, 2}}, {Gaussian()}, o);
  }
}

}  // namespace
}  // namespace crema
