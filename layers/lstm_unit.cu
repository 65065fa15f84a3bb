// LSTMUnitLayer on the GPU (formulas in lstm_unit.hpp): one thread per (stream n, unit d)
// doing exactly the CPU's arithmetic for that unit (lstm_unit.cpp). Each thread reads its
// elements before writing them, so in-place tops (c_t over c_{t-1}) stay correct; hence no
// __restrict__ here.
#include "layers/lstm_unit.hpp"
#include "src/cuda_kernel.cuh"

namespace crema {
namespace {

__device__ inline float sigmoid(float x) {
  return 1.f / (1.f + expf(-x));
}

// Over the n = N * H units: x [N, 4H] the gate pre-activations, c_prev [N, H], cont [N].
__global__ void lstm_unit_forward(int64_t n, int H, const float* c_prev, const float* x,
                                  const float* cont, float* c, float* h) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;  // stream
    const int d = static_cast<int>(k % H);
    const float* a = x + s * 4 * H;
    const float cn = cont[s];
    const float i = sigmoid(a[d]);
    const float f = cn == 0.f ? 0.f : cn * sigmoid(a[H + d]);
    const float og = sigmoid(a[2 * H + d]);
    const float g = tanhf(a[3 * H + d]);
    const float ct = f * c_prev[k] + i * g;
    c[k] = ct;
    h[k] = og * tanhf(ct);
  }
}

// Over the n = N * H units; recomputes the activations from x as the CPU path does.
__global__ void lstm_unit_backward(int64_t n, int H, const float* c_prev, const float* x,
                                   const float* cont, const float* c, const float* dc,
                                   const float* dh, float* dc_prev, float* dx) {
  CUDA_KERNEL_LOOP(k, n) {
    const int64_t s = k / H;
    const int d = static_cast<int>(k % H);
    const float* a = x + s * 4 * H;
    float* da = dx + s * 4 * H;
    const float cn = cont[s];
    const float i = sigmoid(a[d]);
    const float f = cn == 0.f ? 0.f : cn * sigmoid(a[H + d]);
    const float og = sigmoid(a[2 * H + d]);
    const float g = tanhf(a[3 * H + d]);
    const float tc = tanhf(c[k]);
    const float dct = dc[k] + dh[k] * og * (1.f - tc * tc);
    dc_prev[k] = dct * f;
    da[d] = dct * g * i * (1.f - i);
    da[H + d] = dct * c_prev[k] * f * (1.f - f);
    da[2 * H + d] = dh[k] * tc * og * (1.f - og);
    da[3 * H + d] = dct * i * (1.f - g * g);
  }
}

}  // namespace

void LSTMUnitLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  CUDA_LAUNCH(lstm_unit_forward, static_cast<int64_t>(N_) * H_, H_, bottom[0]->gpu_data(),
              bottom[1]->gpu_data(), bottom[2]->gpu_data(), top[0]->mutable_gpu_data(),
              top[1]->mutable_gpu_data());
}

void LSTMUnitLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  LAYER_REQUIRE(!propagate_down[2],
                "cannot backpropagate to the sequence continuation indicators (bottom 2, cont)");
  if (!propagate_down[0] && !propagate_down[1]) return;
  // Both bottoms' diffs are written (as Caffe does) when either is asked for.
  CUDA_LAUNCH(lstm_unit_backward, static_cast<int64_t>(N_) * H_, H_, bottom[0]->gpu_data(),
              bottom[1]->gpu_data(), bottom[2]->gpu_data(), top[0]->gpu_data(), top[0]->gpu_diff(),
              top[1]->gpu_diff(), bottom[0]->mutable_gpu_diff(), bottom[1]->mutable_gpu_diff());
}

}  // namespace crema
