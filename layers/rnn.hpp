// RNNLayer (type "RNN"): Caffe's simple (Elman) recurrent layer with a tanh hidden state and
// a tanh output. Bottoms and tops as RecurrentLayer (recurrent.hpp): x [T, N, ...],
// cont [T, N], optional x_static [N, ...], with expose_hidden h_0 [1, N, H] bottom and
// h_T [1, N, H] top.
//   top 0:  o [T, N, H]   (H = recurrent_param.num_output)
//
// Forward, step t:
//   h_t = tanh(W_xh x_t + b_h + W_hh (cont_t * h_{t-1}) (+ W_xh_static x_static))
//   o_t = tanh(W_ho h_t + b_o)
// Backward:
//   do'_t = do_t (1 - o_t^2);   dh_t = W_ho^T do'_t + (from step t+1);
//   dh'_t = dh_t (1 - h_t^2);   dh_{t-1} += cont_t * W_hh^T dh'_t
//
// Parameter blobs (Caffe's order): 0: W_xh [H, D]  1: b_h [H]
//   [2: W_xh_static [H, D_s] with x_static]  then W_hh [H, H], W_ho [H, H], b_o [H]
// Weights use recurrent_param.weight_filler, biases bias_filler.
#pragma once

#include <vector>

#include "layers/recurrent.hpp"

namespace crema {

class RNNLayer : public RecurrentLayer {
 public:
  explicit RNNLayer(const pb::LayerParameter& param) : RecurrentLayer(param, 1) {}
  const char* type() const override { return "RNN"; }
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  int GateWidth() const override { return H_; }
  void SetUpParams() override;
  void ReshapeBuffers() override;
  void AppendBuffers(std::vector<const Blob*>* list) const override {
    list->insert(list->end(), {&h_, &hc_, &do_, &dpre_, &dh_});
  }
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int w_hh_id() const { return static_input_ ? 3 : 2; }
  int w_ho_id() const { return w_hh_id() + 1; }
  int b_o_id() const { return w_hh_id() + 2; }

  Blob h_;     // [T, N, H] hidden states h_t
  Blob hc_;    // [T, N, H] cont_t * h_{t-1}
  Blob do_;    // [T, N, H] gradient w.r.t. the output pre-activation
  Blob dpre_;  // [T, N, H] gradient w.r.t. the hidden pre-activation
  Blob dh_;    // [N, H] running gradient w.r.t. h_{t-1}

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
