// Im2colLayer (type "Im2col"): exposes the im2col rearrangement (see crema/im2col.hpp) as a
// layer, with convolution_param's kernel/stride/pad/dilation/axis settings.
//   bottom: x [N..., C, i_0, ..., i_{d-1}] (N... = the axes before convolution_param.axis)
//   top:    y [N..., C * k_0 * ... * k_{d-1}, o_0, ..., o_{d-1}],
//           o_a = (i_a + 2 pad_a - (dilation_a (k_a - 1) + 1)) / stride_a + 1
//   forward:  y[n] = im2col(x[n])  (row (c, q) holds channel c at kernel offset q)
//   backward: dx[n] = col2im(dy[n])  (the adjoint: sums every column entry back into the
//             image position it came from; overwrites dx)
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class Im2colLayer : public Layer {
 public:
  explicit Im2colLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "Im2col"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  std::vector<int> kernel_, stride_, pad_, dilation_;
  std::vector<int> in_spatial_;
  int channel_axis_ = 1, num_spatial_axes_ = 0;
  bool force_nd_ = false;
  int num_ = 0, channels_ = 0, bottom_dim_ = 0, top_dim_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  struct Geometry;  // the shapes a GPU kernel needs (im2col.cu)

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Geometry GpuGeometry() const;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
