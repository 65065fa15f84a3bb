// Recurrent layers: LSTM, RNN and GRU against straightforward reference loops written here
// in double precision (with static input, exposed hidden states and resets in the middle
// of a batch), a GRU with hand-set weights against numbers computed independently, the
// state carried from one Forward to the next, gradient checks (inputs, parameters and
// exposed states), LSTMUnit, the parameter layouts, a long GRU sequence without
// allocations, and the errors.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/recurrent.hpp"
#include "src/fast_math.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::Diffs;
using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

std::shared_ptr<Layer> Make(const std::string& type, const std::string& recurrent_param,
                            const std::string& name = "rec") {
  return MakeLayer("name: '" + name + "' type: '" + type + "' recurrent_param { " +
                   recurrent_param + " }");
}

const char* kFillers =
    "weight_filler { type: 'uniform' min: -0.6 max: 0.6 } "
    "bias_filler { type: 'uniform' min: -0.4 max: 0.4 }";

double Sig(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

// y[r] = sum_k W[r, k] v[k] over the rows [row0, row0 + rows) of a row-major W with `cols`.
double Dot(const Blob& w, int row, const float* v) {
  const int cols = w.shape(1);
  double s = 0;
  for (int k = 0; k < cols; ++k) s += double(w.cpu_data()[row * cols + k]) * v[k];
  return s;
}
double Dot(const Blob& w, int row, const std::vector<double>& v) {
  const int cols = w.shape(1);
  double s = 0;
  for (int k = 0; k < cols; ++k) s += double(w.cpu_data()[row * cols + k]) * v[k];
  return s;
}

// The inputs of one case: x [T, N, D], cont [T, N], optional x_static [N, Ds], h0/c0.
struct Inputs {
  int T, N, D, H;
  Blob x, cont, xs, h0, c0;
  bool with_static = false;
  Inputs(int t, int n, int d, int h, const std::vector<float>& cont_values, int ds = 0)
      : T(t), N(n), D(d), H(h) {
    x.Reshape(Shape{T, N, D});
    testing::FillGaussian(&x, 1.f, 11);
    cont.Reshape(Shape{T, N});
    SetValues(&cont, cont_values);
    if (ds > 0) {
      with_static = true;
      xs.Reshape(Shape{N, ds});
      testing::FillGaussian(&xs, 1.f, 12);
    }
    h0.Reshape(Shape{1, N, H});
    c0.Reshape(Shape{1, N, H});
    testing::FillGaussian(&h0, 0.5f, 13);
    testing::FillGaussian(&c0, 0.5f, 14);
  }
  BlobVec Bottoms(int states) {
    BlobVec b = {&x, &cont};
    if (with_static) b.push_back(&xs);
    if (states >= 1) b.push_back(&h0);
    if (states >= 2) b.push_back(&c0);
    return b;
  }
  float Cont(int t, int n) const { return cont.cpu_data()[t * N + n]; }
  const float* X(int t, int n) const { return x.cpu_data() + (t * N + n) * D; }
};

// Reference LSTM: returns h for every step, then h_T, then c_T (N*H each).
std::vector<double> ReferenceLSTM(const Layer& layer, const Inputs& in, bool use_initial) {
  const int H = in.H;
  const auto& b = layer.blobs();
  const Blob& w_xc = *b[0];
  const Blob& b_c = *b[1];
  const Blob* w_s = in.with_static ? b[2].get() : nullptr;
  const Blob& w_hc = *b[in.with_static ? 3 : 2];
  std::vector<double> h(in.N * H, 0.0), c(in.N * H, 0.0), out;
  if (use_initial)
    for (int i = 0; i < in.N * H; ++i) {
      h[i] = in.h0.cpu_data()[i];
      c[i] = in.c0.cpu_data()[i];
    }
  for (int t = 0; t < in.T; ++t) {
    std::vector<double> hn(h.size()), cn(c.size());
    for (int n = 0; n < in.N; ++n) {
      const double k = in.Cont(t, n);
      std::vector<double> hc(H);
      for (int j = 0; j < H; ++j) hc[j] = k * h[n * H + j];
      std::vector<double> a(4 * H);
      for (int r = 0; r < 4 * H; ++r) {
        a[r] = b_c.cpu_data()[r] + Dot(w_xc, r, in.X(t, n)) + Dot(w_hc, r, hc);
        if (w_s) a[r] += Dot(*w_s, r, in.xs.cpu_data() + n * in.xs.shape(1));
      }
      for (int d = 0; d < H; ++d) {
        const double i = Sig(a[d]), f = k * Sig(a[H + d]), o = Sig(a[2 * H + d]),
                     g = std::tanh(a[3 * H + d]);
        cn[n * H + d] = f * c[n * H + d] + i * g;
        hn[n * H + d] = o * std::tanh(cn[n * H + d]);
      }
    }
    h = hn;
    c = cn;
    out.insert(out.end(), h.begin(), h.end());
  }
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

// Reference RNN: o for every step, then h_T.
std::vector<double> ReferenceRNN(const Layer& layer, const Inputs& in, bool use_initial) {
  const int H = in.H;
  const auto& b = layer.blobs();
  const int off = in.with_static ? 1 : 0;
  const Blob& w_xh = *b[0];
  const Blob& b_h = *b[1];
  const Blob& w_hh = *b[2 + off];
  const Blob& w_ho = *b[3 + off];
  const Blob& b_o = *b[4 + off];
  std::vector<double> h(in.N * H, 0.0), out;
  if (use_initial)
    for (int i = 0; i < in.N * H; ++i) h[i] = in.h0.cpu_data()[i];
  for (int t = 0; t < in.T; ++t) {
    std::vector<double> hn(h.size());
    for (int n = 0; n < in.N; ++n) {
      std::vector<double> hc(H);
      for (int j = 0; j < H; ++j) hc[j] = in.Cont(t, n) * h[n * H + j];
      for (int r = 0; r < H; ++r) {
        double a = b_h.cpu_data()[r] + Dot(w_xh, r, in.X(t, n)) + Dot(w_hh, r, hc);
        if (off) a += Dot(*b[2], r, in.xs.cpu_data() + n * in.xs.shape(1));
        hn[n * H + r] = std::tanh(a);
      }
    }
    h = hn;
    for (int n = 0; n < in.N; ++n) {
      std::vector<double> hv(h.begin() + n * H, h.begin() + (n + 1) * H);
      for (int r = 0; r < H; ++r) out.push_back(std::tanh(b_o.cpu_data()[r] + Dot(w_ho, r, hv)));
    }
  }
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

// Reference GRU (PyTorch's equations): h for every step, then h_T.
std::vector<double> ReferenceGRU(const Layer& layer, const Inputs& in, bool use_initial) {
  const int H = in.H;
  const auto& b = layer.blobs();
  const Blob &w_ih = *b[0], &w_hh = *b[1], &b_ih = *b[2], &b_hh = *b[3];
  std::vector<double> h(in.N * H, 0.0), out;
  if (use_initial)
    for (int i = 0; i < in.N * H; ++i) h[i] = in.h0.cpu_data()[i];
  for (int t = 0; t < in.T; ++t) {
    std::vector<double> hn(h.size());
    for (int n = 0; n < in.N; ++n) {
      std::vector<double> hc(H), gx(3 * H), gh(3 * H);
      for (int j = 0; j < H; ++j) hc[j] = in.Cont(t, n) * h[n * H + j];
      for (int r = 0; r < 3 * H; ++r) {
        gx[r] = b_ih.cpu_data()[r] + Dot(w_ih, r, in.X(t, n));
        if (in.with_static) gx[r] += Dot(*b[4], r, in.xs.cpu_data() + n * in.xs.shape(1));
        gh[r] = b_hh.cpu_data()[r] + Dot(w_hh, r, hc);
      }
      for (int d = 0; d < H; ++d) {
        const double r = Sig(gx[d] + gh[d]), z = Sig(gx[H + d] + gh[H + d]);
        const double nn = std::tanh(gx[2 * H + d] + r * gh[2 * H + d]);
        hn[n * H + d] = (1 - z) * nn + z * hc[d];
      }
    }
    h = hn;
    out.insert(out.end(), h.begin(), h.end());
  }
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

void ExpectMatches(const std::vector<double>& expected, const BlobVec& tops,
                   const std::string& what) {
  size_t k = 0;
  for (size_t t = 0; t < tops.size(); ++t)
    for (int i = 0; i < tops[t]->count(); ++i, ++k) {
      ASSERT_LT(k, expected.size()) << what;
      EXPECT_NEAR(tops[t]->cpu_data()[i], expected[k], 2e-5)
          << what << " top " << t << " [" << i << "]";
    }
  EXPECT_EQ(k, expected.size()) << what;
}

// Cont for T = 3, N = 2 with a reset in the middle of stream 1.
const std::vector<float> kCont = {0, 0, 1, 0, 1, 1};
// With exposed states: stream 0 continues from h_0, stream 1 restarts at t = 1.
const std::vector<float> kContExposed = {1, 1, 1, 0, 1, 1};

// ---------------------------------------------------------------------------------------
// Known answers
// ---------------------------------------------------------------------------------------

TEST(LSTMLayer, ForwardMatchesReference) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_static = variant & 1, exposed = variant & 2;
    std::string rp = std::string("num_output: 3 ") + kFillers;
    if (exposed) rp += " expose_hidden: true";
    auto lstm = Make("LSTM", rp);
    Inputs in(3, 2, 4, 3, exposed ? kContExposed : kCont, with_static ? 5 : 0);
    Blob h, hT, cT;
    BlobVec tops = {&h};
    if (exposed) tops = {&h, &hT, &cT};
    BlobVec bottoms = in.Bottoms(exposed ? 2 : 0);
    lstm->SetUp(bottoms, tops);
    ASSERT_EQ(h.shape(), (Shape{3, 2, 3}));
    lstm->Forward(bottoms, tops);
    std::vector<double> expected = ReferenceLSTM(*lstm, in, exposed);
    if (!exposed) expected.resize(3 * 2 * 3);
    ExpectMatches(expected, tops, "variant " + std::to_string(variant));
    EXPECT_DOUBLE_EQ(lstm->ForwardFlops(bottoms, tops),
                     2.0 * 3 * 2 * 12 * (4 + 3) + (with_static ? 2.0 * 2 * 12 * 5 : 0.0));
  }
}

TEST(RNNLayer, ForwardMatchesReference) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_static = variant & 1, exposed = variant & 2;
    std::string rp = std::string("num_output: 3 ") + kFillers;
    if (exposed) rp += " expose_hidden: true";
    auto rnn = Make("RNN", rp);
    Inputs in(3, 2, 4, 3, exposed ? kContExposed : kCont, with_static ? 5 : 0);
    Blob o, hT;
    BlobVec tops = {&o};
    if (exposed) tops = {&o, &hT};
    BlobVec bottoms = in.Bottoms(exposed ? 1 : 0);
    rnn->SetUp(bottoms, tops);
    rnn->Forward(bottoms, tops);
    std::vector<double> expected = ReferenceRNN(*rnn, in, exposed);
    if (!exposed) expected.resize(3 * 2 * 3);
    ExpectMatches(expected, tops, "variant " + std::to_string(variant));
  }
}

