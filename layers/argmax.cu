// ArgMaxLayer on the GPU (semantics in argmax.hpp). One thread per searched vector (an
// (outer, inner) pair with an axis, an example without) finds its top_k by selection: slot
// s takes the best (value, index) pair ranked below slot s - 1's pair, O(top_k * dim) work
// and no scratch memory. Pairs rank as the CPU's std::greater on std::pair<float, int>: the
// larger value first, among equal values the larger index first. No backward.
#include "layers/argmax.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// std::greater<std::pair<float, int>>()({av, aj}, {bv, bj}): whether (av, aj) ranks first.
__device__ bool ranks_before(float av, int aj, float bv, int bj) {
  return bv < av || (!(av < bv) && bj < aj);
}

// Vector r = (o, i) holds x[(o * dim + j) * inner + i], j < dim.
__global__ void argmax_forward(int64_t rows, const float* __restrict__ x, int dim, int inner,
                               int top_k, bool has_axis, bool out_max_val, float* __restrict__ y) {
  CUDA_KERNEL_LOOP(r, rows) {
    const int64_t o = r / inner, i = r % inner;
    const float* src = x + o * dim * inner + i;
    float prev_v = 0.f;
    int prev_j = -1;  // the pair of the previous slot; -1: none yet
    for (int s = 0; s < top_k; ++s) {
      float best_v = 0.f;
      int best_j = -1;
      for (int j = 0; j < dim; ++j) {
        const float v = src[static_cast<int64_t>(j) * inner];
        if (prev_j >= 0 && !ranks_before(prev_v, prev_j, v, j)) continue;  // already taken
        if (best_j < 0 || ranks_before(v, j, best_v, best_j)) {
          best_v = v;
          best_j = j;
        }
      }
      // top_k <= dim (checked in Reshape), so every slot finds a pair.
      if (has_axis) {
        y[(o * top_k + s) * inner + i] = out_max_val ? best_v : static_cast<float>(best_j);
      } else if (out_max_val) {
        y[2 * r * top_k + s] = static_cast<float>(best_j);
        y[2 * r * top_k + top_k + s] = best_v;
      } else {
        y[r * top_k + s] = static_cast<float>(best_j);
      }
      prev_v = best_v;
      prev_j = best_j;
    }
  }
}

}  // namespace

void ArgMaxLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const int dim = has_axis_ ? x.shape(axis_) : x.count(1);
  if (dim == 0) return;
  const int inner = has_axis_ ? x.count(axis_ + 1) : 1;
  const int64_t rows = x.count() / dim;
  CUDA_LAUNCH(argmax_forward, rows, x.gpu_data(), dim, inner, top_k_, has_axis_, out_max_val_,
              top[0]->mutable_gpu_data());
}

void ArgMaxLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  Backward_cpu(top, propagate_down, bottom);  // touches no data; throws if a gradient is asked
}

}  // namespace crema
