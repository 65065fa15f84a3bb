// AdamWSolver (type "AdamW", beyond Caffe): Adam with decoupled weight decay (Loshchilov &
// Hutter). Identical to AdamSolver (adam.hpp: momentum = beta1, momentum2 = beta2,
// delta = eps, Caffe's bias correction folded into the rate, the same two history sets)
// except for the weight decay: weight_decay (lambda) is NOT added to the gradient; instead
// each parameter is shrunk directly,
//   w -= lr * lambda * decay_mult * w          with lr = rate * lr_mult
// in the same update as the Adam step (so lr_mult 0 also freezes the decay, and the decay
// follows the lr_policy schedule, like PyTorch's AdamW with a scheduler). The decay is not
// bias-corrected and does not enter the moments. Only regularization_type "L2" (the
// default) is accepted with a non-zero weight_decay.
#pragma once

#include "solvers/adam.hpp"

namespace crema {

class AdamWSolver : public AdamSolver {
 public:
  explicit AdamWSolver(const pb::SolverParameter& param);
  const char* type() const override { return "AdamW"; }

 protected:
  // No gradient-side decay: it is applied in ComputeUpdateValue.
  void Regularize(int param_id) override {}
  void ComputeUpdateValue(int param_id, float rate) override;
};

}  // namespace crema
