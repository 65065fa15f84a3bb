#include "crema/solver.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "crema.pb.h"
#include "crema/io.hpp"
#ifdef CREMA_WITH_CUDA
#include "crema/gpu_math.hpp"
#endif

namespace crema {
namespace {

// RNG streams (Context::reseed): training iteration `iter` draws from (kTrainStream, iter);
// the test of net `i` run at iteration `iter` draws from (kTestStreamBase + i, iter).
constexpr uint64_t kTrainStream = 1;
constexpr uint64_t kTestStreamBase = 0x7e570000ull;

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------

Solver::Solver(const pb::SolverParameter& param) : param_(new pb::SolverParameter(param)) {
  LOG_IF(INFO, Context::root_solver()) << "Initializing solver from parameters: " << std::endl
                                       << param_->DebugString();
  CREMA_REQUIRE(param_->average_loss() >= 1,
                "Solver: average_loss must be at least 1, got " << param_->average_loss());
  CREMA_REQUIRE(param_->iter_size() >= 1,
                "Solver: iter_size must be at least 1, got " << param_->iter_size());
  CREMA_REQUIRE(param_->snapshot() >= 0,
                "Solver: snapshot must not be negative, got " << param_->snapshot());
  CREMA_REQUIRE(param_->snapshot_format() != pb::SolverParameter::HDF5,
                "Solver: HDF5 snapshots are not supported yet; use BINARYPROTO "
                "(snapshot_format: BINARYPROTO)");
  CheckSnapshotWritePermissions();
  // The seed is process-wide (data layers derive their streams from it). With data
  // parallelism the root solver sets it; the others' initial weights are replaced by the
  // root's anyway, and their per-iteration randomness differs by rank (see Step).
  if (param_->random_seed() >= 0 && Context::root_solver()) {
    Context::set_random_seed(param_->random_seed());
  }
  InitTrainNet();
  // Only the root solver tests (and snapshots) in data-parallel training.
  if (Context::root_solver()) InitTestNets();
  LOG_IF(INFO, Context::root_solver()) << "Solver scaffolding done.";
  iter_ = 0;
  current_step_ = 0;
}

Solver::~Solver() = default;

void Solver::InitTrainNet() {
  const pb::SolverParameter& p = *param_;
  std::vector<std::string> given;
  if (p.has_net()) given.push_back("net");
  if (p.has_net_param()) given.push_back("net_param");
  if (p.has_train_net()) given.push_back("train_net");
  if (p.has_train_net_param()) given.push_back("train_net_param");
  const char* fields = "net, net_param, train_net, train_net_param";
  CREMA_REQUIRE(!given.empty(),
                "SolverParameter must specify a train net using one of these fields: " << fields);
  if (given.size() > 1) {
    std::ostringstream found;
    for (size_t i = 0; i < given.size(); ++i) found << (i ? ", " : "") << given[i];
    CREMA_THROW(
        "SolverParameter must not contain more than one of these fields specifying a "
        "train net: "
        << fields << " (found " << found.str() << ")");
  }

  pb::NetParameter net_param;
  if (p.has_train_net_param()) {
    LOG_IF(INFO, Context::root_solver()) << "Creating training net specified in train_net_param.";
    net_param.CopyFrom(p.train_net_param());
  } else if (p.has_train_net()) {
    LOG_IF(INFO, Context::root_solver())
        << "Creating training net from train_net file: " << p.train_net();
    ReadNetParamsFromTextFile(p.train_net(), &net_param);
  } else if (p.has_net_param()) {
    LOG_IF(INFO, Context::root_solver()) << "Creating training net specified in net_param.";
    net_param.CopyFrom(p.net_param());
  } else {
    LOG_IF(INFO, Context::root_solver()) << "Creating training net from net file: " << p.net();
    ReadNetParamsFromTextFile(p.net(), &net_param);
  }
  // Precedence, lowest first: the solver's phase, the net's own state, train_state.
  pb::NetState state;
  state.set_phase(pb::TRAIN);
  state.MergeFrom(net_param.state());
  state.MergeFrom(p.train_state());
  *net_param.mutable_state() = state;
  net_ = std::make_shared<Net>(net_param);
  for (const std::string& weights : p.weights()) {
    LOG(INFO) << "Finetuning from " << weights;
    net_->CopyTrainedLayersFrom(weights);
  }
}

void Solver::InitTestNets() {
  const pb::SolverParameter& p = *param_;
  const bool has_generic_net = p.has_net() || p.has_net_param();
  const int num_test_net_params = p.test_net_param_size();
  const int num_test_net_files = p.test_net_size();
  const int num_explicit = num_test_net_params + num_test_net_files;
  if (has_generic_net) {
    CREMA_REQUIRE(p.test_iter_size() >= num_explicit,
                  "Solver: test_iter must be specified for each test net: "
                      << num_explicit << " test nets (test_net/test_net_param) but "
                      << p.test_iter_size() << " test_iter values");
  } else {
    CREMA_REQUIRE(p.test_iter_size() == num_explicit,
                  "Solver: test_iter must be specified once for each test net: "
                      << num_explicit << " test nets (test_net/test_net_param) but "
                      << p.test_iter_size() << " test_iter values");
  }
  // With a generic net, every test_iter beyond the explicit test nets adds one more
  // instance of the generic net in the TEST phase.
  const int num_instances = has_generic_net ? p.test_iter_size() : num_explicit;
  if (p.test_state_size() > 0) {
    CREMA_REQUIRE(p.test_state_size() == num_instances,
                  "Solver: test_state must be unspecified or specified once per test net: "
                      << num_instances << " test nets but " << p.test_state_size()
                      << " test_state values");
  }
  if (num_instances > 0) {
    CREMA_REQUIRE(p.test_interval() > 0,
                  "Solver: test_interval must be positive when there are test nets ("
                      << num_instances << " test nets, test_interval " << p.test_interval() << ")");
  }
  for (int i = 0; i < p.test_iter_size(); ++i) {
    CREMA_REQUIRE(p.test_iter(i) >= 0, "Solver: test_iter must not be negative, got "
                                           << p.test_iter(i) << " for test net #" << i);
  }

  std::vector<std::string> sources(num_instances);
  std::vector<pb::NetParameter> net_params(num_instances);
  int id = 0;
  for (int i = 0; i < num_test_net_params; ++i, ++id) {
    sources[id] = "test_net_param";
    net_params[id].CopyFrom(p.test_net_param(i));
  }
  for (int i = 0; i < num_test_net_files; ++i, ++id) {
    sources[id] = "test_net file: " + p.test_net(i);
    ReadNetParamsFromTextFile(p.test_net(i), &net_params[id]);
  }
  if (has_generic_net) {
    pb::NetParameter generic;
    std::string source;
    if (p.has_net_param()) {
      generic.CopyFrom(p.net_param());
      source = "net_param";
    } else {
      ReadNetParamsFromTextFile(p.net(), &generic);
      source = "net file: " + p.net();
    }
    for (; id < num_instances; ++id) {
      sources[id] = source;
      net_params[id].CopyFrom(generic);
    }
  }

  test_nets_.resize(num_instances);
  last_test_scores_.assign(num_instances, {});
  for (int i = 0; i < num_instances; ++i) {
    // Precedence, lowest first: the solver's phase, the net's own state, test_state(i).
    pb::NetState state;
    state.set_phase(pb::TEST);
    state.MergeFrom(net_params[i].state());
    if (p.test_state_size() > 0) state.MergeFrom(p.test_state(i));
    *net_params[i].mutable_state() = state;
    LOG_IF(INFO, Context::root_solver())
        << "Creating test net (#" << i << ") specified by " << sources[i];
    test_nets_[i] = std::make_shared<Net>(net_params[i]);
    test_nets_[i]->set_debug_info(p.debug_info());
    for (const std::string& weights : p.weights()) {
      LOG(INFO) << "Finetuning from " << weights;
      test_nets_[i]->CopyTrainedLayersFrom(weights);
    }
    test_nets_[i]->ShareTrainedLayersWith(*net_);
  }
}

std::string Solver::SnapshotFilename(const std::string& extension) const {
  return param_->snapshot_prefix() + "_iter_" + std::to_string(iter_) + extension;
}

void Solver::CheckSnapshotWritePermissions() const {
  if (!Context::root_solver()) return;
  const pb::SolverParameter& p = *param_;
  if (p.snapshot() > 0) {
    CREMA_REQUIRE(p.has_snapshot_prefix(), "Solver: snapshot is set (every "
                                               << p.snapshot()
                                               << " iterations) but snapshot_prefix is not");
  }
  // Caffe probes only with periodic snapshots; the final snapshot after training would fail
  // just as late, so it is probed too when a prefix is given.
  if (p.snapshot() > 0 || (p.snapshot_after_train() && p.has_snapshot_prefix())) {
    const std::string probe = SnapshotFilename(".tempfile." + std::to_string(::getpid()));
    std::ofstream out(probe.c_str());
    const bool ok = out.good();
    out.close();
    if (ok) {
      std::remove(probe.c_str());
    } else {
      CREMA_THROW("Cannot write to snapshot prefix '"
                  << p.snapshot_prefix()
                  << "'. Make sure that the directory exists and is writable.");
    }
  }
}

// ---------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------

SolverAction Solver::GetRequestedAction() {
  return action_request_function_ ? action_request_function_() : SolverAction::NONE;
}

void Solver::UpdateSmoothedLoss(float loss, int start_iter, int average_loss) {
  if (static_cast<int>(losses_.size()) < average_loss) {
    losses_.push_back(loss);
    const int size = static_cast<int>(losses_.size());
    smoothed_loss_ = (smoothed_loss_ * (size - 1) + loss) / size;
  } else {
    const int slot = (iter_ - start_iter) % average_loss;
    smoothed_loss_ += (loss - losses_[slot]) / average_loss;
    losses_[slot] = loss;
  }
}

void Solver::DisplayTrainOutputs() const {
  const std::vector<Blob*>& outputs = net_->output_blobs();
  int score_index = 0;
  for (size_t j = 0; j < outputs.size(); ++j) {
    const int blob_index = net_->output_blob_indices()[j];
    const std::string& name = net_->blob_names()[blob_index];
    const float weight = net_->blob_loss_weights()[blob_index];
    const float* values = outputs[j]->cpu_data();
    for (int k = 0; k < outputs[j]->count(); ++k) {
      std::ostringstream suffix;
      if (weight != 0) suffix << " (* " << weight << " = " << weight * values[k] << " loss)";
      LOG_IF(INFO, Context::root_solver()) << "    Train net output #" << score_index++ << ": "
                                           << name << " = " << values[k] << suffix.str();
    }
  }
}

// FP16 nets on the GPU: the overflow flag is cleared before the passes; returns whether
// this net scales its gradients at all.
bool Solver::ResetOverflowFlag() {
  MixedPrecision* mixed = net_->mixed_precision();
  if (Context::mode() != Mode::GPU || mixed->precision != Precision::FP16) return false;
#ifdef CREMA_WITH_CUDA
  gpu_set(1, 0.f, mixed->overflow.mutable_gpu_data());  // queued: no wait for the device
#endif
  return true;
}

// After the passes (and the gradient exchange of data parallelism, which sums the flag):
// tells the loss scaler whether a scaled gradient overflowed; false means skip the update.
bool Solver::GradientsFinite() {
  MixedPrecision* mixed = net_->mixed_precision();
  const bool overflow = mixed->overflow.cpu_data()[0] != 0.f;
  const bool apply = mixed->scaler.Update(overflow);
  if (!apply)
    LOG_IF(WARNING, Context::root_solver())
        << "Iteration " << iter_ << ": FP16 gradients overflowed; update skipped, loss scale "
        << "now " << mixed->scaler.scale();
  return apply;
}

void Solver::Step(int iters) {
  const pb::SolverParameter& p = *param_;
  const int start_iter = iter_;
  const int stop_iter = iter_ + iters;
  const int average_loss = p.average_loss();
  losses_.clear();
  smoothed_loss_ = 0;
  iteration_timer_ = std::chrono::steady_clock::now();
  iterations_last_ = iter_;

  while (iter_ < stop_iter) {
    if (p.test_interval() > 0 && iter_ % p.test_interval() == 0 &&
        (iter_ > 0 || p.test_initialization())) {
      if (Context::root_solver()) TestAll();
      if (requested_early_exit_) break;  // a STOP arrived while testing
    }
    for (Callback* callback : callbacks_) callback->on_start();

    const bool display = p.display() > 0 && iter_ % p.display() == 0;
    net_->set_debug_info(display && p.debug_info());
    // Everything random in this iteration (data fillers, dropout masks) depends on the
    // iteration number only, so a resumed run draws exactly what an uninterrupted one does.
    // With several solvers (data parallelism) each rank draws its own numbers.
    Context::reseed(kTrainStream, static_cast<uint64_t>(iter_) * Context::solver_count() +
                                      Context::solver_rank());
    net_->ClearParamDiffs();
    const bool loss_scaling = ResetOverflowFlag();
    // On the GPU the loss is read back (a wait for the device) only when it is shown or
    // averaged; other iterations queue their work without synchronising.
    const bool read_loss = Context::mode() == Mode::CPU || display || average_loss > 1;
    Context::set_loss_readback(read_loss);
    float loss = 0;
    for (int i = 0; i < p.iter_size(); ++i) loss += net_->ForwardBackward();
    Context::set_loss_readback(true);
    loss /= p.iter_size();
    if (read_loss) UpdateSmoothedLoss(loss, start_iter, average_loss);

    if (display) {
      const double lapse = SecondsSince(iteration_timer_);
      const float lapse_f = static_cast<float>(lapse);
      const float per_s = (iter_ - iterations_last_) / (lapse_f != 0 ? lapse_f : 1.f);
      LOG_IF(INFO, Context::root_solver())
          << "Iteration " << iter_ << " (" << per_s << " iter/s, " << lapse_f << "s/" << p.display()
          << " iters), loss = " << smoothed_loss_;
      iteration_timer_ = std::chrono::steady_clock::now();
      iterations_last_ = iter_;
      DisplayTrainOutputs();
    }
    for (Callback* callback : callbacks_) callback->on_gradients_ready();

    if (!loss_scaling || GradientsFinite()) ApplyUpdate();
    // iter_ counts the updates applied so far.
    ++iter_;

    // With data parallelism every solver must act alike: the root's request is shared.
    SolverAction request = GetRequestedAction();
    if (action_agreement_) request = action_agreement_(request);
    if (Context::root_solver() &&
        ((p.snapshot() > 0 && iter_ % p.snapshot() == 0) || request == SolverAction::SNAPSHOT)) {
      Snapshot();
    }
    if (request == SolverAction::STOP) {
      requested_early_exit_ = true;
      break;
    }
  }
}

void Solver::Solve(const std::string& resume_file) {
  // With data parallelism every solver runs this on its own thread; only the root logs,
  // snapshots and tests.
  const bool root = Context::root_solver();
  const pb::SolverParameter& p = *param_;
  LOG_IF(INFO, root) << "Solving " << net_->name();
  LOG_IF(INFO, root) << "Learning Rate Policy: " << p.lr_policy();
  requested_early_exit_ = false;

  if (!resume_file.empty()) {
    LOG_IF(INFO, root) << "Restoring previous solver status from " << resume_file;
    Restore(resume_file);
  }

  const int start_iter = iter_;
  Step(p.max_iter() - iter_);
  if (!root) return;
  // The final snapshot, unless the periodic one has just been written.
  if (p.snapshot_after_train() && (p.snapshot() == 0 || iter_ % p.snapshot() != 0)) {
    Snapshot();
  }
  if (requested_early_exit_) {
    LOG(INFO) << "Optimization stopped early.";
    return;
  }
  // One more forward pass of the train net (no update) to display the final loss, and a
  // final test, when the display and test intervals call for them.
  if (p.display() > 0 && iter_ % p.display() == 0) {
    Context::reseed(kTrainStream, static_cast<uint64_t>(iter_));
    float loss = 0;
    net_->Forward(&loss);
    UpdateSmoothedLoss(loss, start_iter, p.average_loss());
    LOG(INFO) << "Iteration " << iter_ << ", loss = " << smoothed_loss_;
  }
  if (p.test_interval() > 0 && iter_ % p.test_interval() == 0) TestAll();
  if (!net_->graph_summary().empty()) LOG(INFO) << "Train net: " << net_->graph_summary();
  LOG(INFO) << "Optimization Done.";
}

// ---------------------------------------------------------------------------------------
// Testing
// ---------------------------------------------------------------------------------------

void Solver::TestAll() {
  for (int id = 0; id < static_cast<int>(test_nets_.size()) && !requested_early_exit_; ++id) {
    Test(id);
  }
}

void Solver::Test(int test_net_id) {
  CHECK(Context::root_solver());
  const pb::SolverParameter& p = *param_;
  LOG(INFO) << "Iteration " << iter_ << ", Testing net (#" << test_net_id << ")";
  Net& test_net = *test_nets_[test_net_id];
  test_net.ShareTrainedLayersWith(*net_);
  Context::reseed(kTestStreamBase + static_cast<uint64_t>(test_net_id),
                  static_cast<uint64_t>(iter_));

  const int test_iter = p.test_iter(test_net_id);
  std::vector<float> scores;
  std::vector<int> score_output;  // which output blob each score comes from
  float loss = 0;
  for (int i = 0; i < test_iter; ++i) {
    // Serve every pending request before the next batch.
    for (SolverAction request = GetRequestedAction(); request != SolverAction::NONE;
         request = GetRequestedAction()) {
      if (request == SolverAction::SNAPSHOT) {
        Snapshot();
      } else if (request == SolverAction::STOP) {
        requested_early_exit_ = true;
      }
    }
    if (requested_early_exit_) break;

    float batch_loss = 0;
    const std::vector<Blob*>& outputs = test_net.Forward(&batch_loss);
    if (p.test_compute_loss()) loss += batch_loss;
    if (i == 0) {
      for (size_t j = 0; j < outputs.size(); ++j) {
        const float* values = outputs[j]->cpu_data();
        for (int k = 0; k < outputs[j]->count(); ++k) {
          scores.push_back(values[k]);
          score_output.push_back(static_cast<int>(j));
        }
      }
    } else {
      size_t index = 0;
      for (size_t j = 0; j < outputs.size(); ++j) {
        const float* values = outputs[j]->cpu_data();
        for (int k = 0; k < outputs[j]->count(); ++k) scores[index++] += values[k];
      }
    }
  }
  if (requested_early_exit_) {
    LOG(INFO) << "Test interrupted.";
    return;
  }
  if (p.test_compute_loss()) {
    loss /= test_iter;
    LOG(INFO) << "Test loss: " << loss;
  }
  std::vector<std::pair<std::string, float>>& results = last_test_scores_[test_net_id];
  results.clear();
  for (size_t i = 0; i < scores.size(); ++i) {
    const int blob_index = test_net.output_blob_indices()[score_output[i]];
    const std::string& name = test_net.blob_names()[blob_index];
    const float weight = test_net.blob_loss_weights()[blob_index];
    const float mean = scores[i] / test_iter;
    std::ostringstream suffix;
    if (weight != 0) suffix << " (* " << weight << " = " << weight * mean << " loss)";
    LOG(INFO) << "    Test net output #" << i << ": " << name << " = " << mean << suffix.str();
    results.emplace_back(name, mean);
  }
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

void Solver::Snapshot() {
  CHECK(Context::root_solver());
  const std::string model_filename = SnapshotFilename(".caffemodel");
  LOG(INFO) << "Snapshotting to binary proto file " << model_filename;
  pb::NetParameter net_param;
  net_->ToProto(&net_param, param_->snapshot_diff());
  WriteProtoToBinaryFile(net_param, model_filename);
  SnapshotSolverState(model_filename);
}

int64_t Solver::TestsBefore(int iter) const {
  const int interval = param_->test_interval();
  if (interval <= 0 || iter <= 0 || test_nets_.empty()) return 0;
  // Multiples of the interval in [0, iter), less iteration 0 without test_initialization.
  int64_t tests = (static_cast<int64_t>(iter) - 1) / interval + 1;
  if (!param_->test_initialization()) --tests;
  return tests;
}

void Solver::Restore(const std::string& state_file) {
  CREMA_REQUIRE(!EndsWith(state_file, ".h5"),
                "Cannot restore from '" << state_file
                                        << "': HDF5 solver states are not supported yet; use "
                                           "a .solverstate written with BINARYPROTO");
  pb::SolverState state;
  ReadProtoFromBinaryFile(state_file, &state);
  CREMA_REQUIRE(state.iter() >= 0,
                "Solver state '" << state_file << "' has a negative iteration: " << state.iter());
  CREMA_REQUIRE(
      state.current_step() >= 0,
      "Solver state '" << state_file << "' has a negative current_step: " << state.current_step());
  if (state.has_learned_net() && !state.learned_net().empty()) {
    // learned_net is stored as it was written (relative to the directory training ran
    // in); when it is not found there, look next to the .solverstate.
    std::string weights = state.learned_net();
    if (!FileExists(weights)) {
      const std::string beside = DirName(state_file) + "/" + BaseName(weights);
      if (FileExists(beside)) weights = beside;
    }
    try {
      pb::NetParameter net_param;
      ReadNetParamsFromBinaryFile(weights, &net_param);
      net_->CopyTrainedLayersFrom(net_param);
    } catch (const Error& e) {
      CREMA_THROW("Cannot restore the weights named by solver state '"
                  << state_file << "' (learned_net: '" << state.learned_net()
                  << "'): " << e.what());
    }
  }
  iter_ = state.iter();
  current_step_ = state.current_step();
  if (state.has_loss_scale()) net_->mixed_precision()->scaler.set_scale(state.loss_scale());
  RestoreSolverState(state, state_file);

  // Put every data source where an uninterrupted run would be at this iteration.
  net_->SeekDataBatches(static_cast<int64_t>(iter_) * param_->iter_size());
  const int64_t tests = TestsBefore(iter_);
  for (size_t i = 0; i < test_nets_.size(); ++i) {
    test_nets_[i]->SeekDataBatches(tests * param_->test_iter(static_cast<int>(i)));
  }
}

// ---------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------

namespace {

std::map<std::string, SolverCreator>& SolverCreators() {
  static std::map<std::string, SolverCreator>* creators =
      new std::map<std::string, SolverCreator>();
  return *creators;
}

}  // namespace

void SolverRegistry::Add(const std::string& type, SolverCreator creator) {
  CHECK_EQ(SolverCreators().count(type), 0u) << "Solver type " << type << " already registered.";
  SolverCreators()[type] = std::move(creator);
}

bool SolverRegistry::Has(const std::string& type) {
  return SolverCreators().count(type) > 0;
}

std::vector<std::string> SolverRegistry::TypeList() {
  std::vector<std::string> types;
  for (const auto& entry : SolverCreators()) types.push_back(entry.first);
  return types;
}

Solver* SolverRegistry::Create(const pb::SolverParameter& param) {
  const auto found = SolverCreators().find(param.type());
  if (found == SolverCreators().end()) {
    std::ostringstream known;
    const std::vector<std::string> types = TypeList();
    for (size_t i = 0; i < types.size(); ++i) known << (i ? ", " : "") << types[i];
    CREMA_THROW("Unknown solver type: '" << param.type() << "' (known types: " << known.str()
                                         << ")");
  }
  return found->second(param);
}

Solver* CreateSolver(const pb::SolverParameter& param) {
  return SolverRegistry::Create(param);
}

}  // namespace crema
