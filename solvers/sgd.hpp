// SGDSolver (type "SGD"): stochastic gradient descent with momentum, Caffe's rule.
//
// One update (ApplyUpdate), for the current iteration `iter`:
//   rate = GetLearningRate()                               (the lr_policy, below)
//   ClipGradients: if clip_gradients >= 0 and ||g|| > clip_gradients, where ||g|| is the L2
//                  norm over the diffs of every learnable parameter, every diff *= clip/||g||
//   per learnable parameter w with gradient g (its diff):
//     Normalize:          g /= iter_size
//     Regularize:         L2: g += weight_decay * decay_mult * w
//                         L1: g += weight_decay * decay_mult * sign(w)
//     ComputeUpdateValue: h = momentum * h + rate * lr_mult * g;  g = h
//   Net::Update:          w -= g
// The learning rate lives inside the momentum history h (unlike PyTorch's SGD). The history
// blobs have the shapes of the learnable parameters and are saved in the .solverstate.
//
// Learning-rate policies (Caffe's; base_lr, gamma, power, stepsize, stepvalue, max_iter
// from the SolverParameter):
//   fixed      base_lr
//   step       base_lr * gamma ^ floor(iter / stepsize)
//   exp        base_lr * gamma ^ iter
//   inv        base_lr * (1 + gamma * iter) ^ (-power)
//   multistep  base_lr * gamma ^ current_step, where current_step moves on by one (at most
//              one per call) when iter >= stepvalue[current_step]
//   poly       base_lr * (1 - iter / max_iter) ^ power
//   sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))
//
// Subclasses (Nesterov, AdaGrad, RMSProp, AdaDelta, Adam, ...) override ComputeUpdateValue
// (and, where needed, the other steps); extra per-parameter state goes into history_ (which
// is what snapshots save) or into update_ / temp_ (scratch, not saved), allocated once with
// AllocateLikeParams in their constructors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crema/blob.hpp"
#include "crema/solver.hpp"

namespace crema {

// The policy names GetLearningRate understands.
const std::vector<std::string>& LearningRatePolicies();
// Checks the policy name and the hyper-parameters it uses (crema::Error otherwise, listing
// the known policies for an unknown name).
void CheckLearningRatePolicy(const pb::SolverParameter& param);
// The rate at iteration `iter`, as Caffe's SGDSolver::GetLearningRate computes it; updates
// *current_step for "step" (set to iter / stepsize) and "multistep" (advanced by one when a
// step value is reached). Throws crema::Error for an unknown policy.
float ComputeLearningRate(const pb::SolverParameter& param, int iter, int* current_step);

#ifdef CREMA_WITH_CUDA
// The SGD step of one parameter on the device (solvers/sgd.cu), one fused pass:
//   g *= norm_scale; g += decay * w (reg 1, L2) or decay * sign(w) (reg 2, L1);
//   h = momentum * h + rate * g; g = h.
// reg 0: no regularisation.
void SgdUpdateGpu(int n, const float* w, float* g, float* h, float norm_scale, int reg, float decay,
                  float momentum, float rate);
#endif

class SGDSolver : public Solver {
 public:
  explicit SGDSolver(const pb::SolverParameter& param);
  const char* type() const override { return "SGD"; }

  void ApplyUpdate() override;
  // The rate of the current iteration (advances current_step() as Caffe does).
  float GetLearningRate();
  const std::vector<std::shared_ptr<Blob>>& history() const { return history_; }

 protected:
  virtual void ClipGradients();
  virtual void Normalize(int param_id);
  virtual void Regularize(int param_id);
  virtual void ComputeUpdateValue(int param_id, float rate);

  void SnapshotSolverState(const std::string& model_filename) override;
  void RestoreSolverState(const pb::SolverState& state, const std::string& state_file) override;

#ifdef CREMA_WITH_CUDA
  // GPU mode, plain SGD: Normalize + Regularize + ComputeUpdateValue of one parameter in
  // one kernel (subclasses keep their own steps).
  void UpdateGpu(int param_id, float rate);
#endif

  // Appends one zero-filled blob shaped like each learnable parameter to `blobs`.
  void AllocateLikeParams(std::vector<std::shared_ptr<Blob>>* blobs) const;

  // history_: saved in snapshots (momentum for SGD). update_, temp_: scratch for
  // subclasses, empty unless they allocate them.
  std::vector<std::shared_ptr<Blob>> history_, update_, temp_;
};

}  // namespace crema
