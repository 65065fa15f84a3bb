// EltwiseLayer on the GPU (semantics in eltwise.hpp). SUM: one pass for the first two
// bottoms (y = c0 * x0 + c1 * x1), then one pass per further bottom (y += ck * xk); its
// backward is one scaled copy per bottom. These passes move float4s when the count is a
// multiple of 4 and every array is 16-byte aligned (floats otherwise). PROD and MAX: the CPU
// sequence of passes, one kernel or elementwise call per bottom; MAX keeps the winning
// bottom per element in gpu_max_index_ (ints in float slots).
#include <cstdint>

#include "layers/eltwise.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// SUM, first two bottoms: y = c0 * x0 + c1 * x1 over n Vecs. y may be x0 or x1.
template <typename Vec>
__global__ void sum_first_pair(int64_t n, float c0, const Vec* x0, float c1, const Vec* x1,
                               Vec* y) {
  CUDA_KERNEL_LOOP(i, n) {
    Vec a = x0[i], b = x1[i];
    for (int k = 0; k < kLanes<Vec>; ++k) lane(a, k) = c0 * lane(a, k) + c1 * lane(b, k);
    y[i] = a;
  }
}

// SUM, each further bottom: y += c * x over n Vecs.
template <typename Vec>
__global__ void sum_next(int64_t n, float c, const Vec* x, Vec* y) {
  CUDA_KERNEL_LOOP(i, n) {
    Vec a = y[i], b = x[i];
    for (int k = 0; k < kLanes<Vec>; ++k) lane(a, k) += c * lane(b, k);
    y[i] = a;
  }
}

// SUM backward: dx = c * dy over n Vecs. dx may be dy.
template <typename Vec>
__global__ void sum_backward(int64_t n, float c, const Vec* dy, Vec* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    Vec a = dy[i];
    for (int k = 0; k < kLanes<Vec>; ++k) lane(a, k) *= c;
    dx[i] = a;
  }
}

template <typename Vec>
const Vec* as(const float* p) {
  return reinterpret_cast<const Vec*>(p);
}
template <typename Vec>
Vec* as(float* p) {
  return reinterpret_cast<Vec*>(p);
}

// y = sum_k c[k] * x[k] over `count` floats, as count / kLanes Vecs.
template <typename Vec>
void sum_forward(int64_t count, const std::vector<float>& c, const std::vector<const float*>& x,
                 float* y) {
  const int64_t n = count / kLanes<Vec>;
  CUDA_LAUNCH(sum_first_pair<Vec>, n, c[0], as<Vec>(x[0]), c[1], as<Vec>(x[1]), as<Vec>(y));
  for (size_t k = 2; k < x.size(); ++k)
    CUDA_LAUNCH(sum_next<Vec>, n, c[k], as<Vec>(x[k]), as<Vec>(y));
}

__global__ void max_first_pair(int64_t n, const float* a, const float* b, float* y, int* idx) {
  CUDA_KERNEL_LOOP(i, n) {
    const bool first = a[i] > b[i];
    y[i] = first ? a[i] : b[i];
    idx[i] = first ? 0 : 1;
  }
}

__global__ void max_next(int64_t n, const float* x, int k, float* y, int* idx) {
  CUDA_KERNEL_LOOP(i, n) {
    if (x[i] > y[i]) {
      y[i] = x[i];
      idx[i] = k;
    }
  }
}

__global__ void max_backward(int64_t n, const float* dy, const int* idx, int k, float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = idx[i] == k ? dy[i] : 0.f;
  }
}

__global__ void prod_unstable_backward(int64_t n, const float* y, const float* x, const float* dy,
                                       float* dx) {
  CUDA_KERNEL_LOOP(i, n) {
    dx[i] = y[i] / x[i] * dy[i];
  }
}

}  // namespace

void EltwiseLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = top[0]->count();
  float* y = top[0]->mutable_gpu_data();
  const int num = static_cast<int>(bottom.size());
  switch (op_) {
    case Op::SUM: {
      // y may be bottom 0 (in place), as on the CPU.
      std::vector<const float*> x(num);
      bool vec4 = count % 4 == 0 && aligned16(y);
      for (int k = 0; k < num; ++k) {
        x[k] = bottom[k]->gpu_data();
        vec4 = vec4 && aligned16(x[k]);
      }
      if (vec4)
        sum_forward<float4>(count, coeffs_, x, y);
      else
        sum_forward<float>(count, coeffs_, x, y);
      break;
    }
    case Op::PROD:
      gpu_mul(count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), y);
      for (int k = 2; k < num; ++k) gpu_mul(count, y, bottom[k]->gpu_data(), y);
      break;
    case Op::MAX: {
      gpu_max_index_.ReshapeLike(*top[0]);
      int* idx = reinterpret_cast<int*>(gpu_max_index_.mutable_gpu_data());
      CUDA_LAUNCH(max_first_pair, count, bottom[0]->gpu_data(), bottom[1]->gpu_data(), y, idx);
      for (int k = 2; k < num; ++k) CUDA_LAUNCH(max_next, count, bottom[k]->gpu_data(), k, y, idx);
      break;
    }
  }
}

void EltwiseLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  const int count = top[0]->count();
  const float* dy = top[0]->gpu_diff();
  const int num = static_cast<int>(bottom.size());
  // In place (top is bottom 0), bottom 0's gradient overwrites dy: it comes last.
  const bool in_place = top[0] == bottom[0];
  for (int step = 0; step < num; ++step) {
    const int k = in_place ? (step + 1) % num : step;
    if (!propagate_down[k]) continue;
    float* dx = bottom[k]->mutable_gpu_diff();
    switch (op_) {
      case Op::SUM:
        if (coeffs_[k] == 1.f)
          gpu_copy(count, dy, dx);
        else if (count % 4 == 0 && aligned16(dy) && aligned16(dx))
          CUDA_LAUNCH(sum_backward<float4>, count / 4, coeffs_[k], as<float4>(dy), as<float4>(dx));
        else
          CUDA_LAUNCH(sum_backward<float>, count, coeffs_[k], dy, dx);
        break;
      case Op::PROD:
        if (stable_prod_grad_) {
          // (product of the other bottoms, in bottom order) * dy
          const int first = k == 0 ? 1 : 0;
          gpu_copy(count, bottom[first]->gpu_data(), dx);
          for (int j = first + 1; j < num; ++j)
            if (j != k) gpu_mul(count, dx, bottom[j]->gpu_data(), dx);
          gpu_mul(count, dx, dy, dx);
        } else {
          CUDA_LAUNCH(prod_unstable_backward, count, top[0]->gpu_data(), bottom[k]->gpu_data(), dy,
                      dx);
        }
        break;
      case Op::MAX:
        CUDA_LAUNCH(max_backward, count, dy,
                    reinterpret_cast<const int*>(gpu_max_index_.gpu_data()), k, dx);
        break;
    }
  }
}

}  // namespace crema
