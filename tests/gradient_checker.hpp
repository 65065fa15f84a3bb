// Numerical gradient check for layers: compares Backward's analytic gradients with central
// differences of a scalar objective
//     L = sum over tops t, elements i of  w[t][i] * top[t][i]
// with fixed random weights w (so dL/dtop = w is what Backward receives).
// Each checked input x_j (bottom data, and parameter data) is perturbed by +-step:
//     numeric_j = (L(x_j + step) - L(x_j - step)) / (2 step)
// and |analytic_j - numeric_j| <= threshold * max(1, |analytic_j|, |numeric_j|) is required.
// Inputs within kink_range of a kink (ReLU's 0, say) are skipped: the objective is not
// differentiable there. Stochastic layers see the same random numbers in every pass (the
// thread RNG is reseeded before each forward).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/layer.hpp"
#include "crema/math_functions.hpp"

namespace crema {
namespace testing {

struct GradientCheckOptions {
  float step = 1e-2f;
  float threshold = 1e-3f;
  float kink = 0.f;
  float kink_range = -1.f;            // < 0: no kink handling
  std::vector<int> bottoms_to_check;  // empty: every bottom
  bool check_params = true;
  // Checks at most this many elements per blob (spread evenly); 0: all of them.
  int max_checks_per_blob = 0;
};

class GradientChecker {
 public:
  explicit GradientChecker(const GradientCheckOptions& options = {}) : options_(options) {}

  // Sets the layer up on (bottom, top) and checks every requested gradient.
  void Check(Layer* layer, const BlobVec& bottom, const BlobVec& top) {
    layer->SetUp(bottom, top);
    std::vector<int> bottoms = options_.bottoms_to_check;
    if (bottoms.empty())
      for (int i = 0; i < static_cast<int>(bottom.size()); ++i) bottoms.push_back(i);

    // Fixed top weights.
    Context::reseed(/*stream=*/424242, 0);
    RunForward(layer, bottom, top);
    top_weights_.assign(top.size(), {});
    for (size_t t = 0; t < top.size(); ++t) {
      top_weights_[t].resize(top[t]->count());
      if (top[t]->count() > 0) cpu_rng_gaussian(top[t]->count(), 0.f, 1.f, top_weights_[t].data());
    }

    // Analytic gradients.
    RunForward(layer, bottom, top);
    // Zero the bottom and parameter diffs first: a view layer's top shares its bottom's diff.
    for (Blob* b : bottom) cpu_set(b->count(), 0.f, b->mutable_cpu_diff());
    for (auto& p : layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    for (size_t t = 0; t < top.size(); ++t)
      cpu_copy(top[t]->count(), top_weights_[t].data(), top[t]->mutable_cpu_diff());
    std::vector<bool> propagate_down(bottom.size(), false);
    for (int i : bottoms) propagate_down[i] = true;
    layer->Backward(top, propagate_down, bottom);

    std::vector<Blob*> checked;
    std::vector<std::string> labels;
    for (int i : bottoms) {
      checked.push_back(bottom[i]);
      labels.push_back("bottom " + std::to_string(i));
    }
    if (options_.check_params) {
      for (size_t p = 0; p < layer->blobs().size(); ++p) {
        if (!layer->param_propagate_down(static_cast<int>(p))) continue;
        checked.push_back(layer->blobs()[p].get());
        labels.push_back("param " + std::to_string(p));
      }
    }
    std::vector<std::vector<float>> analytic;
    for (Blob* b : checked) analytic.emplace_back(b->cpu_diff(), b->cpu_diff() + b->count());

    for (size_t c = 0; c < checked.size(); ++c) {
      Blob* blob = checked[c];
      const int count = blob->count();
      int stride = 1;
      if (options_.max_checks_per_blob > 0 && count > options_.max_checks_per_blob)
        stride = (count + options_.max_checks_per_blob - 1) / options_.max_checks_per_blob;
      for (int j = 0; j < count; j += stride) {
        float* x = blob->mutable_cpu_data() + j;
        const float original = *x;
        if (options_.kink_range >= 0 && std::fabs(original - options_.kink) <= options_.kink_range)
          continue;
        *x = original + options_.step;
        const double plus = Objective(layer, bottom, top);
        x = blob->mutable_cpu_data() + j;
        *x = original - options_.step;
        const double minus = Objective(layer, bottom, top);
        x = blob->mutable_cpu_data() + j;
        *x = original;
        const double numeric = (plus - minus) / (2.0 * options_.step);
        const double computed = analytic[c][j];
        const double scale = std::max({1.0, std::fabs(computed), std::fabs(numeric)});
        EXPECT_NEAR(computed, numeric, options_.threshold * scale)
            << layer->type() << " " << labels[c] << " element " << j << " (x = " << original << ")";
      }
    }
  }

 private:
  void RunForward(Layer* layer, const BlobVec& bottom, const BlobVec& top) {
    Context::reseed(/*stream=*/171717, 0);
    layer->Forward(bottom, top);
  }
  double Objective(Layer* layer, const BlobVec& bottom, const BlobVec& top) {
    RunForward(layer, bottom, top);
    double sum = 0;
    for (size_t t = 0; t < top.size(); ++t) {
      const float* data = top[t]->cpu_data();
      for (int i = 0; i < top[t]->count(); ++i)
        sum += static_cast<double>(top_weights_[t][i]) * data[i];
    }
    return sum;
  }

  GradientCheckOptions options_;
  std::vector<std::vector<float>> top_weights_;
};

// Fills a blob with N(0, std) from a fixed seed.
inline void FillGaussian(Blob* blob, float std = 1.f, uint64_t seed = 1) {
  Context::reseed(/*stream=*/99, seed);
  cpu_rng_gaussian(blob->count(), 0.f, std, blob->mutable_cpu_data());
}
inline void FillUniform(Blob* blob, float lo, float hi, uint64_t seed = 1) {
  Context::reseed(/*stream=*/98, seed);
  cpu_rng_uniform(blob->count(), lo, hi, blob->mutable_cpu_data());
}

}  // namespace testing
}  // namespace crema
