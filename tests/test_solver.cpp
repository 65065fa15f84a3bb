// Solver and SGDSolver on a least-squares problem: a deterministic data layer defined here
// (TestCyclicData) feeds an InnerProduct layer and an EuclideanLoss; after k iterations
// the weights must equal those of a straightforward reference loop written below in double
// precision (momentum inside the history, weight decay, lr/decay multipliers, iter_size,
// gradient clipping, every lr policy). Also: construction errors, net states, the log
// format that log parsers rely on, and the test scores.
#include <glog/logging.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/layer.hpp"
#include "crema/layer_registry.hpp"
#include "crema/net.hpp"
#include "crema/solver.hpp"
#include "solvers/sgd.hpp"
#include "tests/solver_test_util.hpp"

namespace crema {

// ---------------------------------------------------------------------------------------
// TestCyclicData: a data layer with a known, seekable sequence of batches. Tops: x
// [batch, K] and t [batch, M], shapes from dummy_data_param.shape(0) and shape(1). Batch b
// holds samples (b * batch + r) mod kCycle, r = 0..batch-1, with the values below, so two
// consecutive batches of 4 are exactly one batch of 8. test_resume.cpp uses it too.
// ---------------------------------------------------------------------------------------
constexpr int kCycle = 12;
double CyclicX(int sample, int k) {
  return std::sin(1.7 * sample + 0.9 * k + 0.3);
}
double CyclicT(int sample, int m) {
  return std::cos(0.5 * sample - 1.1 * m) + 0.2 * m;
}

class TestCyclicDataLayer : public testing::CyclicDataLayer {
 public:
  explicit TestCyclicDataLayer(const pb::LayerParameter& param)
      : CyclicDataLayer(param, "TestCyclicData", kCycle, CyclicX, CyclicT) {}
};

REGISTER_LAYER_CLASS(TestCyclicData);

namespace {

constexpr int kK = 3;  // inputs
constexpr int kM = 2;  // outputs
const double kW0[kM * kK] = {0.3, -0.2, 0.1, -0.4, 0.25, 0.05};
const double kB0[kM] = {0.1, -0.3};

// Solvers reseed the process RNG (random_seed); put the suite's seed back afterwards.
class SolverSGD : public ::testing::Test {
 protected:
  void TearDown() override { Context::set_random_seed(saved_seed_); }
  int64_t saved_seed_ = Context::random_seed();
};

pb::SolverParameter ParseSolver(const std::string& text) {
  pb::SolverParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param)) << text;
  return param;
}

// The least-squares problem and its hyper-parameters, shared by crema and the reference.
struct Problem {
  int batch = 4;
  bool bias = true;
  int iter_size = 1;
  double lr_mult_w = 1, lr_mult_b = 1, decay_mult_w = 1, decay_mult_b = 1;
  double momentum = 0;
  double weight_decay = 0;
  std::string regularization = "L2";
  double clip = -1;
  std::string policy = "lr_policy: 'fixed' base_lr: 0.1";
  std::function<double(int)> rate = [](int) { return 0.1; };
  int max_iter = 100;
  int display = 0;
  std::string extra;  // more solver fields

  std::string NetText() const {
    return testing::LeastSquaresNetText("lsq", "TestCyclicData", batch, kK, kM, bias,
                                        {lr_mult_w, decay_mult_w, lr_mult_b, decay_mult_b});
  }

  pb::SolverParameter SolverParam() const {
    std::ostringstream text;
    text << "net_param { " << NetText() << " } " << policy << " momentum: " << momentum
         << " weight_decay: " << weight_decay << " regularization_type: '" << regularization
         << "' clip_gradients: " << clip << " iter_size: " << iter_size << " max_iter: " << max_iter
         << " display: " << display << " snapshot_after_train: false "
         << "random_seed: 7 " << extra;
    return ParseSolver(text.str());
  }
};

// The reference: plain loops in double precision.
struct Reference {
  explicit Reference(const Problem& problem) : p(problem) {
    W.assign(kW0, kW0 + kM * kK);
    b.assign(kB0, kB0 + kM);
    if (!p.bias) b.assign(kM, 0.0);
    hW.assign(kM * kK, 0.0);
    hb.assign(kM, 0.0);
  }

