#include "layers/prelu.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

PReLULayer::PReLULayer(const pb::LayerParameter& param) : NeuronLayer(param) {
  channel_shared_ = param.prelu_param().channel_shared();
}

void PReLULayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::PReLUParameter& p = layer_param_->prelu_param();
  LAYER_REQUIRE(bottom[0]->num_axes() >= 2,
                "the bottom needs at least 2 axes (N, C, ...), got " << bottom[0]->shape_string());
  const int channels = bottom[0]->shape(1);
  if (blobs_.empty()) {
    blobs_.push_back(
        std::make_shared<Blob>(channel_shared_ ? std::vector<int>{} : std::vector<int>{channels}));
    if (p.has_filler()) {
      CreateFiller(p.filler())->Fill(blobs_[0].get());
    } else {
      pb::FillerParameter quarter;
      quarter.set_type("constant");
      quarter.set_value(0.25f);
      CreateFiller(quarter)->Fill(blobs_[0].get());
    }
  }
  LAYER_REQUIRE(blobs_.size() == 1,
                "expected 1 parameter blob (the slopes), got " << blobs_.size());
  if (channel_shared_) {
    LAYER_REQUIRE(blobs_[0]->count() == 1,
                  "channel_shared needs a single slope, but the slope blob has shape "
                      << blobs_[0]->shape_string());
  } else {
    LAYER_REQUIRE(blobs_[0]->count() == channels,
                  "the slope blob " << blobs_[0]->shape_string() << " does not match the "
                                    << channels << " channels of the bottom "
                                    << bottom[0]->shape_string()
                                    << " (or set channel_shared for a single slope)");
  }
  param_propagate_down_.resize(blobs_.size(), true);
}

void PReLULayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(bottom[0]->num_axes() >= 2,
                "the bottom needs at least 2 axes (N, C, ...), got " << bottom[0]->shape_string());
  const int channels = bottom[0]->shape(1);
  LAYER_REQUIRE(channel_shared_ || channels == blobs_[0]->count(),
                "the bottom " << bottom[0]->shape_string() << " has " << channels
                              << " channels, the slopes " << blobs_[0]->shape_string() << " expect "
                              << blobs_[0]->count());
  NeuronLayer::Reshape(bottom, top);
  channels_ = channels;
  outer_ = bottom[0]->shape(0);
  inner_ = bottom[0]->count(2);
  if (top[0] == bottom[0]) bottom_copy_.ReshapeLike(*bottom[0]);
  channel_sums_.resize(channels);
}

void PReLULayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  if (top[0] == bottom[0]) cpu_copy(bottom[0]->count(), x, bottom_copy_.mutable_cpu_data());
  const float* slope = blobs_[0]->cpu_data();
  const int channels = channels_, inner = inner_;
  const bool shared = channel_shared_;
  // One row = the `inner` elements of one (n, c) pair.
  const int64_t rows = static_cast<int64_t>(outer_) * channels;
  const int64_t grain = std::max<int64_t>(1, kNeuronGrain / std::max(inner, 1));
  parallel_for(rows, grain, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float a = slope[shared ? 0 : r % channels];
      const float* xr = x + r * inner;
      float* yr = y + r * inner;
#pragma omp simd
      for (int i = 0; i < inner; ++i) {
        // Written as two selects against 0 so that GCC vectorises it.
        const float v = xr[i];
        yr[i] = (v > 0.f ? v : 0.f) + a * (v > 0.f ? 0.f : v);
      }
    }
  });
}

void PReLULayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const float* x = top[0] == bottom[0] ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
  const float* dy = top[0]->cpu_diff();
  const int channels = channels_, inner = inner_, outer = outer_;
  const int64_t channel_stride = static_cast<int64_t>(channels) * inner;
  // Slope gradient first: in place, dx overwrites dy.
  if (param_propagate_down(0)) {
    float* da = blobs_[0]->mutable_cpu_diff();
    // sum over n and spatial of dy * x for x <= 0, one channel at a time.
    auto channel_sum = [=](int c) {
      double sum = 0;
      for (int n = 0; n < outer; ++n) {
        const float* xr = x + n * channel_stride + static_cast<int64_t>(c) * inner;
        const float* gr = dy + n * channel_stride + static_cast<int64_t>(c) * inner;
        float part = 0.f;
#pragma omp simd reduction(+ : part)
        for (int i = 0; i < inner; ++i) part += (xr[i] <= 0.f ? xr[i] : 0.f) * gr[i];
        sum += part;
      }
      return sum;
    };
    // Per-channel sums in parallel; a shared slope then adds them all up.
    double* sums = channel_sums_.data();
    const int64_t grain =
        std::max<int64_t>(1, kNeuronGrain / std::max<int64_t>(1, int64_t{outer} * inner));
    parallel_for(channels, grain, [=](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) sums[c] = channel_sum(static_cast<int>(c));
    });
    if (channel_shared_) {
      double total = 0;
      for (int c = 0; c < channels; ++c) total += sums[c];
      da[0] += static_cast<float>(total);
    } else {
      for (int c = 0; c < channels; ++c) da[c] += static_cast<float>(sums[c]);
    }
  }
  if (propagate_down[0]) {
    float* dx = bottom[0]->mutable_cpu_diff();
    const float* slope = blobs_[0]->cpu_data();
    const bool shared = channel_shared_;
    const int64_t rows = static_cast<int64_t>(outer) * channels;
    const int64_t grain = std::max<int64_t>(1, kNeuronGrain / std::max(inner, 1));
    parallel_for(rows, grain, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float a = slope[shared ? 0 : r % channels];
        const float* xr = x + r * inner;
        const float* gr = dy + r * inner;
        float* dr = dx + r * inner;
#pragma omp simd
        for (int i = 0; i < inner; ++i) {
          const float g = gr[i];
          dr[i] = (xr[i] > 0.f ? g : 0.f) + a * (xr[i] > 0.f ? 0.f : g);
        }
      }
    });
  }
}

REGISTER_LAYER_CLASS(PReLU);

}  // namespace crema