TEST(GRULayer, ForwardMatchesReference) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool with_static = variant & 1, exposed = variant & 2;
    std::string rp = std::string("num_output: 3 ") + kFillers;
    if (exposed) rp += " expose_hidden: true";
    auto gru = Make("GRU", rp);
    Inputs in(3, 2, 4, 3, exposed ? kContExposed : kCont, with_static ? 5 : 0);
    Blob h, hT;
    BlobVec tops = {&h};
    if (exposed) tops = {&h, &hT};
    BlobVec bottoms = in.Bottoms(exposed ? 1 : 0);
    gru->SetUp(bottoms, tops);
    gru->Forward(bottoms, tops);
    std::vector<double> expected = ReferenceGRU(*gru, in, exposed);
    if (!exposed) expected.resize(3 * 2 * 3);
    ExpectMatches(expected, tops, "variant " + std::to_string(variant));
  }
}

// A width (37) where the vectorised gate loop has full vectors and a remainder.
TEST(GRULayer, WideForwardMatchesReference) {
  auto gru = Make("GRU", std::string("num_output: 37 ") + kFillers);
  Inputs in(3, 2, 4, 37, kCont);
  Blob h;
  BlobVec tops = {&h};
  BlobVec bottoms = in.Bottoms(0);
  gru->SetUp(bottoms, tops);
  gru->Forward(bottoms, tops);
  std::vector<double> expected = ReferenceGRU(*gru, in, false);
  expected.resize(3 * 2 * 37);  // h only (the reference appends h_T)
  ExpectMatches(expected, tops, "H = 37");
}

