// AdamSolver (type "Adam"): Kingma & Ba's Adam, Caffe's rule. Per learnable parameter, after
// SGDSolver's clipping, normalisation and regularisation (sgd.hpp; weight_decay is added to
// the gradient, i.e. L2 regularisation, not AdamW), with lr = rate * lr_mult,
// beta1 = momentum, beta2 = momentum2 (default 0.999), eps = delta, t = iter + 1:
//   m    = beta1 * m + (1 - beta1) * g
//   v    = beta2 * v + (1 - beta2) * g^2
//   step = lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)     (w -= step)
// (the bias correction is folded into the rate, as Caffe does: eps is not corrected).
// History: two blobs per parameter, in Caffe's order: first m of every parameter, then v of
// every parameter (history()[P + i] belongs to parameter i); both are saved in the
// .solverstate, and t comes from the restored iteration, so a resumed run is exact.
#pragma once

#include "solvers/sgd.hpp"

namespace crema {

class AdamSolver : public SGDSolver {
 public:
  explicit AdamSolver(const pb::SolverParameter& param);
  const char* type() const override { return "Adam"; }

 protected:
  void ComputeUpdateValue(int param_id, float rate) override;
  // The Adam step for parameter param_id written into its diff, plus
  // decoupled * w (0 for Adam; AdamW's weight decay).
  void AdamStep(int param_id, float rate, float decoupled);
};

}  // namespace crema
