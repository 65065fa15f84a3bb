// EltwiseLayer on the GPU (semantics in eltwise.hpp): the CPU sequence of passes, one
// kernel or cuBLAS-free elementwise call per bottom. MAX keeps the winning bottom per
// element in gpu_max_index_ (ints in float slots).
#include "layers/eltwise.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

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

__global__ void add_scaled(int64_t n, float c, const float* x, float* y) {
  CUDA_KERNEL_LOOP(i, n) {
    y[i] += c * x[i];
  }
}

}  // namespace

void EltwiseLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const int count = top[0]->count();
  float* y = top[0]->mutable_gpu_data();
  const int num = static_cast<int>(bottom.size());
  switch (op_) {
    case Op::SUM:
      gpu_scale(count, coeffs_[0], bottom[0]->gpu_data(), y);
      for (int k = 1; k < num; ++k) {
        if (coeffs_[k] == 1.f)
          gpu_add(count, y, bottom[k]->gpu_data(), y);
        else
          CUDA_LAUNCH(add_scaled, count, coeffs_[k], bottom[k]->gpu_data(), y);
      }
      break;
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
  for (int k = 0; k < num; ++k) {
    if (!propagate_down[k]) continue;
    float* dx = bottom[k]->mutable_gpu_diff();
    switch (op_) {
      case Op::SUM:
        if (coeffs_[k] == 1.f)
          gpu_copy(count, dy, dx);
        else
          gpu_scale(count, coeffs_[k], dy, dx);
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
