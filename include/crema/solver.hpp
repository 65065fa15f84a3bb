// Solver: drives the training of a Net from a SolverParameter, with Caffe's semantics.
//
// Construction (Caffe's Solver::Init):
//   - random_seed >= 0: Context::set_random_seed(random_seed) (root solver only) before any
//     net is built, so parameter initialisation is reproducible;
//   - the train net comes from exactly one of net / net_param / train_net / train_net_param
//     (none or several: crema::Error); its NetState is phase TRAIN, then the net's own
//     state, then train_state merged on top (highest precedence);
//   - test nets (root solver only): every test_net_param, then every test_net file, then as
//     many instances of the generic net (net / net_param) as test_iter entries remain;
//     each gets phase TEST, its own state, then test_state(i) merged on top. test_iter
//     must have exactly one entry per test net (at least as many as the explicit test nets
//     when a generic net exists);
//     test nets use the train net's parameters (shared storage, no copies);
//   - the snapshot prefix is probed for write access (crema::Error when the directory is
//     missing or read-only); snapshot_format HDF5 is refused.
//
// One iteration (Step), in order:
//   test (iter % test_interval == 0, and at iter 0 only with test_initialization) ->
//   reseed the thread RNG from (stream 1, iter) -> ClearParamDiffs -> iter_size times
//   ForwardBackward (loss averaged) -> smoothed loss over the last average_loss iterations ->
//   display every `display` iterations -> gradient callbacks (data parallelism) ->
//   ApplyUpdate (the subclass' rule; skipped when an FP16 net's scaled gradients
//   overflowed, see mixed_precision.hpp) -> ++iter ->
//   snapshot every `snapshot` iterations or when the action callback asks -> stop when the
//   action callback asks.
//
// Snapshots: <prefix>_iter_<N>.caffemodel (Net::ToProto, diffs with snapshot_diff) and
// <prefix>_iter_<N>.solverstate (pb::SolverState: iter, learned_net, history, current_step,
// and for FP16 nets the crema-only loss_scale).
// Restore() reads a .solverstate back, reloads the weights from learned_net and positions
// every data layer (train and test) where an uninterrupted run would be, so a resumed run
// reproduces the uninterrupted one bit for bit.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/net.hpp"

namespace crema {

// What a client (the CLI's signal handler) asks the solver to do, polled once per
// iteration and once per test batch.
enum class SolverAction {
  NONE,      // carry on
  STOP,      // stop training (snapshot_after_train decides about the final snapshot)
  SNAPSHOT,  // write a snapshot and carry on
};

using ActionCallback = std::function<SolverAction()>;

class Solver {
 public:
  explicit Solver(const pb::SolverParameter& param);
  virtual ~Solver();
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;

  // The whole training: restore from `resume_file` (a .solverstate) when given, run up to
  // max_iter, snapshot after training, then a final display pass and test.
  virtual void Solve(const std::string& resume_file = "");
  // Runs `iters` iterations (fewer when a STOP is requested).
  void Step(int iters);
  // Reads a .solverstate (crema::Error naming the file when it is unreadable or does not
  // fit the net) and positions the data layers for an exact resume.
  void Restore(const std::string& state_file);
  // Writes <prefix>_iter_<iter>.caffemodel and .solverstate.
  void Snapshot();
  // Runs every test net once (test_iter batches each) and logs the mean outputs.
  void TestAll();

  void SetActionFunction(ActionCallback func) { action_request_function_ = std::move(func); }
  // Data parallelism: maps this solver's request at the end of each iteration to the one
  // all solvers agree on (the root's), so they stop or snapshot at the same iteration.
  void SetActionAgreement(std::function<SolverAction(SolverAction)> agree) {
    action_agreement_ = std::move(agree);
  }
  SolverAction GetRequestedAction();

  const pb::SolverParameter& param() const { return *param_; }
  const std::shared_ptr<Net>& net() const { return net_; }
  const std::vector<std::shared_ptr<Net>>& test_nets() const { return test_nets_; }
  int iter() const { return iter_; }
  int current_step() const { return current_step_; }
  float smoothed_loss() const { return smoothed_loss_; }
  bool requested_early_exit() const { return requested_early_exit_; }
  // For each test net, the (output name, mean value) pairs of its latest test, one per
  // output element, in the order they are logged ("Test net output #i").
  const std::vector<std::vector<std::pair<std::string, float>>>& last_test_scores() const {
    return last_test_scores_;
  }

