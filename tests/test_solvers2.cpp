// The adaptive solvers (Nesterov, AdaGrad, RMSProp, AdaDelta, Adam, AdamW) on a small
// least-squares problem: a deterministic data layer defined here feeds an InnerProduct and
// a EuclideanLoss; after k iterations the weights and the solver histories must equal
// those of a plain reference loop written below in double precision (weight decay with
// decay_mult, lr_mult and lr policies included). Also: the hyper-parameter errors Caffe
// raises, the registry, and exact resume (N + N iterations == 2N, bit for bit) for Adam
// and AdaDelta, whose histories hold two blobs per parameter.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
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
#include "tests/test_util.hpp"

namespace crema {

// ---------------------------------------------------------------------------------------
// Solvers2Data: tops x [batch, 3] and t [batch, 2] (shapes from dummy_data_param); batch b
// holds samples (b * batch + r) mod 10 with the values of S2X / S2T. Seekable, so a
// resumed run sees the same batches.
// ---------------------------------------------------------------------------------------
namespace {
constexpr int kCycle2 = 10;
double S2X(int sample, int k) {
  return std::cos(1.3 * sample - 0.7 * k + 0.2);
}
double S2T(int sample, int m) {
  return std::sin(0.9 * sample + 1.4 * m) - 0.3 * m;
}
}  // namespace

class Solvers2DataLayer : public testing::CyclicDataLayer {
 public:
  explicit Solvers2DataLayer(const pb::LayerParameter& param)
      : CyclicDataLayer(param, "Solvers2Data", kCycle2, S2X, S2T) {}
};

REGISTER_LAYER_CLASS(Solvers2Data);

namespace {

constexpr int kK = 3, kM = 2, kBatch = 4;
const double kW0[kM * kK] = {0.2, -0.1, 0.3, -0.25, 0.15, 0.05};
const double kB0[kM] = {0.05, -0.2};

class Solvers2 : public ::testing::Test {
 protected:
  void TearDown() override { Context::set_random_seed(saved_seed_); }
  int64_t saved_seed_ = Context::random_seed();
};

struct Config {
  std::string type;
  double base_lr = 0.05;
  double momentum = 0;  // beta1 / rho
  double momentum2 = 0.999;
  double delta = 1e-8;
  double rms_decay = 0.99;
  double weight_decay = 0;
  double lr_mult_w = 1, lr_mult_b = 2;
  double decay_mult_w = 1, decay_mult_b = 0;
  std::string policy = "lr_policy: 'fixed'";
  std::function<double(int)> rate;  // null: base_lr
  std::string extra;

  std::string NetText() const {
    return testing::LeastSquaresNetText("lsq2", "Solvers2Data", kBatch, kK, kM, /*bias=*/true,
                                        {lr_mult_w, decay_mult_w, lr_mult_b, decay_mult_b});
  }
  pb::SolverParameter Param() const {
    std::ostringstream text;
    text.precision(17);
    text << "net_param { " << NetText() << " } type: '" << type << "' base_lr: " << base_lr << " "
         << policy << " momentum: " << momentum << " momentum2: " << momentum2
         << " delta: " << delta << " rms_decay: " << rms_decay << " weight_decay: " << weight_decay
         << " max_iter: 100 display: 0 snapshot_after_train: false random_seed: 3 " << extra;
    pb::SolverParameter param;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text.str(), &param)) << text.str();
    return param;
  }
};

// The reference: the update rules written out elementwise in double precision.
struct Reference {
  explicit Reference(const Config& config) : c(config) {
    w.assign(kW0, kW0 + kM * kK);
    w.insert(w.end(), kB0, kB0 + kM);
    h1.assign(w.size(), 0.0);
    h2.assign(w.size(), 0.0);
  }
  bool IsBias(size_t i) const { return i >= static_cast<size_t>(kM * kK); }

