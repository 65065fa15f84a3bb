// BiasLayer (type "Bias"): adds a bias that is broadcast along the axes it does not have.
//   bottom[0]: x, any shape
//   bottom[1]: b (optional), shape = x.shape[axis, axis + b.num_axes)
//   top:       y, same shape as x (in place allowed)
//   Without bottom[1], b is a learned parameter of shape x.shape[axis, axis + num_axes)
//   (bias_param: axis 1, num_axes 1; num_axes -1 = to the last axis; filler default
//   constant 0). A scalar b (0 axes) applies to every element whatever the axis.
//   Viewing x as [outer, dim, inner] with outer = count(0, axis), dim = b.count():
//   forward:  y[o, d, i] = x[o, d, i] + b[d]
//   backward: dx = dy
//             db[d] = sum over o, i of dy[o, d, i]   (accumulates into a learned b, as
//                                                     Caffe; overwrites bottom[1]'s diff)
//   params:   [b] when b is learned, none with two bottoms.
// The broadcast helpers below are shared with ScaleLayer.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

namespace broadcast {

// x seen as [outer, dim, inner] around the axes that a parameter blob p spans.
struct Geometry {
  int axis = 0;
  int outer = 1, dim = 1, inner = 1;
};

// The shape of a learned parameter that spans x's axes [axis, axis + num_axes) (num_axes
// -1: to the end). Throws (with the layer's name) for an axis or num_axes out of range.
std::vector<int> ParamShape(const Layer& layer, const Blob& x, int axis, int num_axes,
                            const char* what);
// Checks that p lines up with x from `axis` on and returns the geometry; `what` names p in
// error messages. A scalar p gives axis 0, outer 1, dim 1, inner = x.count().
Geometry Compute(const Layer& layer, const Blob& x, const Blob& p, int axis, const char* what);

// y[o, d, i] = a[d] * x[o, d, i] + b[d]; a or b may be null (1 and 0 then). y may be x.
// When `copy` is not null, x is also copied there (in the same pass).
void Apply(const Geometry& g, const float* x, const float* a, const float* b, float* y,
           float* copy = nullptr);
// r[d] (+)= sum over o, i of u[o, d, i] * (v ? v[o, d, i] : 1); accumulate chooses += or =.
// With `r_plain` (not null), the same pass also does r_plain[d] += sum over o, i of u.
void Reduce(const Geometry& g, const float* u, const float* v, float* r, bool accumulate,
            float* r_plain = nullptr);

#ifdef CREMA_WITH_CUDA
// The same two on device arrays (bias.cu), with the same formulas and aliasing rules (y may
// be x; copy, a, b, v and r_plain may be null). ReduceGpu runs one block per d.
void ApplyGpu(const Geometry& g, const float* x, const float* a, const float* b, float* y,
              float* copy = nullptr);
void ReduceGpu(const Geometry& g, const float* u, const float* v, float* r, bool accumulate,
               float* r_plain = nullptr);
#endif  // CREMA_WITH_CUDA

}  // namespace broadcast

class BiasLayer : public Layer {
 public:
  explicit BiasLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Bias"; }
  int MinBottomBlobs() const override { return 1; }
  int MaxBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int axis_param_ = 1;
  int num_axes_ = 1;
  broadcast::Geometry geometry_;

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