  // The path a snapshot file of the current iteration gets: <prefix>_iter_<iter><extension>.
  std::string SnapshotFilename(const std::string& extension) const;

  // Hooks for data-parallel training (Caffe's Solver::Callback).
  class Callback {
   public:
    virtual ~Callback() = default;
    virtual void on_start() = 0;            // at the start of each iteration
    virtual void on_gradients_ready() = 0;  // after the forward/backward passes
  };
  void add_callback(Callback* callback) { callbacks_.push_back(callback); }
  void remove_callback(Callback* callback) {
    callbacks_.erase(std::remove(callbacks_.begin(), callbacks_.end(), callback), callbacks_.end());
  }
  const std::vector<Callback*>& callbacks() const { return callbacks_; }

  // The solver's type string ("SGD", ...).
  virtual const char* type() const = 0;
  // Turns the accumulated gradients into an update and applies it (Net::Update). Does not
  // advance iter(): Step does that after the call.
  virtual void ApplyUpdate() = 0;

 protected:
  // Writes the solver-specific state (history) next to the model snapshot.
  virtual void SnapshotSolverState(const std::string& model_filename) = 0;
  // Loads the solver-specific part of `state` read from `state_file` (for error messages).
  virtual void RestoreSolverState(const pb::SolverState& state, const std::string& state_file) = 0;

  // Number of tests run on each test net in iterations [0, iter) of an uninterrupted run.
  int64_t TestsBefore(int iter) const;

  std::unique_ptr<pb::SolverParameter> param_;
  int iter_ = 0;
  int current_step_ = 0;
  std::shared_ptr<Net> net_;
  std::vector<std::shared_ptr<Net>> test_nets_;
  std::vector<Callback*> callbacks_;

 private:
  void InitTrainNet();
  void InitTestNets();
  void CheckSnapshotWritePermissions() const;
  void Test(int test_net_id);
  void UpdateSmoothedLoss(float loss, int start_iter, int average_loss);
  bool ResetOverflowFlag();
  bool GradientsFinite();
  void DisplayTrainOutputs() const;

  std::vector<float> losses_;
  float smoothed_loss_ = 0.f;
  ActionCallback action_request_function_;
  std::function<SolverAction(SolverAction)> action_agreement_;
  bool requested_early_exit_ = false;
  std::chrono::steady_clock::time_point iteration_timer_;
  int iterations_last_ = 0;
  std::vector<std::vector<std::pair<std::string, float>>> last_test_scores_;
};

// ---------------------------------------------------------------------------------------
// Registry: solvers register a creator under their type string from their own .cpp:
//   REGISTER_SOLVER_CLASS(SGD);   // type "SGD" -> new SGDSolver(param)
// ---------------------------------------------------------------------------------------
using SolverCreator = std::function<Solver*(const pb::SolverParameter&)>;

class SolverRegistry {
 public:
  // Registering a type twice is a programming error (CHECK).
  static void Add(const std::string& type, SolverCreator creator);
  // Throws crema::Error listing every registered type when param.type() is unknown.
  static Solver* Create(const pb::SolverParameter& param);
  static bool Has(const std::string& type);
  static std::vector<std::string> TypeList();  // sorted
};

// The caller owns the returned solver.
Solver* CreateSolver(const pb::SolverParameter& param);

struct SolverRegisterer {
  SolverRegisterer(const std::string& type, SolverCreator creator) {
    SolverRegistry::Add(type, std::move(creator));
  }
};

#define REGISTER_SOLVER_CREATOR(type, creator) \
  static ::crema::SolverRegisterer g_crema_solver_registerer_##type(#type, creator)

#define REGISTER_SOLVER_CLASS(type)                                                             \
  REGISTER_SOLVER_CREATOR(type, [](const ::crema::pb::SolverParameter& p) -> ::crema::Solver* { \
    return new type##Solver(p);                                                                 \
  })

}  // namespace crema
