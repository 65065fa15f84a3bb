// AbsValLayer (type "AbsVal"): elementwise absolute value.
//   bottom: x, any shape        top: y, same shape (NOT in place: Caffe refuses it too, the
//                               backward needs the sign of x)
//   forward:  y = |x|
//   backward: dx = sign(x) * dy      (sign(0) = 0)
#pragma once

#include "layers/neuron.hpp"

namespace crema {

class AbsValLayer : public NeuronLayer {
 public:
  explicit AbsValLayer(const pb::LayerParameter& param) : NeuronLayer(param) {}
  const char* type() const override { return "AbsVal"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