// src/fast_math.hpp against libm in double precision, densely over the range that matters,
// and at the edges: within 2 ulp relative (sigmoid: where it is a normal float; tanh: also
// near 0, where the polynomial branch applies), NaN in gives NaN out, saturation at +-inf.
TEST(FastMath, ExpSigmoidTanhWithinTwoUlpOfLibm) {
  const double two_ulp = 2.0 * std::ldexp(1.0, -23);
  double worst_exp = 0, worst_sigmoid = 0, worst_tanh = 0;
  auto relative = [](double got, double want) { return std::fabs(got - want) / std::fabs(want); };
  for (double v = -90; v <= 90; v += 7.3e-4) {
    const float x = static_cast<float>(v);
    if (x > -87.f && x < 88.f)
      worst_exp = std::max(worst_exp, relative(fast::Exp(x), std::exp(static_cast<double>(x))));
    const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(x)));
    if (s > 1e-37) worst_sigmoid = std::max(worst_sigmoid, relative(fast::Sigmoid(x), s));
    const double t = std::tanh(static_cast<double>(x));
    if (t != 0) worst_tanh = std::max(worst_tanh, relative(fast::Tanh(x), t));
  }
  for (double v = -1e-3; v <= 1e-3; v += 3.1e-7) {
    const float x = static_cast<float>(v);
    if (x != 0)
      worst_tanh = std::max(worst_tanh, relative(fast::Tanh(x), std::tanh(static_cast<double>(x))));
  }
  EXPECT_LT(worst_exp, two_ulp);
  EXPECT_LT(worst_sigmoid, two_ulp);
  EXPECT_LT(worst_tanh, two_ulp);
  const float nan = std::nanf("");
  EXPECT_TRUE(std::isnan(fast::Exp(nan)));
  EXPECT_TRUE(std::isnan(fast::Sigmoid(nan)));
  EXPECT_TRUE(std::isnan(fast::Tanh(nan)));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fast::Tanh(inf), 1.f);
  EXPECT_EQ(fast::Tanh(-inf), -1.f);
  EXPECT_EQ(fast::Sigmoid(inf), 1.f);
  EXPECT_LT(fast::Sigmoid(-inf), 1e-37f);
  EXPECT_EQ(fast::Tanh(0.f), 0.f);
}

