// The recurrent layers (RNN, LSTM, GRU, LSTMUnit) on the GPU against the CPU path. Every
// test needs a CUDA device: in CPU-only builds, or when no device is visible, each one is
// skipped with "no CUDA device: GPU test skipped".
//
// For each layer: forward and backward in GPU mode equal the CPU path (relative 1e-4, fp32)
// with and without x_static, with expose_hidden, with x of more than three axes and with
// cont patterns that start new sequences at t = 0 and in the middle of a batch; the
// numerical gradient check passes in GPU mode (the cases of tests/test_recurrent.cpp). The
// state carried from one Forward to the next (no expose_hidden) matches the CPU's, also
// when the mode changes between Forwards and after ResetState. Parameter gradients
// accumulate and bottom gradients are overwritten exactly as on the CPU: both runs start
// Backward from the same nonzero diffs.
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/recurrent.hpp"
#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

using Shape = std::vector<int>;

const char* kFillers =
    "weight_filler { type: 'uniform' min: -0.6 max: 0.6 } "
    "bias_filler { type: 'uniform' min: -0.4 max: 0.4 }";

// Sets a blob's values (sizes must match).
void Set(Blob* b, const std::vector<float>& values) {
  ASSERT_EQ(b->count(), static_cast<int>(values.size()));
  std::copy(values.begin(), values.end(), b->mutable_cpu_data());
}

// One layer run `modes.size()` times in a row (Forward number f in modes[f]), then Backward
// in the mode of the last Forward, against the same layer run entirely on the CPU. Before
// Forward f, fill(f, bottom) gives both runs the same bottoms; with reset_at >= 0,
// ResetState() is called (in both runs) before that Forward. Every top of every Forward,
// every bottom diff and every parameter diff must agree (tolerances of CompareCpuGpu).
// The diffs do not start at zero: bottoms and parameters get the same random diffs in both
// runs, so overwrite-versus-accumulate differences show.
struct SequenceRun {
  std::string text;
  std::vector<Shape> shapes;
  std::function<void(int, const BlobVec&)> fill;
  int num_tops = 1;
  std::vector<bool> propagate_down;  // empty: every bottom except 1 (cont) / 2 (LSTMUnit)
  std::vector<Mode> modes = {Mode::GPU};
  int reset_at = -1;
};

