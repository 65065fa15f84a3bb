#include "solvers/sgd.hpp"

#include <cmath>
#include <sstream>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/math_functions.hpp"

namespace crema {

// ---------------------------------------------------------------------------------------
// Learning-rate policies
// ---------------------------------------------------------------------------------------

const std::vector<std::string>& LearningRatePolicies() {
  static const std::vector<std::string> policies = {"fixed",     "step", "exp",    "inv",
                                                    "multistep", "poly", "sigmoid"};
  return policies;
}

namespace {

std::string PolicyList() {
  std::ostringstream out;
  const std::vector<std::string>& policies = LearningRatePolicies();
  for (size_t i = 0; i < policies.size(); ++i) out << (i ? ", " : "") << policies[i];
  return out.str();
}

[[noreturn]] void ThrowUnknownPolicy(const std::string& policy) {
  CREMA_THROW("Unknown learning rate policy: '" << policy << "' (lr_policy must be one of "
                                                << PolicyList() << ")");
}

}  // namespace

void CheckLearningRatePolicy(const pb::SolverParameter& param) {
  const std::string& policy = param.lr_policy();
  bool known = false;
  for (const std::string& name : LearningRatePolicies()) known = known || name == policy;
  if (!known) ThrowUnknownPolicy(policy);
  if (policy == "step" || policy == "sigmoid") {
    CREMA_REQUIRE(param.stepsize() > 0, "lr_policy '" << policy
                                                      << "' needs a positive stepsize, got "
                                                      << param.stepsize());
  }
  if (policy != "fixed" && policy != "poly") {
    CREMA_REQUIRE(param.gamma() >= 0,
                  "lr_policy '" << policy << "' needs a non-negative gamma, got " << param.gamma());
  }
  if (policy == "poly") {
    CREMA_REQUIRE(param.max_iter() > 0,
                  "lr_policy 'poly' needs a positive max_iter, got " << param.max_iter());
  }
}

float ComputeLearningRate(const pb::SolverParameter& param, int iter, int* current_step) {
  const std::string& policy = param.lr_policy();
  const double base_lr = param.base_lr();
  const double gamma = param.gamma();
  const double power = param.power();
  double rate = 0;
  if (policy == "fixed") {
    rate = base_lr;
  } else if (policy == "step") {
    CREMA_REQUIRE(param.stepsize() > 0,
                  "lr_policy 'step' needs a positive stepsize, got " << param.stepsize());
    *current_step = iter / param.stepsize();
    rate = base_lr * std::pow(gamma, *current_step);
  } else if (policy == "exp") {
    rate = base_lr * std::pow(gamma, iter);
  } else if (policy == "inv") {
    rate = base_lr * std::pow(1.0 + gamma * iter, -power);
  } else if (policy == "multistep") {
    if (*current_step < param.stepvalue_size() && iter >= param.stepvalue(*current_step)) {
      ++*current_step;
      LOG(INFO) << "MultiStep Status: Iteration " << iter << ", step = " << *current_step;
    }
    rate = base_lr * std::pow(gamma, *current_step);
  } else if (policy == "poly") {
    rate = base_lr * std::pow(1.0 - static_cast<double>(iter) / param.max_iter(), power);
  } else if (policy == "sigmoid") {
    CREMA_REQUIRE(param.stepsize() > 0,
                  "lr_policy 'sigmoid' needs a positive stepsize, got " << param.stepsize());
    rate = base_lr / (1.0 + std::exp(-gamma * (static_cast<double>(iter) - param.stepsize())));
  } else {
    ThrowUnknownPolicy(policy);
  }
  return static_cast<float>(rate);
}

// ---------------------------------------------------------------------------------------
// SGDSolver
// ---------------------------------------------------------------------------------------

SGDSolver::SGDSolver(const pb::SolverParameter& param) : Solver(param) {
  CheckLearningRatePolicy(*param_);
  if (param_->weight_decay() != 0) {
    const std::string& reg = param_->regularization_type();
    CREMA_REQUIRE(reg == "L2" || reg == "L1", "Unknown regularization type: '"
                                                  << reg << "' (regularization_type must be "
                                                  << "L2 or L1)");
  }
  AllocateLikeParams(&history_);
}

void SGDSolver::AllocateLikeParams(std::vector<std::shared_ptr<Blob>>* blobs) const {
  for (const Blob* param : net_->learnable_params()) {
    auto blob = std::make_shared<Blob>(param->shape());
    cpu_set(static_cast<size_t>(blob->count()), 0.f, blob->mutable_cpu_data());
    blobs->push_back(std::move(blob));
  }
}

float SGDSolver::GetLearningRate() {
  return ComputeLearningRate(*param_, iter_, &current_step_);
}

void SGDSolver::ApplyUpdate() {
  const float rate = GetLearningRate();
  if (param_->display() > 0 && iter_ % param_->display() == 0) {
    LOG_IF(INFO, Context::root_solver()) << "Iteration " << iter_ << ", lr = " << rate;
  }
  ClipGradients();
  const int num_params = static_cast<int>(net_->learnable_params().size());
#ifdef CREMA_WITH_CUDA
  // Plain SGD on the GPU: one fused kernel per parameter (solvers/sgd.cu).
  const bool fused_gpu = Context::mode() == Mode::GPU && std::string(type()) == "SGD";
#endif
  for (int id = 0; id < num_params; ++id) {
#ifdef CREMA_WITH_CUDA
    if (fused_gpu) {
      UpdateGpu(id, rate);
      continue;
    }
#endif
    Normalize(id);
    Regularize(id);
    ComputeUpdateValue(id, rate);
  }
  net_->Update();
}

#ifdef CREMA_WITH_CUDA
void SGDSolver::UpdateGpu(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const float decay = param_->weight_decay() * net_->params_weight_decay()[param_id];
  int reg = 0;
  if (decay != 0) {
    const std::string& type = param_->regularization_type();
    if (type == "L2")
      reg = 1;
    else if (type == "L1")
      reg = 2;
    else
      CREMA_THROW("Unknown regularization type: '" << type
                                                   << "' (regularization_type must be L2 or L1)");
  }
  const float norm_scale = param_->iter_size() == 1 ? 1.f : 1.f / param_->iter_size();
  SgdUpdateGpu(param->count(), param->gpu_data(), param->mutable_gpu_diff(),
               history_[param_id]->mutable_gpu_data(), norm_scale, reg, decay, param_->momentum(),
               rate * net_->params_lr()[param_id]);
}
#endif

void SGDSolver::ClipGradients() {
  const float clip = param_->clip_gradients();
  if (clip < 0) return;
  const std::vector<Blob*>& params = net_->learnable_params();
  float sumsq = 0;
  for (const Blob* param : params) sumsq += param->sumsq_diff();
  const float norm = std::sqrt(sumsq);
  if (norm > clip) {
    const float scale = clip / norm;
    LOG(INFO) << "Gradient clipping: scaling down gradients (L2 norm " << norm << " > " << clip
              << ") by scale factor " << scale;
    for (Blob* param : params) param->scale_diff(scale);
  }
}

void SGDSolver::Normalize(int param_id) {
  if (param_->iter_size() == 1) return;
  Blob* param = net_->learnable_params()[param_id];
  cpu_scal(param->count(), 1.f / param_->iter_size(), param->mutable_cpu_diff());
}

void SGDSolver::Regularize(int param_id) {
  const float local_decay = param_->weight_decay() * net_->params_weight_decay()[param_id];
  if (local_decay == 0) return;
  Blob* param = net_->learnable_params()[param_id];
  const int n = param->count();
  const std::string& type = param_->regularization_type();
  if (type == "L2") {
    cpu_axpy(n, local_decay, param->cpu_data(), param->mutable_cpu_diff());
  } else if (type == "L1") {
    const float* w = param->cpu_data();
    float* g = param->mutable_cpu_diff();
    parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float sign = static_cast<float>((0.f < w[i]) - (w[i] < 0.f));
        g[i] += local_decay * sign;
      }
    });
  } else {
    CREMA_THROW("Unknown regularization type: '" << type
                                                 << "' (regularization_type must be L2 or L1)");
  }
}

