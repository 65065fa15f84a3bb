#include "layers/reduction.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ReductionLayer::ReductionLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::ReductionParameter& p = param.reduction_param();
  op_ = static_cast<Op>(static_cast<int>(p.operation()));
  axis_param_ = p.axis();
  coeff_param_ = p.coeff();
}

void ReductionLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const int axes = x.num_axes();
  // axis == num_axes is allowed for a 0-axis bottom only through the canonical rule.
  LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < std::max(axes, 1),
                "axis " << axis_param_ << " is out of range for bottom shape " << x.shape_string());
  const int axis = axes == 0 ? 0 : x.CanonicalAxisIndex(axis_param_);
  top[0]->Reshape(std::vector<int>(x.shape().begin(), x.shape().begin() + axis));
  num_ = x.count(0, axis);
  dim_ = x.count(axis);
  coeff_ = coeff_param_;
  if (op_ == Op::MEAN) coeff_ /= dim_;
}

void ReductionLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const int D = dim_;
  const Op op = op_;
  const float c = coeff_;
  parallel_for(num_, std::max(1, 32768 / std::max(D, 1)), [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * D;
      float v = 0.f;
      switch (op) {
        case Op::SUM:
        case Op::MEAN: {
          for (int j = 0; j < D; ++j) v += row[j];
          break;
        }
        case Op::ASUM:
          v = cpu_asum(D, row);
          break;
        case Op::SUMSQ:
          v = cpu_dot(D, row, row);
          break;
      }
      y[i] = c == 1.f ? v : v * c;
    }
  });
}

void ReductionLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                  const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* x = bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const int D = dim_;
  const Op op = op_;
  const float c = coeff_;
  parallel_for(num_, std::max(1, 32768 / std::max(D, 1)), [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = dy[i] * c;
      const float* xr = x + i * D;
      float* dr = dx + i * D;
      switch (op) {
        case Op::SUM:
        case Op::MEAN:
          for (int j = 0; j < D; ++j) dr[j] = g;
          break;
        case Op::ASUM:
          for (int j = 0; j < D; ++j) dr[j] = xr[j] > 0.f ? g : (xr[j] < 0.f ? -g : 0.f);
          break;
        case Op::SUMSQ:
          for (int j = 0; j < D; ++j) dr[j] = 2.f * g * xr[j];
          break;
      }
    }
  });
}

REGISTER_LAYER_CLASS(Reduction);

}  // namespace crema
