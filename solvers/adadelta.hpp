// AdaDeltaSolver (type "AdaDelta"): Zeiler's AdaDelta, Caffe's rule. Per learnable parameter,
// after SGDSolver's clipping, normalisation and regularisation (sgd.hpp), with
// lr = rate * lr_mult (Caffe keeps the learning rate; use base_lr 1 for the paper's rule),
// rho = momentum and delta = SolverParameter.delta:
//   E[g^2]  = rho * E[g^2]  + (1 - rho) * g^2
//   u       = g * sqrt((E[dx^2] + delta) / (E[g^2] + delta))
//   E[dx^2] = rho * E[dx^2] + (1 - rho) * u^2
//   step    = lr * u                            (w -= step)
// History: two blobs per parameter, in Caffe's order: first E[g^2] of every parameter,
// then E[dx^2] of every parameter (history()[P + i] belongs to parameter i), both saved in
// the .solverstate so a resumed run is exact.
#pragma once

#include "solvers/sgd.hpp"

namespace crema {

class AdaDeltaSolver : public SGDSolver {
 public:
  explicit AdaDeltaSolver(const pb::SolverParameter& param);
  const char* type() const override { return "AdaDelta"; }

 protected:
  void ComputeUpdateValue(int param_id, float rate) override;
};

}  // namespace crema
