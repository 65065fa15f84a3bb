#include "solvers/adam.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

AdamSolver::AdamSolver(const pb::SolverParameter& param) : SGDSolver(param) {
  // The second moments follow the first moments in history_.
  AllocateLikeParams(&history_);
}

void AdamSolver::AdamStep(int param_id, float rate, float decoupled) {
  Blob* param = net_->learnable_params()[param_id];
  const size_t num_params = net_->learnable_params().size();
  const float local_rate = rate * net_->params_lr()[param_id];
  const float beta1 = param_->momentum();
  const float beta2 = param_->momentum2();
  const float eps = param_->delta();
  const int t = iter_ + 1;
  // Computed in double and rounded once, as Caffe's expression evaluates.
  const float correction = static_cast<float>(std::sqrt(1.0 - std::pow(double{beta2}, t)) /
                                              (1.0 - std::pow(double{beta1}, t)));
  const float step_rate = local_rate * correction;
  float* m = history_[param_id]->mutable_cpu_data();
  float* v = history_[num_params + param_id]->mutable_cpu_data();
  const float* w = param->cpu_data();
  float* g = param->mutable_cpu_diff();
  parallel_for(param->count(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = (1.f - beta1) * gi + beta1 * m[i];
      const float vi = (1.f - beta2) * (gi * gi) + beta2 * v[i];
      m[i] = mi;
      v[i] = vi;
      float step = step_rate * (mi / (std::sqrt(vi) + eps));
      if (decoupled != 0.f) step += decoupled * w[i];
      g[i] = step;
    }
  });
}

void AdamSolver::ComputeUpdateValue(int param_id, float rate) {
  AdamStep(param_id, rate, 0.f);
}

REGISTER_SOLVER_CLASS(Adam);

}  // namespace crema