  void Iterate(int iter) {
    std::vector<double> g(w.size(), 0.0);
    for (int r = 0; r < kBatch; ++r) {
      const int s = static_cast<int>((next_batch * kBatch + r) % kCycle2);
      for (int o = 0; o < kM; ++o) {
        double y = w[kM * kK + o];
        for (int k = 0; k < kK; ++k) y += w[o * kK + k] * S2X(s, k);
        const double d = (y - S2T(s, o)) / kBatch;
        for (int k = 0; k < kK; ++k) g[o * kK + k] += d * S2X(s, k);
        g[kM * kK + o] += d;
      }
    }
    ++next_batch;
    const double rate = c.rate ? c.rate(iter) : c.base_lr;
    const int t = iter + 1;
    for (size_t i = 0; i < w.size(); ++i) {
      const double lr = rate * (IsBias(i) ? c.lr_mult_b : c.lr_mult_w);
      const double decay = c.weight_decay * (IsBias(i) ? c.decay_mult_b : c.decay_mult_w);
      double gi = g[i];
      if (c.type != "AdamW") gi += decay * w[i];
      double step = 0;
      if (c.type == "Nesterov") {
        const double next = c.momentum * h1[i] + lr * gi;
        step = (1 + c.momentum) * next - c.momentum * h1[i];
        h1[i] = next;
      } else if (c.type == "AdaGrad") {
        h1[i] += gi * gi;
        step = lr * gi / (std::sqrt(h1[i]) + c.delta);
      } else if (c.type == "RMSProp") {
        h1[i] = c.rms_decay * h1[i] + (1 - c.rms_decay) * gi * gi;
        step = lr * gi / (std::sqrt(h1[i]) + c.delta);
      } else if (c.type == "AdaDelta") {
        h1[i] = c.momentum * h1[i] + (1 - c.momentum) * gi * gi;
        const double u = gi * std::sqrt((h2[i] + c.delta) / (h1[i] + c.delta));
        h2[i] = c.momentum * h2[i] + (1 - c.momentum) * u * u;
        step = lr * u;
      } else if (c.type == "Adam" || c.type == "AdamW") {
        h1[i] = c.momentum * h1[i] + (1 - c.momentum) * gi;
        h2[i] = c.momentum2 * h2[i] + (1 - c.momentum2) * gi * gi;
        const double correction =
            std::sqrt(1 - std::pow(c.momentum2, t)) / (1 - std::pow(c.momentum, t));
        step = lr * correction * h1[i] / (std::sqrt(h2[i]) + c.delta);
        if (c.type == "AdamW") step += lr * decay * w[i];
      } else {
        ADD_FAILURE() << "no reference for " << c.type;
      }
      w[i] -= step;
    }
  }

  const Config& c;
  std::vector<double> w, h1, h2;
  int64_t next_batch = 0;
};

std::unique_ptr<SGDSolver> MakeSolver(const Config& config) {
  std::unique_ptr<Solver> base(SolverRegistry::Create(config.Param()));
  EXPECT_EQ(std::string(base->type()), config.type);
  std::unique_ptr<SGDSolver> solver(dynamic_cast<SGDSolver*>(base.release()));
  EXPECT_TRUE(solver != nullptr);
  testing::SetInnerProductWeights(solver->net().get(), kW0, kB0);
  return solver;
}

void ExpectNear(const float* actual, const double* expected, int n, double tolerance,
                const std::string& what) {
  for (int i = 0; i < n; ++i)
    EXPECT_NEAR(actual[i], expected[i], tolerance * std::max(1.0, std::fabs(expected[i])))
        << what << "[" << i << "]";
}