// Hand-set weights; the expected values were computed independently (plain Python, double
// precision) from PyTorch's GRU equations.
TEST(GRULayer, HandSetWeights) {
  auto gru = Make("GRU", "num_output: 2 expose_hidden: true");
  Blob x(Shape{3, 1, 2}), cont(Shape{3, 1}), h0(Shape{1, 1, 2}), h, hT;
  SetValues(&x, {1.0f, -1.0f, 0.5f, 2.0f, -1.5f, 0.25f});
  SetValues(&h0, {0.7f, -0.4f});
  gru->SetUp({&x, &cont, &h0}, {&h, &hT});
  ASSERT_EQ(gru->blobs().size(), 4u);
  SetValues(gru->blobs()[0].get(),
            {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 0.1f, -0.3f, 0.2f});
  SetValues(gru->blobs()[1].get(),
            {0.2f, 0.1f, -0.1f, 0.3f, 0.4f, -0.2f, 0.05f, 0.15f, -0.6f, 0.5f, 0.25f, -0.35f});
  SetValues(gru->blobs()[2].get(), {0.1f, -0.1f, 0.2f, -0.2f, 0.3f, -0.3f});
  SetValues(gru->blobs()[3].get(), {-0.05f, 0.05f, 0.15f, -0.15f, 0.25f, -0.25f});
  struct Case {
    std::vector<float> cont;
    std::vector<double> h;
  };
  const Case cases[] = {
      {{0, 1, 1}, {0.575497191, -0.174073090, 0.597090967, -0.096598552, 0.343719938, 0.126969583}},
      {{1, 1, 1}, {0.702046922, -0.460941496, 0.693312598, -0.068682831, 0.428325599, 0.135785508}},
      {{1, 0, 1},
       {0.702046922, -0.460941496, 0.167964917, -0.186272466, -0.022630479, 0.089542627}},
  };
  for (const Case& c : cases) {
    SetValues(&cont, c.cont);
    gru->Forward({&x, &cont, &h0}, {&h, &hT});
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(h.cpu_data()[i], c.h[i], 1e-6) << i;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(hT.cpu_data()[i], c.h[4 + i], 1e-6) << i;
  }
}

TEST(LSTMUnitLayer, ForwardMatchesFormula) {
  pb::LayerParameter p;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString("name: 'u' type: 'LSTMUnit'", &p));
  auto unit = LayerRegistry::Create(p);
  const int N = 2, H = 3;
  Blob c_prev(Shape{1, N, H}), gates(Shape{1, N, 4 * H}), cont(Shape{1, N}), c, h;
  testing::FillGaussian(&c_prev, 1.f, 21);
  testing::FillGaussian(&gates, 1.f, 22);
  SetValues(&cont, {1, 0});
  unit->SetUp({&c_prev, &gates, &cont}, {&c, &h});
  unit->Forward({&c_prev, &gates, &cont}, {&c, &h});
  for (int n = 0; n < N; ++n)
    for (int d = 0; d < H; ++d) {
      const float* a = gates.cpu_data() + n * 4 * H;
      const double i = Sig(a[d]), f = cont.cpu_data()[n] * Sig(a[H + d]), o = Sig(a[2 * H + d]),
                   g = std::tanh(a[3 * H + d]);
      const double ct = f * c_prev.cpu_data()[n * H + d] + i * g;
      EXPECT_NEAR(c.cpu_data()[n * H + d], ct, 1e-6);
      EXPECT_NEAR(h.cpu_data()[n * H + d], o * std::tanh(ct), 1e-6);
    }
}

// ---------------------------------------------------------------------------------------
// State carried between Forward calls (no expose_hidden), as Caffe does
// ---------------------------------------------------------------------------------------

