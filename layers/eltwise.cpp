#include "layers/eltwise.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
constexpr int64_t kGrain = 32768;
}

EltwiseLayer::EltwiseLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::EltwiseParameter& p = param.eltwise_param();
  op_ = static_cast<Op>(static_cast<int>(p.operation()));
  coeff_param_.assign(p.coeff().begin(), p.coeff().end());
  stable_prod_grad_ = p.stable_prod_grad();
}

void EltwiseLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(op_ == Op::PROD || op_ == Op::SUM || op_ == Op::MAX,
                "unknown operation " << static_cast<int>(op_));
  LAYER_REQUIRE(coeff_param_.empty() || coeff_param_.size() == bottom.size(),
                "has " << coeff_param_.size() << " coeff values for " << bottom.size()
                       << " bottoms; give one per bottom (or none)");
  LAYER_REQUIRE(!(op_ == Op::PROD && !coeff_param_.empty()),
                "coeff is only allowed with operation SUM");
  coeffs_.assign(bottom.size(), 1.f);
  if (!coeff_param_.empty()) coeffs_ = coeff_param_;
}

void EltwiseLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  for (size_t k = 1; k < bottom.size(); ++k)
    LAYER_REQUIRE(bottom[k]->shape() == bottom[0]->shape(),
                  "all bottoms must have the same shape: bottom 0 has shape "
                      << bottom[0]->shape_string() << ", bottom " << k << " has shape "
                      << bottom[k]->shape_string());
  top[0]->ReshapeLike(*bottom[0]);
  bottom_ptrs_.resize(bottom.size());
  if (op_ == Op::MAX) max_index_.resize(bottom[0]->count());
}

void EltwiseLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const int64_t count = top[0]->count();
  float* y = top[0]->mutable_cpu_data();
  const int num = static_cast<int>(bottom.size());
  // Raw pointers first: cpu_data() must not be called inside the parallel region.
  for (int k = 0; k < num; ++k) bottom_ptrs_[k] = bottom[k]->cpu_data();
  const float* const* x = bottom_ptrs_.data();
  switch (op_) {
    case Op::SUM: {
      const float* c = coeffs_.data();
      parallel_for(count, kGrain, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] = c[0] * x[0][i];
        for (int k = 1; k < num; ++k) {
          const float ck = c[k];
          const float* xk = x[k];
          if (ck == 1.f) {
            for (int64_t i = begin; i < end; ++i) y[i] += xk[i];
          } else {
            for (int64_t i = begin; i < end; ++i) y[i] += ck * xk[i];
          }
        }
      });
      break;
    }
    case Op::PROD:
      parallel_for(count, kGrain, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] = x[0][i] * x[1][i];
        for (int k = 2; k < num; ++k) {
          const float* xk = x[k];
          for (int64_t i = begin; i < end; ++i) y[i] *= xk[i];
        }
      });
      break;
    case Op::MAX: {
      int* idx = max_index_.data();
      parallel_for(count, kGrain, [=](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const bool first = x[0][i] > x[1][i];
          y[i] = first ? x[0][i] : x[1][i];
          idx[i] = first ? 0 : 1;
        }
        for (int k = 2; k < num; ++k) {
          const float* xk = x[k];
          for (int64_t i = begin; i < end; ++i) {  // branch-free, so it vectorises
            const bool greater = xk[i] > y[i];
            y[i] = greater ? xk[i] : y[i];
            idx[i] = greater ? k : idx[i];
          }
        }
      });
      break;
    }
  }
}

void EltwiseLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  const int64_t count = top[0]->count();
  const float* y = top[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  const int num = static_cast<int>(bottom.size());
  for (int k = 0; k < num; ++k) bottom_ptrs_[k] = bottom[k]->cpu_data();
  const float* const* x = bottom_ptrs_.data();
  // Bottom 0 last: in place (top == bottom 0) its gradient overwrites dy, which the others
  // still need (the GPU code keeps the same order).
  for (int step = 0; step < num; ++step) {
    const int k = (step + 1) % num;
    if (!propagate_down[k]) continue;
    float* dx = bottom[k]->mutable_cpu_diff();
    switch (op_) {
      case Op::SUM: {
        const float ck = coeffs_[k];
        if (ck == 1.f)
          cpu_copy(count, dy, dx);
        else
          cpu_scale(count, ck, dy, dx);
        break;
      }
      case Op::PROD: {
        const bool stable = stable_prod_grad_;
        parallel_for(count, kGrain, [=](int64_t begin, int64_t end) {
          if (stable) {
            // (product of the other bottoms, in bottom order) * dy
            const int first = k == 0 ? 1 : 0;
            for (int64_t i = begin; i < end; ++i) dx[i] = x[first][i];
            for (int j = first + 1; j < num; ++j) {
              if (j == k) continue;
              const float* xj = x[j];
              for (int64_t i = begin; i < end; ++i) dx[i] *= xj[i];
            }
            for (int64_t i = begin; i < end; ++i) dx[i] *= dy[i];
          } else {
            const float* xk = x[k];
            for (int64_t i = begin; i < end; ++i) dx[i] = y[i] / xk[i] * dy[i];
          }
        });
        break;
      }
      case Op::MAX: {
        const int* idx = max_index_.data();
        parallel_for(count, kGrain, [=](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) dx[i] = idx[i] == k ? dy[i] : 0.f;
        });
        break;
      }
    }
  }
}

REGISTER_LAYER_CLASS(Eltwise);

}  // namespace crema
