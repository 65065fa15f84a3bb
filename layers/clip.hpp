// ClipLayer (type "Clip"): clamps every element into [min, max] (clip_param, both required).
//   bottom: x, any shape        top: y, same shape (in place allowed)
//   forward:  y = max(min, min(x, max))
//   backward: dx = dy if min <= x <= max (bounds included, as Caffe), else 0
// In place, the input is copied before it is overwritten (the top alone cannot tell an
// input equal to a bound from one beyond it).
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class ClipLayer : public NeuronLayer {
 public:
  explicit ClipLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Clip"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  float min_ = 0.f, max_ = 0.f;
  Blob bottom_copy_;  // the input, kept only when running in place

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