TEST(LSTMLayer, StateCarriesOverBetweenForwards) {
  for (const char* type : {"LSTM", "RNN", "GRU"}) {
    auto whole = Make(type, std::string("num_output: 3 ") + kFillers);
    auto split = Make(type, std::string("num_output: 3 ") + kFillers);
    Inputs in(4, 2, 3, 3, {0, 0, 1, 1, 1, 0, 1, 1});
    Blob y_whole, y_part;
    whole->SetUp({&in.x, &in.cont}, {&y_whole});
    Blob x1(Shape{1, 2, 3}), c1(Shape{1, 2});
    split->SetUp({&x1, &c1}, {&y_part});
    for (size_t i = 0; i < whole->blobs().size(); ++i)
      split->blobs()[i]->CopyFrom(*whole->blobs()[i]);
    whole->Forward({&in.x, &in.cont}, {&y_whole});
    for (int t = 0; t < 4; ++t) {
      std::copy_n(in.x.cpu_data() + t * 6, 6, x1.mutable_cpu_data());
      std::copy_n(in.cont.cpu_data() + t * 2, 2, c1.mutable_cpu_data());
      split->Forward({&x1, &c1}, {&y_part});
      for (int i = 0; i < 6; ++i)
        EXPECT_NEAR(y_part.cpu_data()[i], y_whole.cpu_data()[t * 6 + i], 1e-5)
            << type << " t " << t << " [" << i << "]";
    }
    // ResetState forgets the carried state: with cont 1 the next step starts from zero.
    static_cast<RecurrentLayer*>(split.get())->ResetState();
    std::copy_n(in.x.cpu_data(), 6, x1.mutable_cpu_data());
    SetValues(&c1, {1, 1});
    split->Forward({&x1, &c1}, {&y_part});
    for (int i = 0; i < 6; ++i)
      EXPECT_NEAR(y_part.cpu_data()[i], y_whole.cpu_data()[i], 1e-5) << type << " reset " << i;
  }
}

// ---------------------------------------------------------------------------------------
// Gradients
// ---------------------------------------------------------------------------------------

void CheckGradients(const std::string& type, int states, bool with_static, bool exposed) {
  std::string rp = std::string("num_output: 3 ") + kFillers;
  // The gradients through the exposed states are crema's opt-in (Caffe has none).
  if (exposed) rp += " expose_hidden: true backprop_exposed_hidden: true";
  auto layer = Make(type, rp);
  Inputs in(3, 2, 3, 3, exposed ? kContExposed : kCont, with_static ? 2 : 0);
  std::vector<Blob> tops(1 + (exposed ? states : 0));
  BlobVec top;
  for (Blob& b : tops) top.push_back(&b);
  BlobVec bottom = in.Bottoms(exposed ? states : 0);
  testing::GradientCheckOptions options;
  for (int i = 0; i < static_cast<int>(bottom.size()); ++i)
    if (i != 1) options.bottoms_to_check.push_back(i);
  testing::GradientChecker(options).Check(layer.get(), bottom, top);
}

TEST(LSTMLayer, Gradient) {
  CheckGradients("LSTM", 2, false, false);
}
TEST(LSTMLayer, GradientStaticInput) {
  CheckGradients("LSTM", 2, true, false);
}
TEST(LSTMLayer, GradientExposedHidden) {
  CheckGradients("LSTM", 2, true, true);
}
TEST(RNNLayer, Gradient) {
  CheckGradients("RNN", 1, false, false);
}
TEST(RNNLayer, GradientStaticInput) {
  CheckGradients("RNN", 1, true, false);
}
TEST(RNNLayer, GradientExposedHidden) {
  CheckGradients("RNN", 1, false, true);
}
TEST(GRULayer, Gradient) {
  CheckGradients("GRU", 1, false, false);
}
TEST(GRULayer, GradientStaticInput) {
  CheckGradients("GRU", 1, true, false);
}
TEST(GRULayer, GradientExposedHidden) {
  CheckGradients("GRU", 1, true, true);
}

// Caffe's semantics by default: the h_T/c_T diffs are ignored and h_0/c_0 get no gradient.
// So the gradients equal the opt-in's with zero h_T/c_T diffs, and h_0/c_0 keep their diffs.
TEST(RecurrentLayers, ExposedStatesCarryNoGradientByDefault) {
  const std::pair<std::string, int> types[] = {{"LSTM", 2}, {"RNN", 1}, {"GRU", 1}};
  for (const auto& [type, states] : types) {
    SCOPED_TRACE(type);
    std::vector<std::vector<float>> grads[2];  // [opt-in?]: x diff, then parameter diffs
    for (int opt_in = 0; opt_in < 2; ++opt_in) {
      std::string rp = std::string("num_output: 3 expose_hidden: true ") + kFillers;
      if (opt_in) rp += " backprop_exposed_hidden: true";
      auto layer = Make(type, rp);
      Inputs in(3, 2, 3, 3, kContExposed, 2);
      std::vector<Blob> tops(1 + states);
      BlobVec top, bottom = in.Bottoms(states);
      for (Blob& b : tops) top.push_back(&b);
      layer->SetUp(bottom, top);
      layer->Forward(bottom, top);
      Blob dh(tops[0].shape());
      testing::FillGaussian(&dh, 1.f, 21);
      cpu_copy(dh.count(), dh.cpu_data(), tops[0].mutable_cpu_diff());
      for (int k = 1; k <= states; ++k)  // default: ignored; opt-in: zero
        cpu_set(tops[k].count(), opt_in ? 0.f : 5.f, tops[k].mutable_cpu_diff());
      for (Blob* b : bottom) cpu_set(b->count(), 7.f, b->mutable_cpu_diff());
      for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
      std::vector<bool> propagate(bottom.size(), true);
      propagate[1] = false;
      layer->Backward(top, propagate, bottom);
      grads[opt_in].push_back(Diffs(in.x));
      for (auto& p : layer->blobs()) grads[opt_in].push_back(Diffs(*p));
      const size_t first_state = bottom.size() - states;
      for (size_t i = first_state; i < bottom.size(); ++i) {
        const std::vector<float> diff = Diffs(*bottom[i]);
        if (opt_in)
          EXPECT_NE(diff, std::vector<float>(diff.size(), 7.f)) << "bottom " << i;
        else
          EXPECT_EQ(diff, std::vector<float>(diff.size(), 7.f)) << "bottom " << i;
      }
    }
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_EQ(grads[0][i], grads[1][i]) << i;
  }
}

