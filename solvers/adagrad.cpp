#include "solvers/adagrad.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

AdaGradSolver::AdaGradSolver(const pb::SolverParameter& param) : SGDSolver(param) {
  CREMA_REQUIRE(param_->momentum() == 0,
                "AdaGrad solver: momentum cannot be used with AdaGrad "
                "(momentum must be 0, got "
                    << param_->momentum() << ")");
}

void AdaGradSolver::ComputeUpdateValue(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const float delta = param_->delta();
  const float local_rate = rate * net_->params_lr()[param_id];
  float* h = history_[param_id]->mutable_cpu_data();
  float* g = param->mutable_cpu_diff();
  parallel_for(param->count(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float acc = h[i] + gi * gi;
      h[i] = acc;
      g[i] = local_rate * (gi / (std::sqrt(acc) + delta));
    }
  });
}

REGISTER_SOLVER_CLASS(AdaGrad);

}  // namespace crema
