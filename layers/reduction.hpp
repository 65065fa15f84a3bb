// ReductionLayer (type "Reduction"): reduces all axes from `axis` on to one value.
//   bottom: x [d_0, ..., d_{n-1}];  top: y [d_0, ..., d_{axis-1}] (a scalar for axis 0)
//   With D = d_axis * ... * d_{n-1} values per output and c = coeff (1):
//     SUM:   y = c * sum x          dx = c * dy
//     ASUM:  y = c * sum |x|        dx = c * dy * sign(x)
//     SUMSQ: y = c * sum x^2        dx = 2 c * dy * x
//     MEAN:  y = c / D * sum x      dx = c / D * dy
//   axis may be negative (counted from the end).
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class ReductionLayer : public Layer {
 public:
  enum class Op { SUM = 1, ASUM = 2, SUMSQ = 3, MEAN = 4 };

  explicit ReductionLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Reduction"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Op op_ = Op::SUM;
  int axis_param_ = 0;
  float coeff_param_ = 1.f;
  float coeff_ = 1.f;  // coeff, divided by D for MEAN
  int num_ = 0, dim_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
