// EmbedLayer on the GPU (formulas in embed.hpp). The ids are checked on the host first, as
// on the CPU (the error names the bad id). Forward: one thread per top element gathers
// W[x[m], j] (+ b[j]). Backward: one thread per top element atomically adds dy[m, j] into
// dW[x[m], j] (repeated ids accumulate in an unspecified order, so dW may differ from the
// CPU's in the last bits); db += dy^T * ones with cuBLAS. Both accumulate, as on the CPU.
#include "layers/embed.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__global__ void embed_forward(int64_t n, int num_output, const float* __restrict__ ids,
                              const float* __restrict__ W, const float* __restrict__ b,
                              float* __restrict__ y) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t m = e / num_output, j = e % num_output;
    const float w = W[static_cast<int64_t>(ids[m]) * num_output + j];
    y[e] = b ? w + b[j] : w;
  }
}

__global__ void embed_weight_backward(int64_t n, int num_output, const float* __restrict__ ids,
                                      const float* __restrict__ dy, float* __restrict__ dW) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t m = e / num_output, j = e % num_output;
    atomicAdd(dW + static_cast<int64_t>(ids[m]) * num_output + j, dy[e]);
  }
}

}  // namespace

void EmbedLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CheckIds(*bottom[0]);
  const float* b = bias_term_ ? blobs_[1]->gpu_data() : nullptr;
  CUDA_LAUNCH(embed_forward, static_cast<int64_t>(M_) * num_output_, num_output_,
              bottom[0]->gpu_data(), blobs_[0]->gpu_data(), b, top[0]->mutable_gpu_data());
}

void EmbedLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (propagate_down[0]) LAYER_THROW("cannot backpropagate to the ids (bottom 0)");
  const float* dy = top[0]->gpu_diff();
  if (param_propagate_down(0)) {
    CheckIds(*bottom[0]);
    CUDA_LAUNCH(embed_weight_backward, static_cast<int64_t>(M_) * num_output_, num_output_,
                bottom[0]->gpu_data(), dy, blobs_[0]->mutable_gpu_diff());
  }
  if (bias_term_ && param_propagate_down(1) && M_ > 0) {
    if (bias_multiplier_.count() != M_) {
      bias_multiplier_.Reshape({M_});
      gpu_set(M_, 1.f, bias_multiplier_.mutable_gpu_data());
    }
    gpu_gemv(Trans::Yes, M_, num_output_, 1.f, dy, bias_multiplier_.gpu_data(), 1.f,
             blobs_[1]->mutable_gpu_diff());
  }
}

}  // namespace crema
