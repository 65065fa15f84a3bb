// EmbedLayer (type "Embed"): a lookup table (one-hot input times a weight matrix).
//   bottom: ids x, any shape, M values, each an integer in [0, input_dim)
//   top:    y [x.shape..., num_output]
//   forward:  y[m, :] = W[x[m], :] (+ b)
//   backward: dW[x[m], :] += dy[m, :]; db += sum_m dy[m, :] (both accumulate). The ids get
//             no gradient (asking for one is an error).
//   params:   weight W [input_dim, num_output]; bias b [num_output] (bias_term, default true)
// An id that is negative, >= input_dim or not an integer is an error naming it. On the GPU
// the ids are checked on the device (no pass waits for the GPU): the first bad one is
// reported at the next forward pass ("in an earlier batch") unless the loss is read back
// anyway (Context::loss_readback), and its row of the top is 0 meanwhile.
#pragma once

#include <memory>
#include <vector>

#include "crema/layer.hpp"

namespace crema {

class DeferredDeviceReport;  // src/cuda_util.hpp (CUDA builds)

class EmbedLayer : public Layer {
 public:
  explicit EmbedLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Embed"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }
  bool AllowForceBackward(int bottom_index) const override { return false; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  void CheckIds(const Blob& ids) const;
  // Throws the error for the bad id `value` at `position`.
  [[noreturn]] void ThrowBadId(int64_t position, float value, bool earlier_batch) const;

  int num_output_ = 0;  // N
  int input_dim_ = 0;   // K
  bool bias_term_ = true;
  int M_ = 0;
  std::vector<int> ids_shape_;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  bool GraphSafeForward() const override {
    return true;
  }
  void GraphLaunched(bool forward) override;

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // GPU mode: M ones; the bias gradient is dy^T * ones (cuBLAS gemv).
  Blob bias_multiplier_;
  // The first bad id of the last forward pass as one 64-bit key, position << 32 | the id's
  // float bits (all ones: none), written on the device; and its trip to the host.
  Blob first_bad_id_;
  std::shared_ptr<DeferredDeviceReport> bad_id_report_;
  void ExamineIds();  // the host-side follow-up of a forward pass
#endif                // CREMA_WITH_CUDA
};

}  // namespace crema
