// NesterovSolver (type "Nesterov"): SGD with Nesterov's accelerated momentum, Caffe's rule.
// Per learnable parameter, after SGDSolver's clipping, normalisation and regularisation
// (sgd.hpp), with lr = rate * lr_mult and mu = momentum:
//   h_new = mu * h + lr * g
//   step  = (1 + mu) * h_new - mu * h          (w -= step)
// History: one blob per parameter (h), saved in the .solverstate as for SGD.
#pragma once

#include "solvers/sgd.hpp"

namespace crema {

class NesterovSolver : public SGDSolver {
 public:
  explicit NesterovSolver(const pb::SolverParameter& param) : SGDSolver(param) {}
  const char* type() const override { return "Nesterov"; }

 protected:
  void ComputeUpdateValue(int param_id, float rate) override;
};

}  // namespace crema