// Runs `iters` iterations of crema and of the reference; compares weights and histories.
void Check(const Config& config, int iters, double tolerance = 2e-5) {
  SCOPED_TRACE(config.type);
  std::unique_ptr<SGDSolver> solver = MakeSolver(config);
  Reference ref(config);
  solver->Step(iters);
  for (int i = 0; i < iters; ++i) ref.Iterate(i);
  const Layer& ip = *solver->net()->layer_by_name("ip");
  ExpectNear(ip.blobs()[0]->cpu_data(), ref.w.data(), kM * kK, tolerance, "W");
  ExpectNear(ip.blobs()[1]->cpu_data(), ref.w.data() + kM * kK, kM, tolerance, "b");
  const bool two = config.type == "AdaDelta" || config.type == "Adam" || config.type == "AdamW";
  const auto& history = solver->history();
  ASSERT_EQ(history.size(), two ? 4u : 2u);
  ExpectNear(history[0]->cpu_data(), ref.h1.data(), kM * kK, tolerance, "history 0");
  ExpectNear(history[1]->cpu_data(), ref.h1.data() + kM * kK, kM, tolerance, "history 1");
  if (two) {
    ExpectNear(history[2]->cpu_data(), ref.h2.data(), kM * kK, tolerance, "history 2");
    ExpectNear(history[3]->cpu_data(), ref.h2.data() + kM * kK, kM, tolerance, "history 3");
  }
  // The reference really moved away from the start (the comparison is not vacuous).
  EXPECT_GT(std::fabs(ref.w[0] - kW0[0]), 1e-3);
}

TEST_F(Solvers2, Nesterov) {
  Config c;
  c.type = "Nesterov";
  c.momentum = 0.9;
  Check(c, 6);
  c.weight_decay = 0.05;
  c.decay_mult_b = 1;
  c.policy = "lr_policy: 'step' gamma: 0.5 stepsize: 2";
  c.rate = [](int it) { return 0.05 * std::pow(0.5, it / 2); };
  Check(c, 6);
}

TEST_F(Solvers2, AdaGrad) {
  Config c;
  c.type = "AdaGrad";
  c.base_lr = 0.1;
  Check(c, 6);
  c.weight_decay = 0.02;
  c.delta = 1e-4;
  Check(c, 6);
}

TEST_F(Solvers2, RMSProp) {
  Config c;
  c.type = "RMSProp";
  c.base_lr = 0.01;
  c.rms_decay = 0.9;
  Check(c, 6);
  c.weight_decay = 0.02;
  c.rms_decay = 0.5;
  Check(c, 6);
}

TEST_F(Solvers2, AdaDelta) {
  Config c;
  c.type = "AdaDelta";
  c.base_lr = 1.0;
  c.momentum = 0.95;
  c.delta = 1e-6;
  Check(c, 8);
  c.weight_decay = 0.01;
  c.momentum = 0.5;
  c.delta = 1e-3;
  c.base_lr = 0.5;
  Check(c, 8);
}

TEST_F(Solvers2, Adam) {
  Config c;
  c.type = "Adam";
  c.base_lr = 0.01;
  c.momentum = 0.9;
  Check(c, 8);
  c.momentum2 = 0.99;
  c.weight_decay = 0.05;
  c.delta = 1e-4;
  c.policy = "lr_policy: 'inv' gamma: 0.5 power: 0.75";
  c.rate = [](int it) { return 0.01 * std::pow(1 + 0.5 * it, -0.75); };
  Check(c, 8);
}

TEST_F(Solvers2, AdamW) {
  Config c;
  c.type = "AdamW";
  c.base_lr = 0.01;
  c.momentum = 0.9;
  c.weight_decay = 0.5;  // large enough to matter in a few steps
  c.decay_mult_w = 2;
  c.decay_mult_b = 0;
  Check(c, 8);
  // Without decay AdamW is Adam, bit for bit.
  Config a = c, aw = c;
  a.type = "Adam";
  a.weight_decay = aw.weight_decay = 0;
  std::unique_ptr<SGDSolver> adam = MakeSolver(a), adamw = MakeSolver(aw);
  adam->Step(5);
  adamw->Step(5);
  for (int blob = 0; blob < 2; ++blob) {
    const Blob& x = *adam->net()->layer_by_name("ip")->blobs()[blob];
    const Blob& y = *adamw->net()->layer_by_name("ip")->blobs()[blob];
    EXPECT_EQ(std::memcmp(x.cpu_data(), y.cpu_data(), x.count() * sizeof(float)), 0);
  }
  // With decay, AdamW differs from Adam's L2 (coupled) decay.
  Config coupled = c;
  coupled.type = "Adam";
  std::unique_ptr<SGDSolver> s1 = MakeSolver(c), s2 = MakeSolver(coupled);
  s1->Step(5);
  s2->Step(5);
  EXPECT_GT(std::fabs(s1->net()->layer_by_name("ip")->blobs()[0]->cpu_data()[0] -
                      s2->net()->layer_by_name("ip")->blobs()[0]->cpu_data()[0]),
            1e-5);
}

