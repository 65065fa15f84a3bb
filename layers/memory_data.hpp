// MemoryDataLayer (type "MemoryData"): serves batches from arrays the caller owns.
//   bottom: none        top: data [batch_size, channels, height, width], label
//   memory_data_param: batch_size, channels, height, width (all required, positive).
//   Reset(data, labels, n) points the layer at n items (data [n, C, H, W], n labels); n must
//   be a positive multiple of batch_size. Forward serves items [pos, pos + batch_size) and
//   advances pos by batch_size, back to 0 after the last batch. The tops alias the caller's
//   arrays (no copy): they must stay alive and unchanged while the net uses them. No
//   transformation is applied (as in Caffe; a transform_param is ignored with a warning).
//   label top: [batch_size] after setup, [batch_size, 1, 1, 1] after a forward (Caffe's shapes).
//   backward: nothing
#pragma once

#include <cstdint>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

class MemoryDataLayer : public Layer {
 public:
  explicit MemoryDataLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "MemoryData"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int ExactNumTopBlobs() const override { return 2; }

  // Throws crema::Error (naming the layer) for null arrays or n not a positive multiple of
  // batch_size.
  void Reset(float* data, float* labels, int n);
  // The next forward serves batch number `index` of the current arrays (modulo their size).
  void SeekBatch(int64_t index) override;

  int batch_size() const { return batch_size_; }
  int channels() const { return channels_; }
  int height() const { return height_; }
  int width() const { return width_; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  int batch_size_ = 0, channels_ = 0, height_ = 0, width_ = 0;
  int64_t item_size_ = 0;  // channels * height * width
  float* data_ = nullptr;
  float* labels_ = nullptr;
  int n_ = 0;
  int pos_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code (the tops point at the user's host arrays); the tops move to the
  // device when a GPU layer first reads them (SyncedMemory copies lazily), so no GPU kernel is
  // needed.
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
