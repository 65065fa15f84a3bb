// AdaGradSolver (type "AdaGrad"): Duchi et al.'s adaptive gradient, Caffe's rule. Per
// learnable parameter, after SGDSolver's clipping, normalisation and regularisation
// (sgd.hpp), with lr = rate * lr_mult and delta = SolverParameter.delta:
//   h    = h + g^2
//   step = lr * g / (sqrt(h) + delta)          (w -= step)
// momentum must be 0 (crema::Error otherwise, as Caffe refuses it).
// History: one blob per parameter (h, the running sum of squared gradients).
#pragma once

#include "solvers/sgd.hpp"

namespace crema {

class AdaGradSolver : public SGDSolver {
 public:
  explicit AdaGradSolver(const pb::SolverParameter& param);
  const char* type() const override { return "AdaGrad"; }

 protected:
  void ComputeUpdateValue(int param_id, float rate) override;
};

}  // namespace crema
