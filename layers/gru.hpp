// GRULayer (type "GRU", beyond Caffe): a gated recurrent unit with PyTorch nn.GRU's
// equations and weight layout, so PyTorch weights map 1:1. Bottoms and tops as
// RecurrentLayer (recurrent.hpp): x [T, N, ...], cont [T, N], optional x_static [N, ...],
// with expose_hidden h_0 [1, N, H] bottom and h_T [1, N, H] top. Parameters come from
// recurrent_param: num_output (H), weight_filler, bias_filler.
//   top 0:  h [T, N, H], the hidden state of every step
//
// Forward, step t (sigma = logistic, hc = cont_t * h_{t-1}: cont 0 resets the state to 0):
//   r   = sigma(W_ir x_t + b_ir + W_hr hc + b_hr)
//   z   = sigma(W_iz x_t + b_iz + W_hz hc + b_hz)
//   n   = tanh(W_in x_t + b_in + r * (W_hn hc + b_hn))
//   h_t = (1 - z) * n + z * hc
// With x_static, W_ih_static x_static is added to the x part of all three gates.
// Backward (dh = top diff + the recurrent part from step t+1):
//   dn' = dh (1 - z)(1 - n^2)    dz' = dh (hc - n) z (1 - z)
//   dr' = dn' (W_hn hc + b_hn) r (1 - r)
//   x side: [dr', dz', dn']       h side: [dr', dz', dn' * r]
//   dh_{t-1} = cont_t * (dh z + W_hh^T [h side])
//
// Parameter blobs (rows ordered r, z, n in each [3H, ...] blob):
//   0: W_ih [3H, D]  = PyTorch weight_ih_l0      1: W_hh [3H, H] = weight_hh_l0
//   2: b_ih [3H]     = PyTorch bias_ih_l0        3: b_hh [3H]    = bias_hh_l0
//   [4: W_ih_static [3H, D_s], only with x_static]
// Weights use weight_filler, biases bias_filler.
// The CPU code takes sigma and tanh from src/fast_math.hpp (vectorised, within 2 ulp of
// libm's), so its results may differ from a libm-based GRU in the last bits.
#pragma once

#include <vector>

#include "layers/recurrent.hpp"

namespace crema {

class GRULayer : public RecurrentLayer {
 public:
  explicit GRULayer(const pb::LayerParameter& param) : RecurrentLayer(param, 1) {}
  const char* type() const override { return "GRU"; }
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  int GateWidth() const override { return 3 * H_; }
  void SetUpParams() override;
  void ReshapeBuffers() override;
  void AppendBuffers(std::vector<const Blob*>* list) const override {
    list->insert(list->end(), {&act_, &gh_, &hc_, &dgx_, &dgh_, &dh_});
  }
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob act_;  // [T, N, 3H] x-side pre-activations, then the activations r, z, n
  Blob gh_;   // [T, N, 3H] W_hh hc + b_hh
  Blob hc_;   // [T, N, H] cont_t * h_{t-1}
  Blob dgx_;  // [T, N, 3H] gradients w.r.t. the x-side gate inputs
  Blob dgh_;  // [T, N, 3H] gradients w.r.t. the h-side gate inputs
  Blob dh_;   // [N, H] running gradient w.r.t. h_{t-1}

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // Whether this pass runs the whole sequence in one kernel per direction (gru.cu).
  bool UseSequenceKernels() const;
  // The backward recurrence as per-step product + kernel launches.
  void BackwardSteps_gpu(const float* act, const float* gh, const float* hc, const float* dtop,
                         const float* cont, const float* w_hh, float* dgx, float* dgh, float* dh);
  // After the recurrence: dW_hh, db_hh and the x-side gradients.
  void ParamAndInputGradients_gpu(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                                  const float* dgx, const float* dgh, const float* hc);
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