void CompareSequence(const SequenceRun& s) {
  struct Run {
    std::shared_ptr<Layer> layer;
    std::vector<std::unique_ptr<Blob>> bottoms, tops;
    BlobVec bottom, top;
    std::vector<std::vector<std::vector<float>>> outputs;  // [forward][top]
  };
  Run runs[2];  // 0: all on the CPU, 1: in s.modes
  for (Run& r : runs) {
    r.layer = MakeLayer(s.text);
    for (const Shape& shape : s.shapes) {
      r.bottoms.emplace_back(new Blob(shape));
      r.bottom.push_back(r.bottoms.back().get());
    }
    for (int t = 0; t < s.num_tops; ++t) {
      r.tops.emplace_back(new Blob());
      r.top.push_back(r.tops.back().get());
    }
    s.fill(0, r.bottom);
    r.layer->SetUp(r.bottom, r.top);
  }
  EXPECT_TRUE(runs[1].layer->HasGpuImplementation()) << runs[1].layer->type();
  ASSERT_EQ(runs[0].layer->blobs().size(), runs[1].layer->blobs().size());
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    runs[1].layer->blobs()[p]->CopyFrom(*runs[0].layer->blobs()[p]);

  std::vector<bool> propagate = s.propagate_down;
  if (propagate.empty()) {
    const size_t no_gradient = std::string(runs[0].layer->type()) == "LSTMUnit" ? 2 : 1;
    for (size_t i = 0; i < s.shapes.size(); ++i) propagate.push_back(i != no_gradient);
  }

  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    for (size_t f = 0; f < s.modes.size(); ++f) {
      Context::set_mode(k == 0 ? Mode::CPU : s.modes[f]);
      s.fill(static_cast<int>(f), r.bottom);
      if (static_cast<int>(f) == s.reset_at)
        static_cast<RecurrentLayer*>(r.layer.get())->ResetState();
      r.layer->Forward(r.bottom, r.top);
      r.outputs.emplace_back();
      for (Blob* t : r.top) r.outputs.back().push_back(Data(*t));
    }
    for (size_t t = 0; t < r.top.size(); ++t) {
      Context::reseed(/*stream=*/778, t);
      cpu_rng_gaussian(r.top[t]->count(), 0.f, 1.f, r.top[t]->mutable_cpu_diff());
    }
    for (size_t i = 0; i < r.bottom.size(); ++i) {
      Context::reseed(/*stream=*/779, i);
      cpu_rng_gaussian(r.bottom[i]->count(), 0.f, 1.f, r.bottom[i]->mutable_cpu_diff());
    }
    for (size_t p = 0; p < r.layer->blobs().size(); ++p) {
      Blob* b = r.layer->blobs()[p].get();
      Context::reseed(/*stream=*/780, p);
      cpu_rng_gaussian(b->count(), 0.f, 1.f, b->mutable_cpu_diff());
    }
    r.layer->Backward(r.top, propagate, r.bottom);
  }
  Context::set_mode(Mode::CPU);

  const std::string type = runs[0].layer->type();
  for (size_t f = 0; f < s.modes.size(); ++f)
    for (size_t t = 0; t < runs[0].top.size(); ++t) {
      ASSERT_EQ(runs[0].outputs[f][t].size(), runs[1].outputs[f][t].size());
      ExpectClose(runs[0].outputs[f][t], runs[1].outputs[f][t].data(),
                  type + " forward " + std::to_string(f) + " top " + std::to_string(t));
    }
  // Bottoms that get no gradient keep their starting diffs in both runs.
  for (size_t i = 0; i < s.shapes.size(); ++i)
    ExpectClose(Diff(*runs[0].bottom[i]), runs[1].bottom[i]->cpu_diff(),
                type + " bottom diff " + std::to_string(i));
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    ExpectClose(Diff(*runs[0].layer->blobs()[p]), runs[1].layer->blobs()[p]->cpu_diff(),
                type + " param diff " + std::to_string(p));
}

// A recurrent case: x [T, N, D] (or x_shape), cont [T, N] given, optional x_static [N, Ds],
// with expose_hidden the initial states [1, N, H].
struct Case {
  std::string type;  // LSTM, RNN or GRU
  int T = 5, N = 3, D = 4, H = 6;
  std::vector<float> cont;  // T * N values
  int Ds = 0;               // > 0: with x_static [N, Ds]
  bool exposed = false;
  bool caffe_states = false;  // exposed: Caffe's gradients (none through the states)
  Shape x_shape;              // empty: {T, N, D}
  std::vector<bool> propagate_down;

  int States() const { return type == "LSTM" ? 2 : 1; }
  std::string Text() const {
    std::string rp = "num_output: " + std::to_string(H) + " " + kFillers;
    if (exposed) rp += " expose_hidden: true";
    if (exposed && !caffe_states) rp += " backprop_exposed_hidden: true";
    return "name: 'rec' type: '" + type + "' recurrent_param { " + rp + " }";
  }
  std::vector<Shape> Shapes() const {
    std::vector<Shape> shapes = {x_shape.empty() ? Shape{T, N, D} : x_shape, {T, N}};
    if (Ds > 0) shapes.push_back({N, Ds});
    if (exposed)
      for (int k = 0; k < States(); ++k) shapes.push_back({1, N, H});
    return shapes;
  }
  int NumTops() const { return 1 + (exposed ? States() : 0); }
  // x differs from Forward to Forward; cont, x_static and the initial states do not.
  std::function<void(int, const BlobVec&)> Filler() const {
    const std::vector<float> c = cont;
    const bool with_static = Ds > 0;
    return [c, with_static](int forward, const BlobVec& bottom) {
      testing::FillGaussian(bottom[0], 1.f, 100 + forward);
      Set(bottom[1], c);
      size_t next = 2;
      if (with_static) testing::FillGaussian(bottom[next++], 1.f, 12);
      for (uint64_t seed = 13; next < bottom.size(); ++next, ++seed)
        testing::FillGaussian(bottom[next], 0.5f, seed);
    };
  }
  SequenceRun Run(std::vector<Mode> modes = {Mode::GPU}, int reset_at = -1) const {
    SequenceRun s;
    s.text = Text();
    s.shapes = Shapes();
    s.fill = Filler();
    s.num_tops = NumTops();
    s.propagate_down = propagate_down;
    s.modes = std::move(modes);
    s.reset_at = reset_at;
    return s;
  }
};

