#include "layers/inner_product.hpp"

#include <sstream>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

InnerProductLayer::InnerProductLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::InnerProductParameter& p = param.inner_product_param();
  axis_param_ = p.axis();
  num_output_ = static_cast<int>(p.num_output());
  bias_term_ = p.bias_term();
  transpose_ = p.transpose();
}

void InnerProductLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::InnerProductParameter& p = layer_param_->inner_product_param();
  LAYER_REQUIRE(num_output_ > 0, "num_output must be positive, got " << p.num_output());
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      axis_param_ >= -axes && axis_param_ < axes,
      "axis " << axis_param_ << " is out of range for bottom shape " << bottom[0]->shape_string());
  const int axis = bottom[0]->CanonicalAxisIndex(axis_param_);
  N_ = num_output_;
  K_ = bottom[0]->count(axis);
  const std::vector<int> weight_shape =
      transpose_ ? std::vector<int>{K_, N_} : std::vector<int>{N_, K_};
  const std::vector<int> bias_shape = {N_};
  std::ostringstream hint;
  hint << " (num_output " << N_ << ", bottom " << bottom[0]->shape_string() << " gives K = " << K_
       << (transpose_ ? ", transposed" : "") << ")";
  SetUpWeightAndBias(weight_shape, p.weight_filler(), bias_term_, bias_shape, p.bias_filler(),
                     hint.str());
  param_propagate_down_.resize(blobs_.size(), true);
}

void InnerProductLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      axis_param_ >= -axes && axis_param_ < axes,
      "axis " << axis_param_ << " is out of range for bottom shape " << bottom[0]->shape_string());
  const int axis = bottom[0]->CanonicalAxisIndex(axis_param_);
  const int k = bottom[0]->count(axis);
  LAYER_REQUIRE(k == K_, "the bottom " << bottom[0]->shape_string() << " has " << k
                                       << " features from axis " << axis << ", the weights "
                                       << blobs_[0]->shape_string() << " expect " << K_);
  M_ = bottom[0]->count(0, axis);
  std::vector<int> top_shape(bottom[0]->shape().begin(), bottom[0]->shape().begin() + axis);
  top_shape.push_back(N_);
  top[0]->Reshape(top_shape);
  if (bias_term_) {
    const bool grown = bias_multiplier_.count() != std::max(M_, 1);
    bias_multiplier_.Reshape({std::max(M_, 1)});
    if (grown) cpu_set(bias_multiplier_.count(), 1.f, bias_multiplier_.mutable_cpu_data());
  }
}

double InnerProductLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return 2.0 * M_ * static_cast<double>(N_) * K_;
}

void InnerProductLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const float* w = blobs_[0]->cpu_data();
  cpu_gemm(Trans::No, transpose_ ? Trans::No : Trans::Yes, M_, N_, K_, 1.f, x, w, 0.f, y);
  if (bias_term_) {
    const float* b = blobs_[1]->cpu_data();
    const int n = N_;
    parallel_for(M_, 64, [=](int64_t begin, int64_t end) {
      for (int64_t m = begin; m < end; ++m) {
        float* row = y + m * n;
        for (int j = 0; j < n; ++j) row[j] += b[j];
      }
    });
  }
}

void InnerProductLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();
  if (param_propagate_down(0)) {
    const float* x = bottom[0]->cpu_data();
    float* dw = blobs_[0]->mutable_cpu_diff();
    if (transpose_)
      cpu_gemm(Trans::Yes, Trans::No, K_, N_, M_, 1.f, x, dy, 1.f, dw);
    else
      cpu_gemm(Trans::Yes, Trans::No, N_, K_, M_, 1.f, dy, x, 1.f, dw);
  }
  if (bias_term_ && param_propagate_down(1))
    cpu_gemv(Trans::Yes, M_, N_, 1.f, dy, bias_multiplier_.cpu_data(), 1.f,
             blobs_[1]->mutable_cpu_diff());
  if (propagate_down[0]) {
    const float* w = blobs_[0]->cpu_data();
    float* dx = bottom[0]->mutable_cpu_diff();
    cpu_gemm(Trans::No, transpose_ ? Trans::Yes : Trans::No, M_, K_, N_, 1.f, dy, w, 0.f, dx);
  }
}

REGISTER_LAYER_CLASS(InnerProduct);

}  // namespace crema
