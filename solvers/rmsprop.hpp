// RMSPropSolver (type "RMSProp"): Tieleman & Hinton's RMSProp, Caffe's rule. Per learnable
// parameter, after SGDSolver's clipping, normalisation and regularisation (sgd.hpp), with
// lr = rate * lr_mult, rho = rms_decay (default 0.99) and delta = SolverParameter.delta:
//   h    = rho * h + (1 - rho) * g^2
//   step = lr * g / (sqrt(h) + delta)          (w -= step)
// momentum must be 0 and rms_decay in [0, 1) (crema::Error otherwise, as Caffe).
// History: one blob per parameter (h, the running mean of squared gradients).
#pragma once

#include "solvers/sgd.hpp"

namespace crema {

class RMSPropSolver : public SGDSolver {
 public:
  explicit RMSPropSolver(const pb::SolverParameter& param);
  const char* type() const override { return "RMSProp"; }

 protected:
  void ComputeUpdateValue(int param_id, float rate) override;
};

}  // namespace crema
