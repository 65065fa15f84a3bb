#include "solvers/nesterov.hpp"

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {

void NesterovSolver::ComputeUpdateValue(int param_id, float rate) {
  Blob* param = net_->learnable_params()[param_id];
  const float momentum = param_->momentum();
  const float local_rate = rate * net_->params_lr()[param_id];
  float* h = history_[param_id]->mutable_cpu_data();
  float* g = param->mutable_cpu_diff();
  parallel_for(param->count(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float previous = h[i];
      const float next = local_rate * g[i] + momentum * previous;
      h[i] = next;
      g[i] = (1.f + momentum) * next - momentum * previous;
    }
  });
}

REGISTER_SOLVER_CLASS(Nesterov);

}  // namespace crema