  // Loss of the current weights on batch `index` (of p.batch samples); adds its gradient.
  double Batch(int64_t index, std::vector<double>* gW, std::vector<double>* gb) const {
    double loss = 0;
    for (int r = 0; r < p.batch; ++r) {
      const int s = static_cast<int>((index * p.batch + r) % kCycle);
      for (int o = 0; o < kM; ++o) {
        double y = b[o];
        for (int k = 0; k < kK; ++k) y += W[o * kK + k] * CyclicX(s, k);
        const double d = y - CyclicT(s, o);
        loss += d * d / (2.0 * p.batch);
        if (gW) {
          for (int k = 0; k < kK; ++k) (*gW)[o * kK + k] += d / p.batch * CyclicX(s, k);
          (*gb)[o] += d / p.batch;
        }
      }
    }
    return loss;
  }

  static double Sign(double v) { return (v > 0) - (v < 0); }

  // One solver iteration; returns the loss averaged over the iter_size passes.
  double Iterate(int iter) {
    std::vector<double> gW(kM * kK, 0.0), gb(kM, 0.0);
    double loss = 0;
    for (int i = 0; i < p.iter_size; ++i) loss += Batch(next_batch++, &gW, &gb);
    loss /= p.iter_size;
    // Parameters with lr_mult 0 get no gradient at all (Caffe skips their backward).
    if (p.lr_mult_w == 0) gW.assign(gW.size(), 0.0);
    if (p.lr_mult_b == 0 || !p.bias) gb.assign(gb.size(), 0.0);
    if (p.clip >= 0) {
      double sumsq = 0;
      for (double g : gW) sumsq += g * g;
      for (double g : gb) sumsq += g * g;
      const double norm = std::sqrt(sumsq);
      if (norm > p.clip) {
        ++clipped;
        for (double& g : gW) g *= p.clip / norm;
        for (double& g : gb) g *= p.clip / norm;
      }
    }
    const double rate = p.rate(iter);
    auto update = [&](std::vector<double>& w, std::vector<double>& g, std::vector<double>& h,
                      double lr_mult, double decay_mult) {
      for (size_t i = 0; i < w.size(); ++i) {
        double grad = g[i] / p.iter_size;
        const double decay = p.weight_decay * decay_mult;
        grad += decay * (p.regularization == "L2" ? w[i] : Sign(w[i]));
        h[i] = p.momentum * h[i] + rate * lr_mult * grad;
        w[i] -= h[i];
      }
    };
    update(W, gW, hW, p.lr_mult_w, p.decay_mult_w);
    if (p.bias) update(b, gb, hb, p.lr_mult_b, p.decay_mult_b);
    return loss;
  }

  const Problem& p;
  std::vector<double> W, b, hW, hb;
  int64_t next_batch = 0;
  int clipped = 0;
};

std::unique_ptr<SGDSolver> MakeSolver(const Problem& problem) {
  std::unique_ptr<SGDSolver> solver(new SGDSolver(problem.SolverParam()));
  testing::SetInnerProductWeights(solver->net().get(), kW0, problem.bias ? kB0 : nullptr);
  return solver;
}

void ExpectNear(const float* actual, const std::vector<double>& expected, const char* what) {
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 2e-5 * std::max(1.0, std::fabs(expected[i])))
        << what << "[" << i << "]";
  }
}

// Runs `iters` iterations of crema and of the reference and compares weights and history.
void CheckAgainstReference(const Problem& problem, int iters, int* clipped = nullptr) {
  std::unique_ptr<SGDSolver> solver = MakeSolver(problem);
  Reference ref(problem);
  for (int i = 0; i < iters; ++i) ref.Iterate(i);
  solver->Step(iters);
  EXPECT_EQ(solver->iter(), iters);
  const Layer& ip = *solver->net()->layer_by_name("ip");
  ExpectNear(ip.blobs()[0]->cpu_data(), ref.W, "W");
  ExpectNear(solver->history()[0]->cpu_data(), ref.hW, "history W");
  if (problem.bias) {
    ExpectNear(ip.blobs()[1]->cpu_data(), ref.b, "b");
    ExpectNear(solver->history()[1]->cpu_data(), ref.hb, "history b");
  }
  if (clipped) *clipped = ref.clipped;
}