// ---------------------------------------------------------------------------------------
// Errors and registry
// ---------------------------------------------------------------------------------------

void ExpectCreateError(const Config& config, const std::vector<std::string>& fragments) {
  try {
    std::unique_ptr<Solver> solver(SolverRegistry::Create(config.Param()));
    ADD_FAILURE() << "no error for " << config.type;
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& s : fragments) EXPECT_NE(msg.find(s), std::string::npos) << msg;
  }
}

TEST_F(Solvers2, HyperParameterErrors) {
  Config c;
  c.type = "AdaGrad";
  c.momentum = 0.9;
  ExpectCreateError(c, {"AdaGrad", "momentum"});
  c.type = "RMSProp";
  ExpectCreateError(c, {"RMSProp", "momentum"});
  c.momentum = 0;
  c.rms_decay = 1.0;
  ExpectCreateError(c, {"RMSProp", "rms_decay"});
  c.rms_decay = -0.1;
  ExpectCreateError(c, {"RMSProp", "rms_decay"});
  Config w;
  w.type = "AdamW";
  w.weight_decay = 0.1;
  w.extra = "regularization_type: 'L1'";
  ExpectCreateError(w, {"AdamW", "L1"});
}

TEST_F(Solvers2, Registered) {
  for (const char* type : {"Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam", "AdamW"})
    EXPECT_TRUE(SolverRegistry::Has(type)) << type;
}

// ---------------------------------------------------------------------------------------
// Exact resume
// ---------------------------------------------------------------------------------------

std::vector<float> AllWeightsAndHistory(const SGDSolver& solver) {
  std::vector<float> all;
  for (const Blob* b : solver.net()->learnable_params())
    all.insert(all.end(), b->cpu_data(), b->cpu_data() + b->count());
  for (const auto& b : solver.history())
    all.insert(all.end(), b->cpu_data(), b->cpu_data() + b->count());
  return all;
}

void CheckResume(Config config) {
  SCOPED_TRACE(config.type);
  const testing::TempDir temp("crema_solvers2_");
  const std::string& dir = temp.path();
  config.extra = "snapshot_prefix: '" + dir + "/s'";
  const int N = 4;
  std::unique_ptr<SGDSolver> straight = MakeSolver(config);
  straight->Step(2 * N);
  const std::vector<float> expected = AllWeightsAndHistory(*straight);

  std::unique_ptr<SGDSolver> first = MakeSolver(config);
  first->Step(N);
  first->Snapshot();
  {
    std::unique_ptr<SGDSolver> second = MakeSolver(config);
    second->Restore(dir + "/s_iter_" + std::to_string(N) + ".solverstate");
    EXPECT_EQ(second->iter(), N);
    EXPECT_EQ(second->history().size(), 4u);  // two history blobs per parameter
    second->Step(N);
    const std::vector<float> resumed = AllWeightsAndHistory(*second);
    ASSERT_EQ(resumed.size(), expected.size());
    EXPECT_EQ(std::memcmp(resumed.data(), expected.data(), expected.size() * sizeof(float)), 0)
        << "resumed run differs from the straight one";
  }
}

TEST_F(Solvers2, AdamResumeIsExact) {
  Config c;
  c.type = "Adam";
  c.base_lr = 0.01;
  c.momentum = 0.9;
  c.weight_decay = 0.01;
  CheckResume(c);
}

TEST_F(Solvers2, AdaDeltaResumeIsExact) {
  Config c;
  c.type = "AdaDelta";
  c.base_lr = 1.0;
  c.momentum = 0.95;
  c.delta = 1e-6;
  CheckResume(c);
}

}  // namespace
}  // namespace crema