// T = 5, N = 3: stream 0 starts at t = 0 and restarts at t = 3, stream 1 continues from the
// carried state at t = 0 and restarts at t = 2, stream 2 starts at t = 0 and restarts at
// t = 4.
const std::vector<float> kCont = {0, 1, 0,  //
                                  1, 1, 1,  //
                                  1, 0, 1,  //
                                  0, 1, 1,  //
                                  1, 1, 0};
// With exposed states: streams 0 and 2 continue from h_0 (c_0), stream 1 starts afresh.
const std::vector<float> kContExposed = {1, 0, 1,  //
                                         1, 1, 1,  //
                                         0, 1, 1,  //
                                         1, 1, 0,  //
                                         1, 0, 1};

// Every CPU-versus-GPU case of one layer type.
void CompareAllCases(const std::string& type) {
  Case plain;
  plain.type = type;
  plain.cont = kCont;
  {
    SCOPED_TRACE("plain");
    CompareSequence(plain.Run());
  }
  {
    SCOPED_TRACE("x_static, x of four axes");
    Case c = plain;
    c.Ds = 3;
    c.x_shape = {c.T, c.N, 2, 3};
    c.D = 6;
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("expose_hidden");
    Case c = plain;
    c.cont = kContExposed;
    c.exposed = true;
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("expose_hidden with x_static");
    Case c = plain;
    c.cont = kContExposed;
    c.exposed = true;
    c.Ds = 2;
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("expose_hidden, Caffe's gradients (none through the exposed states)");
    Case c = plain;
    c.cont = kContExposed;
    c.exposed = true;
    c.caffe_states = true;
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("expose_hidden, gradients for the parameters and h_0 only");
    Case c = plain;
    c.cont = kContExposed;
    c.exposed = true;
    c.Ds = 2;
    c.propagate_down = {false, false, false, true};
    if (c.States() == 2) c.propagate_down.push_back(false);
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("all sequences continue, one step");
    Case c = plain;
    c.T = 1;
    c.cont = {1, 1, 1};
    CompareSequence(c.Run());
  }
  {
    SCOPED_TRACE("wider: several blocks per step");
    Case c = plain;
    c.T = 4;
    c.N = 10;
    c.D = 12;
    c.H = 40;
    c.Ds = 5;
    c.cont.assign(c.T * c.N, 1.f);
    for (int n = 0; n < c.N; n += 2) c.cont[n] = 0.f;            // t = 0
    for (int n = 0; n < c.N; n += 3) c.cont[2 * c.N + n] = 0.f;  // t = 2
    CompareSequence(c.Run());
  }
}

// The numerical gradient check in GPU mode, the cases of tests/test_recurrent.cpp.
void CheckGradientsGpu(const std::string& type, bool with_static, bool exposed) {
  Case c;
  c.type = type;
  c.T = 3;
  c.N = 2;
  c.D = 3;
  c.H = 3;
  c.cont = exposed ? std::vector<float>{1, 1, 1, 0, 1, 1} : std::vector<float>{0, 0, 1, 0, 1, 1};
  c.Ds = with_static ? 2 : 0;
  c.exposed = exposed;
  std::shared_ptr<Layer> layer = MakeLayer(c.Text());
  EXPECT_TRUE(layer->HasGpuImplementation()) << type;
  std::vector<std::unique_ptr<Blob>> bottoms, tops;
  BlobVec bottom, top;
  for (const Shape& shape : c.Shapes()) {
    bottoms.emplace_back(new Blob(shape));
    bottom.push_back(bottoms.back().get());
  }
  c.Filler()(0, bottom);
  for (int t = 0; t < c.NumTops(); ++t) {
    tops.emplace_back(new Blob());
    top.push_back(tops.back().get());
  }
  testing::GradientCheckOptions options;
  for (int i = 0; i < static_cast<int>(bottom.size()); ++i)
    if (i != 1) options.bottoms_to_check.push_back(i);
  Context::set_mode(Mode::GPU);
  testing::GradientChecker(options).Check(layer.get(), bottom, top);
  Context::set_mode(Mode::CPU);
}