void SGDSolver::ComputeUpdateValue(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const float momentum = param_->momentum();
  const float local_rate = rate * net_->params_lr()[param_id];
  const int n = param->count();
  float* h = history_[param_id]->mutable_cpu_data();
  float* g = param->mutable_cpu_diff();
  // h = momentum * h + local_rate * g; then the step to subtract is h itself.
  parallel_for(n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float value = local_rate * g[i] + momentum * h[i];
      h[i] = value;
      g[i] = value;
    }
  });
}

void SGDSolver::SnapshotSolverState(const std::string& model_filename) {
  pb::SolverState state;
  state.set_iter(iter_);
  state.set_learned_net(model_filename);
  state.set_current_step(current_step_);
  const MixedPrecision& mixed = *net_->mixed_precision();
  if (mixed.precision == Precision::FP16) state.set_loss_scale(mixed.scaler.scale());
  for (const auto& blob : history_) blob->ToProto(state.add_history());
  const std::string filename = SnapshotFilename(".solverstate");
  LOG(INFO) << "Snapshotting solver state to binary proto file " << filename;
  WriteProtoToBinaryFile(state, filename);
}

void SGDSolver::RestoreSolverState(const pb::SolverState& state, const std::string& state_file) {
  CREMA_REQUIRE(state.history_size() == static_cast<int>(history_.size()),
                "Solver state '" << state_file << "' holds " << state.history_size()
                                 << " history blobs but this " << type() << " solver has "
                                 << history_.size() << " (one per learnable parameter"
                                 << " of the net)");
  LOG(INFO) << type() << "Solver: restoring history";
  for (size_t i = 0; i < history_.size(); ++i) {
    try {
      history_[i]->FromProto(state.history(static_cast<int>(i)), /*reshape=*/false);
    } catch (const Error& e) {
      CREMA_THROW("Solver state '" << state_file << "': history blob #" << i
                                   << " does not fit the net: " << e.what());
    }
  }
}

REGISTER_SOLVER_CLASS(SGD);

}  // namespace crema
