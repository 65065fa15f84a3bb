// RecurrentLayer's shared steps on the GPU (the CPU versions and their contract are in
// recurrent.hpp / recurrent.cpp): the input projections and the parameter gradients as the
// same cuBLAS products the CPU path makes with its BLAS, bias rows as rank-1 products with
// the ones vector, and the cont masking as a kernel. Nothing here reads back to the host.
#include "layers/recurrent.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

// dst[i] = cont[i / h] * src[i] over the n = N * h elements of [N, h] rows (dst may alias
// src: each element is read, then written, by one thread).
__global__ void scale_rows_by_cont(int64_t n, int h, const float* cont, const float* src,
                                   float* dst) {
  CUDA_KERNEL_LOOP(i, n) {
    dst[i] = cont[i / h] * src[i];
  }
}

// out[i] += s[i % step] over the n = T * step elements: the static projection s [N, G]
// added to every one of the T steps (the CPU path's axpy with alpha 1, per step).
__global__ void add_to_every_step(int64_t n, int64_t step, const float* s, float* out) {
  CUDA_KERNEL_LOOP(i, n) {
    out[i] += s[i % step];
  }
}

}  // namespace

void RecurrentLayer::AddBiasRows_gpu(int rows, int width, const float* b, float* y) const {
  // y += 1 b^T, a rank-1 product with the ones vector (exactly y + b per element).
  gpu_gemm(Trans::No, Trans::No, rows, width, 1, 1.f, ones_.gpu_data(), b, 1.f, y);
}

void RecurrentLayer::ScaleRowsByCont_gpu(const float* cont, const float* src, float* dst) const {
  CUDA_LAUNCH(scale_rows_by_cont, static_cast<int64_t>(N_) * H_, H_, cont, src, dst);
}

void RecurrentLayer::ProjectInputs_gpu(const BlobVec& bottom, const Blob& w, const Blob* b,
                                       const Blob* w_static, float* out) {
  const int G = GateWidth();
  const int rows = T_ * N_;
  gpu_gemm(Trans::No, Trans::Yes, rows, G, D_, 1.f, bottom[0]->gpu_data(), w.gpu_data(), 0.f, out);
  if (b) AddBiasRows_gpu(rows, G, b->gpu_data(), out);
  if (static_input_ && w_static) {
    float* s = static_buf_.mutable_gpu_data();
    gpu_gemm(Trans::No, Trans::Yes, N_, G, D_static_, 1.f, bottom[2]->gpu_data(),
             w_static->gpu_data(), 0.f, s);
    const int64_t step = static_cast<int64_t>(N_) * G;
    CUDA_LAUNCH(add_to_every_step, T_ * step, step, s, out);
  }
}

void RecurrentLayer::BackpropInputs_gpu(const BlobVec& bottom,
                                        const std::vector<bool>& propagate_down, const float* dg,
                                        int w_id, int b_id, int w_static_id) {
  const int G = GateWidth();
  const int rows = T_ * N_;
  if (w_id >= 0 && param_propagate_down(w_id))
    gpu_gemm(Trans::Yes, Trans::No, G, D_, rows, 1.f, dg, bottom[0]->gpu_data(), 1.f,
             blobs_[w_id]->mutable_gpu_diff());
  if (b_id >= 0 && param_propagate_down(b_id))
    gpu_gemv(Trans::Yes, rows, G, 1.f, dg, ones_.gpu_data(), 1.f, blobs_[b_id]->mutable_gpu_diff());
  if (propagate_down[0])
    gpu_gemm(Trans::No, Trans::No, rows, D_, G, 1.f, dg, blobs_[w_id]->gpu_data(), 0.f,
             bottom[0]->mutable_gpu_diff());
  if (!static_input_ || w_static_id < 0) return;
  const bool want_w = param_propagate_down(w_static_id);
  const bool want_x = propagate_down.size() > 2 && propagate_down[2];
  if (!want_w && !want_x) return;
  // The static projection is added to every step: its gradient is the sum over steps.
  float* sum = static_buf_.mutable_gpu_data();
  gpu_gemv(Trans::Yes, T_, N_ * G, 1.f, dg, ones_.gpu_data(), 0.f, sum);
  if (want_w)
    gpu_gemm(Trans::Yes, Trans::No, G, D_static_, N_, 1.f, sum, bottom[2]->gpu_data(), 1.f,
             blobs_[w_static_id]->mutable_gpu_diff());
  if (want_x)
    gpu_gemm(Trans::No, Trans::No, N_, D_static_, G, 1.f, sum, blobs_[w_static_id]->gpu_data(), 0.f,
             bottom[2]->mutable_gpu_diff());
}

const float* RecurrentLayer::InitialState_gpu(const BlobVec& bottom, int k) const {
  return expose_hidden_ ? bottom[first_state_bottom_ + k]->gpu_data() : carried_[k].gpu_data();
}

void RecurrentLayer::StoreFinalState_gpu(const BlobVec& top, int k, const float* final_state) {
  float* dst = expose_hidden_ ? top[1 + k]->mutable_gpu_data() : carried_[k].mutable_gpu_data();
  gpu_copy(static_cast<size_t>(N_) * H_, final_state, dst);
}

const float* RecurrentLayer::FinalStateDiff_gpu(const BlobVec& top, int k) const {
  return backprop_exposed_ ? top[1 + k]->gpu_diff() : nullptr;
}

float* RecurrentLayer::InitialStateDiff_gpu(const BlobVec& bottom,
                                            const std::vector<bool>& propagate_down, int k) const {
  if (!backprop_exposed_) return nullptr;
  const size_t index = static_cast<size_t>(first_state_bottom_ + k);
  if (index >= propagate_down.size() || !propagate_down[index]) return nullptr;
  return bottom[index]->mutable_gpu_diff();
}

}  // namespace crema
