// InputLayer (type "Input"): the net's externally fed blobs (deploy nets).
//   bottom: none        top: one or more blobs
//   input_param.shape: none (tops keep whatever shape the caller gives them), one shape for
//   every top, or one shape per top.
//   forward: nothing (the caller writes the tops)    backward: nothing
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class InputLayer : public Layer {
 public:
  explicit InputLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "Input"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  // Shapes are fixed at setup (or by the caller): nothing to do.
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int MinTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override {}
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code (the tops are filled by the caller); the tops move to the device
  // when a GPU layer first reads them (SyncedMemory copies lazily), so no GPU kernel is needed.
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {
    Backward_cpu(top, propagate_down, bottom);
  }
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
