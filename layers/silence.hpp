// SilenceLayer (type "Silence"): consumes blobs so they are not net outputs.
//   bottom: any number (>= 1) of blobs, any shapes    top: none
//   forward: nothing          backward: dbottom[i] = 0 for every bottom asked for
#pragma once

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class SilenceLayer : public Layer {
 public:
  explicit SilenceLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "Silence"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int MinBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 0; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override {}
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