TEST_F(SolverSGD, PlainGradientDescent) {
  Problem p;
  CheckAgainstReference(p, 5);
}

TEST_F(SolverSGD, PlainGradientDescentWithoutBias) {
  Problem p;
  p.bias = false;
  CheckAgainstReference(p, 5);
}

TEST_F(SolverSGD, ReferenceCanFail) {
  // The comparison is sensitive: a slightly different rate gives different weights.
  Problem p;
  std::unique_ptr<SGDSolver> solver = MakeSolver(p);
  Problem other = p;
  other.rate = [](int) { return 0.1001; };
  Reference ref(other);
  for (int i = 0; i < 3; ++i) ref.Iterate(i);
  solver->Step(3);
  const float* w = solver->net()->layer_by_name("ip")->blobs()[0]->cpu_data();
  double max_diff = 0;
  for (int i = 0; i < kM * kK; ++i) max_diff = std::max(max_diff, std::fabs(w[i] - ref.W[i]));
  EXPECT_GT(max_diff, 1e-5);
}

TEST_F(SolverSGD, Momentum) {
  Problem p;
  p.momentum = 0.9;
  CheckAgainstReference(p, 6);
  p.bias = false;
  CheckAgainstReference(p, 6);
}

TEST_F(SolverSGD, WeightDecayL2WithDecayMult) {
  Problem p;
  p.momentum = 0.9;
  p.weight_decay = 0.05;
  p.decay_mult_w = 2;
  p.decay_mult_b = 0;
  CheckAgainstReference(p, 5);
}

TEST_F(SolverSGD, WeightDecayL1WithDecayMult) {
  Problem p;
  p.momentum = 0.5;
  p.weight_decay = 0.02;
  p.regularization = "L1";
  p.decay_mult_w = 2;
  p.decay_mult_b = 0;
  CheckAgainstReference(p, 5);
  p.decay_mult_w = 0;
  p.decay_mult_b = 2;
  CheckAgainstReference(p, 5);
}

TEST_F(SolverSGD, LrMult) {
  Problem p;
  p.momentum = 0.9;
  p.weight_decay = 0.01;  // a frozen parameter stays frozen despite the decay
  p.lr_mult_w = 2;
  p.lr_mult_b = 0;
  CheckAgainstReference(p, 5);
  std::unique_ptr<SGDSolver> solver = MakeSolver(p);
  solver->Step(3);
  const float* b = solver->net()->layer_by_name("ip")->blobs()[1]->cpu_data();
  EXPECT_EQ(b[0], static_cast<float>(kB0[0]));
  EXPECT_EQ(b[1], static_cast<float>(kB0[1]));
}

TEST_F(SolverSGD, IterSizeEqualsOneStepOnTheConcatenatedBatch) {
  Problem half;
  half.batch = 4;
  half.iter_size = 2;
  half.momentum = 0.9;
  half.weight_decay = 0.01;
  CheckAgainstReference(half, 4);

  Problem full = half;
  full.batch = 8;
  full.iter_size = 1;
  std::unique_ptr<SGDSolver> a = MakeSolver(half);
  std::unique_ptr<SGDSolver> b = MakeSolver(full);
  a->Step(4);
  b->Step(4);
  for (int blob = 0; blob < 2; ++blob) {
    const Blob& wa = *a->net()->layer_by_name("ip")->blobs()[blob];
    const Blob& wb = *b->net()->layer_by_name("ip")->blobs()[blob];
    for (int i = 0; i < wa.count(); ++i) {
      EXPECT_NEAR(wa.cpu_data()[i], wb.cpu_data()[i], 1e-6) << "blob " << blob << " [" << i << "]";
    }
  }
  // The consecutive half batches really differ (otherwise the equality proves nothing).
  Reference ref(half);
  EXPECT_GT(std::fabs(ref.Batch(0, nullptr, nullptr) - ref.Batch(1, nullptr, nullptr)), 1e-3);
}

