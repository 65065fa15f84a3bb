// LSTMUnitLayer (type "LSTMUnit"): one step of Caffe's LSTM cell, without weights.
//   bottom 0: c_{t-1} [1, N, H]       previous cell state
//   bottom 1: gates   [1, N, 4H]      pre-activations i', f', o', g' (that order)
//   bottom 2: cont_t  [1, N]          sequence continuation indicators
//   top 0:    c_t     [1, N, H]
//   top 1:    h_t     [1, N, H]
// Forward:  i = sigma(i')  f = cont_t * sigma(f')  o = sigma(o')  g = tanh(g')
//           c_t = f * c_{t-1} + i * g      h_t = o * tanh(c_t)
// Backward: dc~ = dc_t + dh_t o (1 - tanh(c_t)^2)     dc_{t-1} = dc~ f
//           di' = dc~ g i (1 - i)   df' = dc~ c_{t-1} f (1 - f)   do' = dh_t tanh(c_t) o (1 - o)
//           dg' = dc~ i (1 - g^2)
// (f includes cont_t in df', as Caffe computes it.) No gradient w.r.t. cont (an error if
// asked for). No parameters.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class LSTMUnitLayer : public Layer {
 public:
  explicit LSTMUnitLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "LSTMUnit"; }
  int ExactNumBottomBlobs() const override { return 3; }
  int ExactNumTopBlobs() const override { return 2; }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index != 2; }

  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int N_ = 0, H_ = 0;

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
