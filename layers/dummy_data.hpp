// DummyDataLayer (type "DummyData"): tops filled by fillers, for tests and benchmarks.
//   bottom: none        top: one or more blobs
//   shapes: dummy_data_param.shape (once, or once per top), or the legacy num / channels /
//           height / width (each once, or once per top); not both kinds.
//   data_filler: none (constant 0), one for every top, or one per top.
//   forward: tops whose filler is "constant" are filled once at setup and never again;
//            the others are refilled (from the thread RNG) at every forward, and hold
//            unspecified values between setup and the first forward (as in Caffe).
//   backward: nothing
#pragma once

#include <memory>
#include <vector>

#include "crema/filler.hpp"
#include "crema/layer.hpp"

namespace crema {

class DummyDataLayer : public Layer {
 public:
  explicit DummyDataLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "DummyData"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int MinTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  // One filler shared by all tops, or one per top.
  std::vector<std::unique_ptr<Filler>> fillers_;
  std::vector<bool> refill_;  // per filler: refill at every forward (non-constant filler)

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code (constant or random fills on the host); the tops move to the device
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
