// DropoutLayer (type "Dropout").
//   bottom: x, any shape        top: y, same shape (in-place allowed)
//   p = dropout_param.dropout_ratio (0.5), 0 <= p < 1; s = 1 / (1 - p)
//   TRAIN: m_i ~ Bernoulli(1 - p) drawn from the thread RNG each forward,
//          forward  y = x * m * s,   backward dx = dy * m * s
//   TEST:  forward  y = x,           backward dx = dy
// (Caffe's scaling: the expected value of y equals x in both phases, so no rescaling is
// needed at test time.)
#pragma once

#include <cstdint>
#include <vector>

#include "layers/neuron.hpp"

namespace crema {

class DropoutLayer : public NeuronLayer {
 public:
  explicit DropoutLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Dropout"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float ratio_ = 0.5f;
  float scale_ = 2.f;
  std::vector<unsigned int> mask_;  // sized in Reshape

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // TRAIN draws a new mask seed on the host every pass: not replayable.
  bool GraphSafeForward() const override {
    return phase() != Phase::TRAIN;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  uint64_t gpu_seed_ = 0;  // seed of the mask of the last TRAIN forward (GPU mode)
#endif                     // CREMA_WITH_CUDA
};

}  // namespace crema
