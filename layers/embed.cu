// EmbedLayer on the GPU (formulas in embed.hpp).
// Forward: one thread per top element gathers W[x[m], j] (+ b[j]). The ids are checked on
// the device, in the same kernel: a bad one gets a row of zeros and competes (atomicMin)
// to be the pass's first bad id, reported by ExamineIds after the work is queued, so no
// pass waits for the GPU and the forward can be captured into a CUDA graph.
// Backward: one thread per top element atomically adds dy[m, j] into dW[x[m], j] (repeated
// ids accumulate in an unspecified order, so dW may differ from the CPU's in the last bits;
// bad ids, reported by the forward pass, are skipped); db += dy^T * ones with cuBLAS. Both
// accumulate, as on the CPU.
#include <cstring>

#include "layers/embed.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"

namespace crema {
namespace {

constexpr unsigned long long kNoBadId = ~0ull;

__device__ __forceinline__ bool valid_id(float v, int input_dim) {
  return v >= 0.f && v < static_cast<float>(input_dim) && v == truncf(v);  // false for NaN
}

__global__ void embed_forward(int64_t n, int num_output, int input_dim,
                              const float* __restrict__ ids, const float* __restrict__ W,
                              const float* __restrict__ b, float* __restrict__ y,
                              unsigned long long* __restrict__ first_bad) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t m = e / num_output, j = e % num_output;
    const float v = ids[m];
    if (!valid_id(v, input_dim)) {
      if (j == 0)
        atomicMin(first_bad, static_cast<unsigned long long>(m) << 32 | __float_as_uint(v));
      y[e] = 0.f;
      continue;
    }
    const float w = W[static_cast<int64_t>(v) * num_output + j];
    y[e] = b ? w + b[j] : w;
  }
}

__global__ void embed_weight_backward(int64_t n, int num_output, int input_dim,
                                      const float* __restrict__ ids, const float* __restrict__ dy,
                                      float* __restrict__ dW) {
  CUDA_KERNEL_LOOP(e, n) {
    const int64_t m = e / num_output, j = e % num_output;
    const float v = ids[m];
    if (valid_id(v, input_dim)) atomicAdd(dW + static_cast<int64_t>(v) * num_output + j, dy[e]);
  }
}

}  // namespace

void EmbedLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (first_bad_id_.count() == 0) first_bad_id_.Reshape({2});  // 8 bytes
  auto* first_bad = reinterpret_cast<unsigned long long*>(first_bad_id_.mutable_gpu_data());
  CudaMemsetAsync(first_bad, 0xff, sizeof(kNoBadId));
  const float* b = bias_term_ ? blobs_[1]->gpu_data() : nullptr;
  CUDA_LAUNCH(embed_forward, static_cast<int64_t>(M_) * num_output_, num_output_, input_dim_,
              bottom[0]->gpu_data(), blobs_[0]->gpu_data(), b, top[0]->mutable_gpu_data(),
              first_bad);
  if (!CudaStreamCapturing()) ExamineIds();  // a graph's launcher calls GraphLaunched instead
}

void EmbedLayer::GraphLaunched(bool forward) {
  if (forward) ExamineIds();
}

void EmbedLayer::ExamineIds() {
  auto throw_if_bad = [this](const void* record, bool earlier_batch) {
    unsigned long long key = 0;
    std::memcpy(&key, record, sizeof key);
    if (key == kNoBadId) return;
    const uint32_t bits = static_cast<uint32_t>(key & 0xffffffffull);
    float value = 0.f;
    std::memcpy(&value, &bits, sizeof value);
    ThrowBadId(static_cast<int64_t>(key >> 32), value, earlier_batch);
  };
  first_bad_id_.mutable_gpu_data();  // written on the device (also by a graph's replay)
  if (!bad_id_report_) bad_id_report_ = std::make_shared<DeferredDeviceReport>(sizeof(kNoBadId));
  if (const void* earlier = bad_id_report_->Collect())  // an earlier forward pass's ids
    throw_if_bad(earlier, /*earlier_batch=*/true);
  if (Context::loss_readback()) {  // the caller waits for the GPU anyway: look now
    throw_if_bad(first_bad_id_.cpu_data(), /*earlier_batch=*/false);
    return;
  }
  bad_id_report_->Queue(first_bad_id_.gpu_data());
}

void EmbedLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (propagate_down[0]) LAYER_THROW("cannot backpropagate to the ids (bottom 0)");
  const float* dy = top[0]->gpu_diff();
  if (param_propagate_down(0))
    CUDA_LAUNCH(embed_weight_backward, static_cast<int64_t>(M_) * num_output_, num_output_,
                input_dim_, bottom[0]->gpu_data(), dy, blobs_[0]->mutable_gpu_diff());
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
