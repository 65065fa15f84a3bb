#include "solvers/rmsprop.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

RMSPropSolver::RMSPropSolver(const pb::SolverParameter& param) : SGDSolver(param) {
  CREMA_REQUIRE(param_->momentum() == 0,
                "RMSProp solver: momentum cannot be used with RMSProp "
                "(momentum must be 0, got "
                    << param_->momentum() << ")");
  CREMA_REQUIRE(param_->rms_decay() >= 0 && param_->rms_decay() < 1,
                "RMSProp solver: rms_decay must lie in [0, 1), got " << param_->rms_decay());
}

void RMSPropSolver::ComputeUpdateValue(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const float delta = param_->delta();
  const float rho = param_->rms_decay();
  const float local_rate = rate * net_->params_lr()[param_id];
  float* h = history_[param_id]->mutable_cpu_data();
  float* g = param->mutable_cpu_diff();
  parallel_for(param->count(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mean = (1.f - rho) * (gi * gi) + rho * h[i];
      h[i] = mean;
      g[i] = local_rate * (gi / (std::sqrt(mean) + delta));
    }
  });
}

REGISTER_SOLVER_CLASS(RMSProp);

}  // namespace crema
