// ParameterLayer (type "Parameter"): exposes a learnable blob as its top, so other layers
// can consume a parameter as data.
//   no bottoms;  top: y of parameter_param.shape, sharing data and diff with the parameter
//   forward/backward: nothing to compute (y is the parameter; its gradient is the
//   parameter's gradient).
//   params: one blob of parameter_param.shape (zero-initialised, as in Caffe).
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class ParameterLayer : public Layer {
 public:
  explicit ParameterLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Parameter"; }
  int ExactNumBottomBlobs() const override { return 0; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  std::vector<int> shape_;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code: it only re-points the top at the parameter's storage, whose
  // data and diff move to the device when a GPU layer first reads them (SyncedMemory
  // copies lazily), so no GPU kernel is needed.
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
