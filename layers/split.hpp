// SplitLayer (type "Split"): hands one blob to several consumers (Net inserts it where a
// blob feeds more than one layer).
//   bottom: x, any shape          top[i]: same shape, sharing x's data (no copy)
//   forward:  nothing (top[i] data is x's data)
//   backward: dx = sum_i dtop[i]
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class SplitLayer : public Layer {
 public:
  explicit SplitLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "Split"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int ExactNumBottomBlobs() const override { return 1; }
  int MinTopBlobs() const override { return 1; }

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
