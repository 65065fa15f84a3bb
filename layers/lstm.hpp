// LSTMLayer (type "LSTM"): Caffe's long short-term memory layer. Bottoms and tops as
// RecurrentLayer (recurrent.hpp): x [T, N, ...], cont [T, N], optional x_static [N, ...],
// with expose_hidden h_0, c_0 [1, N, H] bottoms and h_T, c_T [1, N, H] tops.
//   top 0:  h [T, N, H]   (H = recurrent_param.num_output)
//
// Forward, step t (cont_t = cont[t, n] per stream; sigma = logistic):
//   hc_{t-1}             = cont_t * h_{t-1}
//   [i' f' o' g']        = W_xc x_t + b_c + W_hc hc_{t-1} (+ W_xc_static x_static)
//   i = sigma(i')  f = cont_t * sigma(f')  o = sigma(o')  g = tanh(g')
//   c_t = f * c_{t-1} + i * g                   h_t = o * tanh(c_t)
// (gate order i, f, o, g as in Caffe's LSTMUnit; the gate vector is 4H wide.)
//
// Backward (dh_t = top diff + the recurrent part, dc_t from step t+1):
//   dc~ = dc_t + dh_t * o * (1 - tanh(c_t)^2)          dc_{t-1} = dc~ * f
//   di' = dc~ g i (1 - i)   df' = dc~ c_{t-1} f (1 - f)   do' = dh_t tanh(c_t) o (1 - o)
//   dg' = dc~ i (1 - g^2)                                 dh_{t-1} += cont_t * W_hc^T dgates
// (df' uses f including cont_t, exactly as Caffe's LSTMUnit.)
//
// Parameter blobs (Caffe's order and shapes, D = count(2) of x, D_s = count(1) of x_static):
//   0: W_xc [4H, D]   1: b_c [4H]   [2: W_xc_static [4H, D_s] with x_static]   then W_hc [4H, H]
// Weights use recurrent_param.weight_filler, b_c uses bias_filler.
#pragma once

#include <vector>

#include "layers/recurrent.hpp"

namespace crema {

class LSTMLayer : public RecurrentLayer {
 public:
  explicit LSTMLayer(const pb::LayerParameter& param) : RecurrentLayer(param, 2) {}
  const char* type() const override { return "LSTM"; }
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  int GateWidth() const override { return 4 * H_; }
  void SetUpParams() override;
  void ReshapeBuffers() override;
  void AppendBuffers(std::vector<const Blob*>* list) const override {
    list->insert(list->end(), {&gates_, &dgates_, &c_, &tanh_c_, &hc_, &dh_, &dc_});
  }
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int w_hc_id() const { return static_input_ ? 3 : 2; }

  Blob gates_;    // [T, N, 4H] activated gates i, f (times cont), o, g
  Blob dgates_;   // [T, N, 4H] gradients w.r.t. the gate pre-activations
  Blob c_;        // [T + 1, N, H] cell states, slot 0 = c_0
  Blob tanh_c_;   // [T, N, H]
  Blob hc_;       // [T, N, H] cont_t * h_{t-1}, the input of the recurrent GEMM
  Blob dh_, dc_;  // [N, H] running gradients w.r.t. h_{t-1} and c_{t-1}

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