TEST(LSTMUnitLayer, Gradient) {
  pb::LayerParameter p;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString("name: 'u' type: 'LSTMUnit'", &p));
  auto unit = LayerRegistry::Create(p);
  Blob c_prev(Shape{1, 3, 2}), gates(Shape{1, 3, 8}), cont(Shape{1, 3}), c, h;
  testing::FillGaussian(&c_prev, 1.f, 31);
  testing::FillGaussian(&gates, 1.f, 32);
  SetValues(&cont, {1, 0, 1});
  testing::GradientCheckOptions options;
  options.bottoms_to_check = {0, 1};
  testing::GradientChecker(options).Check(unit.get(), {&c_prev, &gates, &cont}, {&c, &h});
}

// Parameter gradients accumulate across Backward calls (the solver clears them).
TEST(GRULayer, ParameterGradientsAccumulate) {
  auto gru = Make("GRU", std::string("num_output: 3 ") + kFillers);
  Inputs in(3, 2, 3, 3, kCont);
  Blob h;
  gru->SetUp({&in.x, &in.cont}, {&h});
  gru->Forward({&in.x, &in.cont}, {&h});
  testing::FillGaussian(&h, 1.f, 41);
  cpu_copy(h.count(), h.cpu_data(), h.mutable_cpu_diff());
  for (auto& b : gru->blobs()) cpu_set(b->count(), 0.f, b->mutable_cpu_diff());
  gru->Backward({&h}, {false, false}, {&in.x, &in.cont});
  std::vector<std::vector<float>> once;
  for (auto& b : gru->blobs()) once.emplace_back(b->cpu_diff(), b->cpu_diff() + b->count());
  gru->Backward({&h}, {false, false}, {&in.x, &in.cont});
  for (size_t p = 0; p < once.size(); ++p)
    for (size_t i = 0; i < once[p].size(); ++i)
      EXPECT_NEAR(gru->blobs()[p]->cpu_diff()[i], 2 * once[p][i], 1e-5) << p << " " << i;
}

// With many streams the per-step work is split across threads (rows of the batch): the
// split must give the reference forward and the same gradients as one thread.
TEST(RecurrentLayers, ThreadedStepsMatchSingleThread) {
  const int saved_threads = Context::num_threads();
  for (const char* type : {"LSTM", "RNN", "GRU"}) {
    SCOPED_TRACE(type);
    auto layer = Make(type, std::string("num_output: 64 ") + kFillers);
    std::vector<float> cont(3 * 72, 1.f);
    for (int n = 0; n < 72; ++n) cont[n] = 0.f;
    for (int n = 0; n < 72; n += 5) cont[72 + n] = 0.f;
    Inputs in(3, 72, 5, 64, cont);
    Blob y;
    layer->SetUp({&in.x, &in.cont}, {&y});
    std::vector<std::vector<float>> results;
    for (int threads : {2, 1}) {
      Context::set_num_threads(threads);
      layer->Forward({&in.x, &in.cont}, {&y});
      testing::FillGaussian(&y, 1.f, 61);  // y's data is overwritten by the next forward
      cpu_copy(y.count(), y.cpu_data(), y.mutable_cpu_diff());
      layer->Forward({&in.x, &in.cont}, {&y});
      if (threads == 2) {
        std::vector<double> expected;
        if (std::string(type) == "LSTM") expected = ReferenceLSTM(*layer, in, false);
        if (std::string(type) == "RNN") expected = ReferenceRNN(*layer, in, false);
        if (std::string(type) == "GRU") expected = ReferenceGRU(*layer, in, false);
        expected.resize(y.count());
        ExpectMatches(expected, {&y}, "threaded forward");
      }
      for (auto& b : layer->blobs()) cpu_set(b->count(), 0.f, b->mutable_cpu_diff());
      layer->Backward({&y}, {true, false}, {&in.x, &in.cont});
      std::vector<float> all(in.x.cpu_diff(), in.x.cpu_diff() + in.x.count());
      for (auto& b : layer->blobs())
        all.insert(all.end(), b->cpu_diff(), b->cpu_diff() + b->count());
      results.push_back(all);
    }
    Context::set_num_threads(saved_threads);
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t i = 0; i < results[0].size(); ++i)
      ASSERT_NEAR(results[0][i], results[1][i], 1e-4 * std::max(1.f, std::fabs(results[1][i])))
          << i;
  }
  Context::set_num_threads(saved_threads);
}

