// MVNLayer (type "MVN"): mean-variance normalisation of each sample (and channel).
//   bottom: x, up to 4 axes, seen as Caffe's legacy [N, C, H, W] (missing axes are 1)
//   top:    y [N, C, H, W] — like Caffe, the top always gets the 4-axis legacy shape
//   Rows: one per (n, c), or one per n with mvn_param.across_channels; D elements each.
//   forward:  mu = mean of the row,  y = x - mu
//             normalize_variance (default true): sigma = sqrt(mean((x - mu)^2)),
//                                                y = (x - mu) / (sigma + eps)
//             (eps default 1e-9, added to sigma, not to the variance, as Caffe)
//   backward: normalize_variance:
//               dx = (dy - mean(dy) - y * mean(dy * y)) / (sigma + eps)   (Caffe's formula)
//             otherwise: dx = dy - mean(dy)
//   In place allowed. Not in place, the backward recomputes y from x (so a later in-place
//   layer that overwrites y does no harm); in place it reads y from the top.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class MVNLayer : public Layer {
 public:
  explicit MVNLayer(const pb::LayerParameter& param);
  const char* type() const override { return "MVN"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool normalize_variance_ = true;
  bool across_channels_ = false;
  float eps_ = 1e-9f;
  int rows_ = 0, dim_ = 0;
  std::vector<float> mean_;     // [rows] mu
  std::vector<float> inv_std_;  // [rows] 1 / (sigma + eps), or 1

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // [4, rows] on the device: the forward's mu and 1 / (sigma + eps) (or 1), then the
  // backward's mean(dy) and mean(dy * y).
  Blob gpu_stats_;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
