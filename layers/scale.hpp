// ScaleLayer (type "Scale"): multiplies by a scale broadcast along the axes it does not
// have, optionally adding a bias of the same shape (Caffe's Scale, whose bias Caffe computes
// with an inner Bias layer; crema fuses it into the same pass).
//   bottom[0]: x, any shape
//   bottom[1]: s (optional), shape = x.shape[axis, axis + s.num_axes)
//   top:       y, same shape as x (in place allowed: x is then copied for the backward)
//   Without bottom[1], s is learned, shape x.shape[axis, axis + num_axes) (scale_param: axis
//   1, num_axes 1, -1 = to the last axis; filler default constant 1). A scalar s applies to
//   every element whatever the axis.
//   Viewing x as [outer, dim, inner] with outer = count(0, axis), dim = s.count():
//   forward:  y[o, d, i] = s[d] * x[o, d, i] (+ b[d] with bias_term)
//   backward: dx = s[d] * dy
//             ds[d] = sum over o, i of dy * x    (accumulates into a learned s; overwrites
//                                                 bottom[1]'s diff)
//             db[d] += sum over o, i of dy       (bias_term)
//   params:   [s] or [s, b] (bias_term, bias_filler default constant 0) with one bottom;
//             [] or [b] with two bottoms. This is Caffe's layout, so BatchNorm + Scale
//             weights load from a .caffemodel unchanged.
#pragma once

#include <vector>

#include "crema/layer.hpp"
#include "layers/bias.hpp"

namespace crema {

class ScaleLayer : public Layer {
 public:
  explicit ScaleLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Scale"; }
  int MinBottomBlobs() const override { return 1; }
  int MaxBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int axis_param_ = 1;
  int num_axes_ = 1;
  bool bias_term_ = false;
  int bias_index_ = -1;  // index of the bias in blobs_, -1 without bias_term
  broadcast::Geometry geometry_;
  Blob bottom_copy_;  // x, kept only when running in place

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