// ---------------------------------------------------------------------------------------
// Parameter layouts
// ---------------------------------------------------------------------------------------

std::vector<Shape> ParamShapes(const Layer& layer) {
  std::vector<Shape> shapes;
  for (const auto& b : layer.blobs()) shapes.push_back(b->shape());
  return shapes;
}

TEST(LSTMLayer, ParameterLayout) {
  Inputs in(2, 3, 5, 4, {0, 0, 0, 1, 1, 1}, 6);
  Blob y;
  auto plain = Make("LSTM", "num_output: 4");
  plain->SetUp({&in.x, &in.cont}, {&y});
  EXPECT_EQ(ParamShapes(*plain), (std::vector<Shape>{{16, 5}, {16}, {16, 4}}));
  auto with_static = Make("LSTM", "num_output: 4");
  with_static->SetUp({&in.x, &in.cont, &in.xs}, {&y});
  EXPECT_EQ(ParamShapes(*with_static), (std::vector<Shape>{{16, 5}, {16}, {16, 6}, {16, 4}}));
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
}

TEST(RNNLayer, ParameterLayout) {
  Inputs in(2, 3, 5, 4, {0, 0, 0, 1, 1, 1}, 6);
  Blob y;
  auto plain = Make("RNN", "num_output: 4");
  plain->SetUp({&in.x, &in.cont}, {&y});
  EXPECT_EQ(ParamShapes(*plain), (std::vector<Shape>{{4, 5}, {4}, {4, 4}, {4, 4}, {4}}));
  auto with_static = Make("RNN", "num_output: 4");
  with_static->SetUp({&in.x, &in.cont, &in.xs}, {&y});
  EXPECT_EQ(ParamShapes(*with_static),
            (std::vector<Shape>{{4, 5}, {4}, {4, 6}, {4, 4}, {4, 4}, {4}}));
}

TEST(GRULayer, ParameterLayout) {
  // x with extra axes: D = count(2).
  Blob x(Shape{2, 3, 2, 3}), cont(Shape{2, 3}), y;
  auto gru = Make("GRU", "num_output: 4");
  gru->SetUp({&x, &cont}, {&y});
  EXPECT_EQ(ParamShapes(*gru), (std::vector<Shape>{{12, 6}, {12, 4}, {12}, {12}}));
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
}

// Weights loaded from a model must have the right shapes.
TEST(LSTMLayer, LoadedParameterShapesAreChecked) {
  pb::LayerParameter p;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "name: 'lstm1' type: 'LSTM' recurrent_param { num_output: 2 } "
      "blobs { shape { dim: 8 dim: 3 } data: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0] } "
      "blobs { shape { dim: 8 } data: [0,0,0,0,0,0,0,0] } "
      "blobs { shape { dim: 8 dim: 3 } data: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0] }",
      &p));
  auto lstm = LayerRegistry::Create(p);
  Blob x(Shape{2, 1, 3}), cont(Shape{2, 1}), y;
  try {
    lstm->SetUp({&x, &cont}, {&y});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("lstm1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("W_hc"), std::string::npos) << msg;
  }
}

// ---------------------------------------------------------------------------------------
// Long sequences: no allocation in Forward/Backward (the time is printed, not asserted:
// a loaded CI machine is no measure of speed; bench/ is)
// ---------------------------------------------------------------------------------------

