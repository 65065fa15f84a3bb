#include "solvers/adamw.hpp"

#include "crema.pb.h"

namespace crema {

AdamWSolver::AdamWSolver(const pb::SolverParameter& param) : AdamSolver(param) {
  CREMA_REQUIRE(param_->weight_decay() == 0 || param_->regularization_type() == "L2",
                "AdamW solver: the decoupled weight decay is L2 only; regularization_type '"
                    << param_->regularization_type() << "' is not supported");
}

void AdamWSolver::ComputeUpdateValue(int param_id, float rate) {
  const float local_rate = rate * net_->params_lr()[param_id];
  const float decay = param_->weight_decay() * net_->params_weight_decay()[param_id];
  AdamStep(param_id, rate, local_rate * decay);
}

REGISTER_SOLVER_CLASS(AdamW);

}  // namespace crema