TEST_F(SolverSGD, ClipGradientsActive) {
  Problem p;
  p.momentum = 0.9;
  p.clip = 0.05;
  int clipped = 0;
  CheckAgainstReference(p, 5, &clipped);
  EXPECT_EQ(clipped, 5);
  // With iter_size the norm is taken before the division by iter_size, as in Caffe.
  p.iter_size = 2;
  CheckAgainstReference(p, 3, &clipped);
  EXPECT_EQ(clipped, 3);
}

TEST_F(SolverSGD, ClipGradientsInactive) {
  Problem p;
  p.momentum = 0.9;
  p.clip = 1000;
  int clipped = 0;
  CheckAgainstReference(p, 5, &clipped);
  EXPECT_EQ(clipped, 0);
}

TEST_F(SolverSGD, EveryLrPolicy) {
  struct Case {
    std::string text;
    std::function<double(int)> rate;
  };
  const std::vector<Case> cases = {
      {"lr_policy: 'fixed' base_lr: 0.1", [](int) { return 0.1; }},
      {"lr_policy: 'step' base_lr: 0.1 gamma: 0.5 stepsize: 2",
       [](int it) { return 0.1 * std::pow(0.5, it / 2); }},
      {"lr_policy: 'exp' base_lr: 0.1 gamma: 0.8", [](int it) { return 0.1 * std::pow(0.8, it); }},
      {"lr_policy: 'inv' base_lr: 0.1 gamma: 0.5 power: 0.75",
       [](int it) { return 0.1 * std::pow(1 + 0.5 * it, -0.75); }},
      {"lr_policy: 'multistep' base_lr: 0.1 gamma: 0.5 stepvalue: 1 stepvalue: 3",
       [](int it) { return 0.1 * std::pow(0.5, (it >= 1) + (it >= 3)); }},
      {"lr_policy: 'poly' base_lr: 0.1 power: 1.5",
       [](int it) { return 0.1 * std::pow(1 - it / 6.0, 1.5); }},
      {"lr_policy: 'sigmoid' base_lr: 0.1 gamma: 1 stepsize: 3",
       [](int it) { return 0.1 / (1 + std::exp(-(it - 3.0))); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    Problem p;
    p.momentum = 0.9;
    p.policy = c.text;
    p.rate = c.rate;
    p.max_iter = 6;
    CheckAgainstReference(p, 6);
    std::unique_ptr<SGDSolver> solver = MakeSolver(p);
    solver->Step(5);
    EXPECT_NEAR(solver->GetLearningRate(), c.rate(5), 1e-7);
  }
}

TEST_F(SolverSGD, MultiStepCurrentStep) {
  Problem p;
  p.policy = "lr_policy: 'multistep' base_lr: 0.1 gamma: 0.5 stepvalue: 1 stepvalue: 3";
  std::unique_ptr<SGDSolver> solver = MakeSolver(p);
  solver->Step(2);
  EXPECT_EQ(solver->current_step(), 1);
  solver->Step(2);
  EXPECT_EQ(solver->current_step(), 2);
}

// ---------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------

void ExpectErrorContaining(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected crema::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST_F(SolverSGD, ConstructionErrors) {
  Problem p;
  const std::string net = "net_param { " + p.NetText() + " } ";
  const std::string rest = "lr_policy: 'fixed' base_lr: 0.1 snapshot_after_train: false ";
  auto make = [](const std::string& text) {
    return [text]() { SGDSolver solver(ParseSolver(text)); };
  };
  ExpectErrorContaining(make(rest), "train net");
  ExpectErrorContaining(make(net + "train_net_param { " + p.NetText() + " } " + rest),
                        "more than one");
  ExpectErrorContaining(make("train_net_param { " + p.NetText() + " } test_iter: 1 " + rest),
                        "test_iter");
  ExpectErrorContaining(make(net + "test_iter: 1 " + rest), "test_interval");
  ExpectErrorContaining(
      make(net + "test_iter: 1 test_interval: 5 test_state { stage: 'a' } test_state { } " + rest),
      "test_state");
  ExpectErrorContaining(make(net + rest + "snapshot_format: HDF5"),
                        "HDF5 snapshots are not supported yet; use BINARYPROTO");
  ExpectErrorContaining(make(net + rest + "snapshot: 10"), "snapshot_prefix");
  ExpectErrorContaining(make(net + rest + "average_loss: 0"), "average_loss");
  ExpectErrorContaining(make(net + rest + "iter_size: 0"), "iter_size");
  ExpectErrorContaining(make(net + "lr_policy: 'warmup' base_lr: 0.1"), "multistep");
  ExpectErrorContaining(make(net + rest + "weight_decay: 0.1 regularization_type: 'L3'"), "L3");
  ExpectErrorContaining(make("net: '/nonexistent/crema_solver_net.prototxt' " + rest),
                        "crema_solver_net.prototxt");
  // The registry.
  ExpectErrorContaining(
      [&]() { std::unique_ptr<Solver> s(CreateSolver(ParseSolver(net + rest + "type: 'Foo'"))); },
      "SGD");
  std::unique_ptr<Solver> sgd(CreateSolver(ParseSolver(net + rest)));
  EXPECT_STREQ(sgd->type(), "SGD");
  EXPECT_TRUE(SolverRegistry::Has("SGD"));
}

TEST_F(SolverSGD, NetStatesAndTestNets) {
  Problem p;
  const std::string net = p.NetText() +
                          " layer { name: 'train_only' type: 'ReLU' bottom: 'y' top: 'r1' "
                          "include { phase: TRAIN } }"
                          " layer { name: 'probe_only' type: 'ReLU' bottom: 'y' top: 'r2' "
                          "include { stage: 'probe' } }";
  SGDSolver solver(
      ParseSolver("net_param { " + net +
                  " } lr_policy: 'fixed' base_lr: 0.1 snapshot_after_train: false "
                  "train_state { stage: 'probe' } test_iter: 1 test_iter: 2 test_interval: 10 "
                  "test_state { } test_state { stage: 'probe' }"));
  EXPECT_EQ(solver.net()->phase(), Phase::TRAIN);
  EXPECT_TRUE(solver.net()->has_layer("train_only"));
  EXPECT_TRUE(solver.net()->has_layer("probe_only"));
  ASSERT_EQ(solver.test_nets().size(), 2u);
  for (const auto& test_net : solver.test_nets()) {
    EXPECT_EQ(test_net->phase(), Phase::TEST);
    EXPECT_FALSE(test_net->has_layer("train_only"));
  }
  EXPECT_FALSE(solver.test_nets()[0]->has_layer("probe_only"));
  EXPECT_TRUE(solver.test_nets()[1]->has_layer("probe_only"));
  // Test nets use the train net's weights (shared, not copied).
  EXPECT_EQ(solver.test_nets()[0]->layer_by_name("ip")->blobs()[0]->cpu_data(),
            solver.net()->layer_by_name("ip")->blobs()[0]->cpu_data());
}

// ---------------------------------------------------------------------------------------
// Logs and test scores
// ---------------------------------------------------------------------------------------

class LineCollector : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char* full_filename, const char* base_filename,
            int line, const std::tm* tm_time, const char* message, size_t message_len) override {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.emplace_back(message, message_len);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Captures INFO lines while alive.
class CaptureInfo {
 public:
  CaptureInfo() : saved_level_(FLAGS_minloglevel) {
    FLAGS_minloglevel = 0;
    google::AddLogSink(&collector_);
  }
  ~CaptureInfo() {
    google::RemoveLogSink(&collector_);
    FLAGS_minloglevel = saved_level_;
  }
  std::vector<std::string> lines() { return collector_.lines(); }

 private:
  int saved_level_;
  LineCollector collector_;
};

// The numbers of the first line matching `pattern` (each group parsed as a double).
bool FindLine(const std::vector<std::string>& lines, const std::string& pattern,
              std::vector<double>* numbers, size_t* from) {
  const std::regex re(pattern);
  for (size_t i = *from; i < lines.size(); ++i) {
    std::smatch match;
    if (std::regex_match(lines[i], match, re)) {
      numbers->clear();
      for (size_t g = 1; g < match.size(); ++g) numbers->push_back(std::stod(match[g].str()));
      *from = i + 1;
      return true;
    }
  }
  return false;
}

#define EXPECT_CLOSE(actual, expected) \
  EXPECT_NEAR(actual, expected, 2e-5 * std::max(1.0, std::fabs(expected)))

TEST_F(SolverSGD, LogFormatAndTestScores) {
  Problem p;
  p.max_iter = 2;
  p.display = 1;
  p.extra = "test_iter: 1 test_interval: 2 test_compute_loss: true";
  std::unique_ptr<SGDSolver> solver = MakeSolver(p);
  // Reference: train batches 0 and 1 update the weights; the final display pass reads
  // train batch 2; the test net reads its batch 0 at iteration 0 and batch 1 at iteration 2.
  Reference ref(p);
  const double test0 = ref.Batch(0, nullptr, nullptr);
  const double loss0 = ref.Iterate(0);
  const double loss1 = ref.Iterate(1);
  const double loss2 = ref.Batch(2, nullptr, nullptr);
  const double test2 = ref.Batch(1, nullptr, nullptr);

  std::vector<std::string> lines;
  {
    CaptureInfo capture;
    solver->Solve();
    lines = capture.lines();
  }
  const std::string num = "([-+0-9.eE]+)";
  std::vector<double> v;
  size_t at = 0;
  ASSERT_TRUE(FindLine(lines, "Solving lsq", &v, &at));
  ASSERT_TRUE(FindLine(lines, "Learning Rate Policy: fixed", &v, &at));
  ASSERT_TRUE(FindLine(lines, "Iteration 0, Testing net \\(#0\\)", &v, &at));
  ASSERT_TRUE(FindLine(lines, "Test loss: " + num, &v, &at));
  EXPECT_CLOSE(v[0], test0);
  ASSERT_TRUE(FindLine(
      lines, "    Test net output #0: loss = " + num + " \\(\\* 1 = " + num + " loss\\)", &v, &at));
  EXPECT_CLOSE(v[0], test0);
  EXPECT_CLOSE(v[1], test0);
  ASSERT_TRUE(FindLine(
      lines, "Iteration 0 \\(" + num + " iter/s, " + num + "s/1 iters\\), loss = " + num, &v, &at));
  EXPECT_CLOSE(v[2], loss0);
  ASSERT_TRUE(FindLine(lines,
                       "    Train net output #0: loss = " + num + " \\(\\* 1 = " + num + " loss\\)",
                       &v, &at));
  EXPECT_CLOSE(v[0], loss0);
  ASSERT_TRUE(FindLine(lines, "Iteration 0, lr = " + num, &v, &at));
  EXPECT_CLOSE(v[0], 0.1);
  ASSERT_TRUE(FindLine(
      lines, "Iteration 1 \\(" + num + " iter/s, " + num + "s/1 iters\\), loss = " + num, &v, &at));
  EXPECT_CLOSE(v[2], loss1);
  ASSERT_TRUE(FindLine(lines, "Iteration 1, lr = " + num, &v, &at));
  ASSERT_TRUE(FindLine(lines, "Iteration 2, loss = " + num, &v, &at));
  EXPECT_CLOSE(v[0], loss2);
  ASSERT_TRUE(FindLine(lines, "Iteration 2, Testing net \\(#0\\)", &v, &at));
  ASSERT_TRUE(FindLine(
      lines, "    Test net output #0: loss = " + num + " \\(\\* 1 = " + num + " loss\\)", &v, &at));
  EXPECT_CLOSE(v[0], test2);
  ASSERT_TRUE(FindLine(lines, "Optimization Done\\.", &v, &at));

  ASSERT_EQ(solver->last_test_scores().size(), 1u);
  ASSERT_EQ(solver->last_test_scores()[0].size(), 1u);
  EXPECT_EQ(solver->last_test_scores()[0][0].first, "loss");
  EXPECT_CLOSE(solver->last_test_scores()[0][0].second, test2);
  EXPECT_EQ(solver->iter(), 2);
}

TEST_F(SolverSGD, SmoothedLoss) {
  Problem p;
  p.extra = "average_loss: 3";
  std::unique_ptr<SGDSolver> solver = MakeSolver(p);
  Reference ref(p);
  std::vector<double> losses;
  for (int i = 0; i < 5; ++i) losses.push_back(ref.Iterate(i));
  solver->Step(5);
  EXPECT_CLOSE(solver->smoothed_loss(), (losses[2] + losses[3] + losses[4]) / 3);
}

}  // namespace
}  // namespace crema