TEST(GRULayer, LongSequenceWithoutAllocation) {
  const int T = 150, N = 4, D = 125, H = 100;
  auto gru = Make("GRU",
                  "num_output: 100 weight_filler { type: 'uniform' min: -0.1 max: 0.1 } "
                  "bias_filler { type: 'uniform' min: -0.1 max: 0.1 }");
  Blob x(Shape{T, N, D}), cont(Shape{T, N}), h;
  testing::FillGaussian(&x, 1.f, 51);
  for (int t = 0; t < T; ++t)
    for (int n = 0; n < N; ++n) cont.mutable_cpu_data()[t * N + n] = (t % 37 == n) ? 0.f : 1.f;
  gru->SetUp({&x, &cont}, {&h});
  auto* rec = static_cast<RecurrentLayer*>(gru.get());
  std::vector<const void*> pointers;
  auto snapshot = [&]() {
    std::vector<const void*> p;
    for (const Blob* b : rec->buffers()) p.push_back(b->count() ? b->cpu_data() : nullptr);
    p.push_back(h.cpu_data());
    p.push_back(h.cpu_diff());
    for (auto& b : gru->blobs()) {
      p.push_back(b->cpu_data());
      p.push_back(b->cpu_diff());
    }
    return p;
  };
  const auto start = std::chrono::steady_clock::now();
  for (int iter = 0; iter < 2; ++iter) {
    gru->Forward({&x, &cont}, {&h});
    cpu_set(h.count(), 1.f, h.mutable_cpu_diff());
    gru->Backward({&h}, {true, false}, {&x, &cont});
    if (iter == 0)
      pointers = snapshot();
    else
      EXPECT_EQ(snapshot(), pointers) << "a buffer moved: something allocated per iteration";
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ gru      ] T %d, N %d, H %d: 2 x (forward + backward) in %.3f s\n", T, N, H,
              seconds);
  EXPECT_EQ(h.shape(), (Shape{T, N, H}));
  for (int i = 0; i < h.count(); ++i) ASSERT_TRUE(std::isfinite(h.cpu_data()[i]));
  for (int i = 0; i < x.count(); ++i) ASSERT_TRUE(std::isfinite(x.cpu_diff()[i]));
  // Sanity: the gradient reaches the first step.
  EXPECT_GT(cpu_asum(N * D, x.cpu_diff()), 0.f);
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

template <typename F>
void ExpectError(F f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& s : fragments) EXPECT_NE(msg.find(s), std::string::npos) << msg;
  }
}

TEST(LSTMLayer, BadParameters) {
  Blob x(Shape{3, 2, 4}), cont(Shape{3, 2}), y;
  ExpectError(
      [&] {
        auto l = Make("LSTM", "num_output: 0", "lstm0");
        l->SetUp({&x, &cont}, {&y});
      },
      {"lstm0", "num_output"});
  Blob bad_cont(Shape{3, 3});
  ExpectError(
      [&] {
        auto l = Make("GRU", "num_output: 2", "gru_c");
        l->SetUp({&x, &bad_cont}, {&y});
      },
      {"gru_c", "cont", bad_cont.shape_string()});
  Blob x1(Shape{6});
  ExpectError(
      [&] {
        auto l = Make("RNN", "num_output: 2", "rnn_x");
        l->SetUp({&x1, &cont}, {&y});
      },
      {"rnn_x", x1.shape_string()});
  // Features per step may not change after setup.
  ExpectError(
      [&] {
        auto l = Make("LSTM", "num_output: 2", "lstm_d");
        l->SetUp({&x, &cont}, {&y});
        Blob x5(Shape{3, 2, 5});
        l->Forward({&x5, &cont}, {&y});
      },
      {"lstm_d", "3 2 5"});
  // Exposed states of the wrong shape.
  Blob h0(Shape{1, 2, 3}), c0(Shape{1, 2, 2}), hT, cT;
  ExpectError(
      [&] {
        auto l = Make("LSTM", "num_output: 2 expose_hidden: true", "lstm_h");
        l->SetUp({&x, &cont, &h0, &c0}, {&y, &hT, &cT});
      },
      {"lstm_h", "h_0", h0.shape_string()});
  // Static input with the wrong number of streams.
  Blob xs(Shape{3, 4});
  ExpectError(
      [&] {
        auto l = Make("LSTM", "num_output: 2", "lstm_s");
        l->SetUp({&x, &cont, &xs}, {&y});
      },
      {"lstm_s", "x_static", xs.shape_string()});
  // No gradient w.r.t. cont.
  ExpectError(
      [&] {
        auto l = Make("GRU", "num_output: 2", "gru_b");
        l->SetUp({&x, &cont}, {&y});
        l->Forward({&x, &cont}, {&y});
        l->Backward({&y}, {true, true}, {&x, &cont});
      },
      {"gru_b", "cont"});
  // Blob counts: expose_hidden LSTM wants h_0 and c_0.
  ExpectError(
      [&] {
        auto l = Make("LSTM", "num_output: 2 expose_hidden: true", "lstm_n");
        l->SetUp({&x, &cont}, {&y});
      },
      {"lstm_n"});
}

TEST(LSTMUnitLayer, BadShapes) {
  pb::LayerParameter p;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString("name: 'unit1' type: 'LSTMUnit'", &p));
  auto unit = LayerRegistry::Create(p);
  Blob c_prev(Shape{1, 2, 3}), gates(Shape{1, 2, 11}), cont(Shape{1, 2}), c, h;
  ExpectError(
      [&] {
        unit->SetUp({&c_prev, &gates, &cont}, {&c, &h});
      },
      {"unit1", gates.shape_string()});
}

}  // namespace
}  // namespace crema