// ---------------------------------------------------------------------------------------
// RNN, LSTM, GRU: CPU versus GPU
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, RecurrentRNNMatchesCpu) {
  REQUIRE_GPU();
  CompareAllCases("RNN");
}

TEST_F(GpuLayers, RecurrentLSTMMatchesCpu) {
  REQUIRE_GPU();
  CompareAllCases("LSTM");
}

TEST_F(GpuLayers, RecurrentGRUMatchesCpu) {
  REQUIRE_GPU();
  CompareAllCases("GRU");  // these shapes take the sequence kernels
}

// Sets CREMA_GRU_KERNEL (gru.cu) while in scope.
class ScopedGruKernel {
 public:
  explicit ScopedGruKernel(const char* kernel) { setenv("CREMA_GRU_KERNEL", kernel, 1); }
  ~ScopedGruKernel() { unsetenv("CREMA_GRU_KERNEL"); }
};

// The GRU's two GPU recurrences: per-step products and kernels, and the sequence kernels,
// the latter also with weights over the default 48 KiB of shared memory (H = 70:
// 3 * 70 * 70 floats, which needs the opt-in).
TEST_F(GpuLayers, RecurrentGRUStepAndSequenceKernelsMatchCpu) {
  REQUIRE_GPU();
  {
    SCOPED_TRACE("step kernels");
    ScopedGruKernel step("step");
    CompareAllCases("GRU");
    CheckGradientsGpu("GRU", true, true);
  }
  for (const char* kernel : {"sequence", "step"}) {
    SCOPED_TRACE(std::string("H = 70, ") + kernel);
    ScopedGruKernel forced(kernel);
    Case wide;
    wide.type = "GRU";
    wide.T = 4;
    wide.N = 2;
    wide.H = 70;
    wide.cont = {0, 0, 1, 1, 0, 1, 1, 1};
    CompareSequence(wide.Run());
    wide.exposed = true;
    wide.cont = {1, 0, 1, 1, 0, 1, 1, 1};
    CompareSequence(wide.Run());
  }
}

// ---------------------------------------------------------------------------------------
// The state carried between Forwards (no expose_hidden)
// ---------------------------------------------------------------------------------------

// Two consecutive Forwards: the second starts from the state the first left (cont 1 at
// t = 0 for streams 1 and 2), and Backward follows the second.
TEST_F(GpuLayers, RecurrentCarriedStateTwoForwards) {
  REQUIRE_GPU();
  for (const char* type : {"RNN", "LSTM", "GRU"}) {
    SCOPED_TRACE(type);
    Case c;
    c.type = type;
    c.cont = kCont;
    c.Ds = 2;
    CompareSequence(c.Run({Mode::GPU, Mode::GPU}));
  }
}

// The mode changes between Forwards (the carried state moves between host and device),
// and ResetState before the third Forward zeroes it wherever it lives.
TEST_F(GpuLayers, RecurrentCarriedStateAcrossModeChanges) {
  REQUIRE_GPU();
  for (const char* type : {"RNN", "LSTM", "GRU"}) {
    SCOPED_TRACE(type);
    Case c;
    c.type = type;
    c.cont = std::vector<float>(15, 1.f);  // every stream carries its state over
    CompareSequence(c.Run({Mode::CPU, Mode::GPU, Mode::CPU, Mode::GPU}));
    CompareSequence(c.Run({Mode::GPU, Mode::CPU, Mode::GPU, Mode::GPU}, /*reset_at=*/2));
  }
}

// ---------------------------------------------------------------------------------------
// Gradient checks in GPU mode
// ---------------------------------------------------------------------------------------

TEST_F(GpuLayers, RecurrentRNNGradient) {
  REQUIRE_GPU();
  CheckGradientsGpu("RNN", false, false);
  CheckGradientsGpu("RNN", true, false);
  CheckGradientsGpu("RNN", false, true);
}

TEST_F(GpuLayers, RecurrentLSTMGradient) {
  REQUIRE_GPU();
  CheckGradientsGpu("LSTM", false, false);
  CheckGradientsGpu("LSTM", true, false);
  CheckGradientsGpu("LSTM", true, true);
}

