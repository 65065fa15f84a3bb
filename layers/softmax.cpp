#include "layers/softmax.hpp"

#include <algorithm>
#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"
#include "layers/engines.hpp"

namespace crema {

namespace {

// Number of outer slices per thread chunk so that a chunk covers ~32k elements.
int64_t OuterGrain(int channels, int inner) {
  const int64_t per_outer = std::max<int64_t>(1, int64_t{channels} * inner);
  return std::max<int64_t>(1, 32768 / per_outer);
}

}  // namespace

void SoftmaxForwardCpu(int outer, int channels, int inner, const float* in, float* out,
                       float* scratch) {
  const int64_t dim = int64_t{channels} * inner;
  parallel_for(outer, OuterGrain(channels, inner), [=](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const float* x = in + o * dim;
      float* y = out + o * dim;
      if (inner == 1) {
        float m = x[0];
        for (int c = 1; c < channels; ++c) m = std::max(m, x[c]);
        float sum = 0.f;
        for (int c = 0; c < channels; ++c) {
          y[c] = std::exp(x[c] - m);
          sum += y[c];
        }
        for (int c = 0; c < channels; ++c) y[c] /= sum;
      } else {
        float* s = scratch + o * inner;
        std::copy(x, x + inner, s);
        for (int c = 1; c < channels; ++c) {
          const float* xc = x + int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) s[i] = std::max(s[i], xc[i]);
        }
        for (int c = 0; c < channels; ++c) {
          const float* xc = x + int64_t{c} * inner;
          float* yc = y + int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) yc[i] = std::exp(xc[i] - s[i]);
        }
        std::copy(y, y + inner, s);
        for (int c = 1; c < channels; ++c) {
          const float* yc = y + int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) s[i] += yc[i];
        }
        for (int c = 0; c < channels; ++c) {
          float* yc = y + int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) yc[i] /= s[i];
        }
      }
    }
  });
}

void SoftmaxBackwardCpu(int outer, int channels, int inner, const float* y, const float* dy,
                        float* dx, float* scratch) {
  const int64_t dim = int64_t{channels} * inner;
  parallel_for(outer, OuterGrain(channels, inner), [=](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const float* yo = y + o * dim;
      const float* dyo = dy + o * dim;
      float* dxo = dx + o * dim;
      if (inner == 1) {
        float dot = 0.f;
        for (int c = 0; c < channels; ++c) dot += dyo[c] * yo[c];
        for (int c = 0; c < channels; ++c) dxo[c] = (dyo[c] - dot) * yo[c];
      } else {
        float* s = scratch + o * inner;
        std::fill(s, s + inner, 0.f);
        for (int c = 0; c < channels; ++c) {
          const int64_t off = int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) s[i] += dyo[off + i] * yo[off + i];
        }
        for (int c = 0; c < channels; ++c) {
          const int64_t off = int64_t{c} * inner;
          for (int i = 0; i < inner; ++i) dxo[off + i] = (dyo[off + i] - s[i]) * yo[off + i];
        }
      }
    }
  });
}

SoftmaxLayer::SoftmaxLayer(const pb::LayerParameter& param) : Layer(param) {
  axis_param_ = param.softmax_param().axis();
}

void SoftmaxLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      axis_param_ >= -axes && axis_param_ < axes,
      "axis " << axis_param_ << " is out of range for bottom shape " << bottom[0]->shape_string());
  const int axis = bottom[0]->CanonicalAxisIndex(axis_param_);
  outer_ = bottom[0]->count(0, axis);
  channels_ = bottom[0]->shape(axis);
  inner_ = bottom[0]->count(axis + 1);
  if (top[0] != bottom[0]) top[0]->ReshapeLike(*bottom[0]);
  scratch_.Reshape({std::max(1, outer_ * (inner_ > 1 ? inner_ : 0))});
}

void SoftmaxLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  SoftmaxForwardCpu(outer_, channels_, inner_, bottom[0]->cpu_data(), top[0]->mutable_cpu_data(),
                    scratch_.mutable_cpu_data());
}

void SoftmaxLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  SoftmaxBackwardCpu(outer_, channels_, inner_, top[0]->cpu_data(), top[0]->cpu_diff(),
                     bottom[0]->mutable_cpu_diff(), scratch_.mutable_cpu_data());
}

// Engine choice (crema's kernels or cuDNN) lives in layers/engines.cpp.
REGISTER_LAYER_CREATOR(Softmax, CreateSoftmaxLayer);

}  // namespace crema
