// BatchNormLayer (type "BatchNorm"): normalises each channel to zero mean, unit variance
// (Caffe's BatchNorm: no learned scale or shift; follow it with a Scale layer for those).
//   bottom: x [N, C, ...] (or [N]: one channel)     top: y, same shape (in place allowed)
//   Per channel c, over the m = N * S elements of that channel (S = count(2)):
//   TRAIN statistics (use_global_stats false; default: phase != TEST):
//     mean[c] = sum x / m,   var[c] = sum (x - mean)^2 / m
//     running sums, updated every forward (f = moving_average_fraction, default 0.999):
//       factor = factor * f + 1
//       mean_sum[c] = mean[c] + f * mean_sum[c]
//       var_sum[c]  = var[c] * m / (m - 1) + f * var_sum[c]    (m / (m - 1) is 1 when m = 1)
//   global statistics (use_global_stats true; default in TEST):
//     mean[c] = mean_sum[c] / factor,  var[c] = var_sum[c] / factor   (both 0 if factor = 0)
//   forward:  y = (x - mean[c]) / sqrt(var[c] + eps)         (eps default 1e-5)
//   backward, TRAIN statistics (the statistics depend on x):
//     dx = (dy - sum(dy) / m - y * sum(dy * y) / m) / sqrt(var[c] + eps)
//   backward, global statistics: dx = dy / sqrt(var[c] + eps)
//   params:   Caffe's three blobs [mean_sum [C], var_sum [C], factor [1]], all starting at 0.
//             They are statistics, not learned: the layer adds param { lr_mult: 0 } for each
//             to its own LayerParameter (as Caffe does; a non-zero lr_mult is an error) and
//             sets param_propagate_down false for all three.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class BatchNormLayer : public Layer {
 public:
  explicit BatchNormLayer(const pb::LayerParameter& param);
  const char* type() const override { return "BatchNorm"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int ChannelsOf(const Blob& x) const { return x.num_axes() == 1 ? 1 : x.shape(1); }

  bool use_global_stats_ = false;
  float moving_average_fraction_ = 0.999f;
  float eps_ = 1e-5f;
  int channels_ = 0;
  int num_ = 0;                        // N
  int spatial_ = 0;                    // S = elements per (n, c)
  std::vector<float> mean_;            // [C] statistics used by the last forward
  std::vector<float> var_;             // [C] batch variance (TRAIN statistics)
  std::vector<float> inv_std_;         // [C] 1 / sqrt(var + eps)
  std::vector<double> sum_a_, sum_b_;  // [C] backward reductions
  Blob x_norm_;  // y, kept for the TRAIN backward (later in-place layers may overwrite y)

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

 private:
  // [4, C] on the device: the forward's mean and 1 / sqrt(var + eps), then the TRAIN
  // backward's sum(dy) / m and sum(dy * y) / m.
  Blob gpu_stats_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