TEST_F(GpuLayers, RecurrentGRUGradient) {
  REQUIRE_GPU();
  CheckGradientsGpu("GRU", false, false);
  CheckGradientsGpu("GRU", true, false);
  CheckGradientsGpu("GRU", true, true);
}

// ---------------------------------------------------------------------------------------
// LSTMUnit
// ---------------------------------------------------------------------------------------

SequenceRun LSTMUnitRun(int N, int H, const std::vector<float>& cont) {
  SequenceRun s;
  s.text = "name: 'u' type: 'LSTMUnit'";
  s.shapes = {{1, N, H}, {1, N, 4 * H}, {1, N}};
  s.num_tops = 2;
  s.fill = [cont](int, const BlobVec& bottom) {
    testing::FillGaussian(bottom[0], 1.f, 31);
    testing::FillGaussian(bottom[1], 2.f, 32);  // some saturated gates too
    Set(bottom[2], cont);
  };
  return s;
}

TEST_F(GpuLayers, LSTMUnitMatchesCpu) {
  REQUIRE_GPU();
  // cont 0 (a new sequence), 1, and (beyond the usual 0/1) a fractional value.
  CompareSequence(LSTMUnitRun(4, 5, {1, 0, 1, 0.5f}));
  std::vector<float> cont(50, 1.f);
  for (int n = 0; n < 50; n += 3) cont[n] = 0.f;
  CompareSequence(LSTMUnitRun(50, 24, cont));  // several blocks
  // Either gradient asked for writes both bottom diffs, as on the CPU.
  for (std::vector<bool> propagate :
       {std::vector<bool>{true, false, false}, std::vector<bool>{false, true, false}}) {
    SequenceRun s = LSTMUnitRun(3, 4, {0, 1, 1});
    s.propagate_down = propagate;
    CompareSequence(s);
  }
}

TEST_F(GpuLayers, LSTMUnitGradient) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> unit = MakeLayer("name: 'u' type: 'LSTMUnit'");
  EXPECT_TRUE(unit->HasGpuImplementation());
  Blob c_prev(Shape{1, 3, 2}), gates(Shape{1, 3, 8}), cont(Shape{1, 3}), c, h;
  testing::FillGaussian(&c_prev, 1.f, 31);
  testing::FillGaussian(&gates, 1.f, 32);
  Set(&cont, {1, 0, 1});
  testing::GradientCheckOptions options;
  options.bottoms_to_check = {0, 1};
  Context::set_mode(Mode::GPU);
  testing::GradientChecker(options).Check(unit.get(), {&c_prev, &gates, &cont}, {&c, &h});
  Context::set_mode(Mode::CPU);
}

// No gradient w.r.t. cont on the GPU either.
TEST_F(GpuLayers, RecurrentNoContGradientOnGpu) {
  REQUIRE_GPU();
  for (const char* type : {"RNN", "LSTM", "GRU"}) {
    Case c;
    c.type = type;
    c.cont = kCont;
    std::shared_ptr<Layer> layer = MakeLayer(c.Text());
    Blob x(c.Shapes()[0]), cont(c.Shapes()[1]), y;
    c.Filler()(0, {&x, &cont});
    layer->SetUp({&x, &cont}, {&y});
    Context::set_mode(Mode::GPU);
    layer->Forward({&x, &cont}, {&y});
    EXPECT_THROW(layer->Backward({&y}, {true, true}, {&x, &cont}), Error) << type;
    Context::set_mode(Mode::CPU);
  }
  std::shared_ptr<Layer> unit = MakeLayer("name: 'u' type: 'LSTMUnit'");
  Blob c_prev(Shape{1, 2, 3}), gates(Shape{1, 2, 12}), cont(Shape{1, 2}), c, h;
  Set(&cont, {1, 1});
  unit->SetUp({&c_prev, &gates, &cont}, {&c, &h});
  Context::set_mode(Mode::GPU);
  unit->Forward({&c_prev, &gates, &cont}, {&c, &h});
  EXPECT_THROW(unit->Backward({&c, &h}, {true, true, true}, {&c_prev, &gates, &cont}), Error);
  Context::set_mode(Mode::CPU);
}

}  // namespace
}  // namespace crema
