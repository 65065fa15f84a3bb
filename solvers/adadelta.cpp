#include "solvers/adadelta.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

AdaDeltaSolver::AdaDeltaSolver(const pb::SolverParameter& param) : SGDSolver(param) {
  // The second history set (squared updates) follows the first (squared gradients).
  AllocateLikeParams(&history_);
}

void AdaDeltaSolver::ComputeUpdateValue(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const size_t num_params = net_->learnable_params().size();
  const float delta = param_->delta();
  const float rho = param_->momentum();
  const float local_rate = rate * net_->params_lr()[param_id];
  float* grad_sq = history_[param_id]->mutable_cpu_data();
  float* update_sq = history_[num_params + param_id]->mutable_cpu_data();
  float* g = param->mutable_cpu_diff();
  parallel_for(param->count(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float eg = (1.f - rho) * (gi * gi) + rho * grad_sq[i];
      grad_sq[i] = eg;
      const float u = gi * std::sqrt((update_sq[i] + delta) / (eg + delta));
      update_sq[i] = (1.f - rho) * (u * u) + rho * update_sq[i];
      g[i] = local_rate * u;
    }
  });
}

REGISTER_SOLVER_CLASS(AdaDelta);

}  // namespace crema
