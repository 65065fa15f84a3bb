#include "layers/scale.hpp"

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ScaleLayer::ScaleLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::ScaleParameter& p = param.scale_param();
  axis_param_ = p.axis();
  num_axes_ = p.num_axes();
  bias_term_ = p.bias_term();
}

void ScaleLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::ScaleParameter& p = layer_param_->scale_param();
  const bool learned = bottom.size() == 1;
  // Learned scale and bias span the same axes: from a second bottom, its own axes.
  const std::vector<int> shape =
      learned ? broadcast::ParamShape(*this, *bottom[0], axis_param_, num_axes_, "scale")
              : bottom[1]->shape();
  const size_t expected = (learned ? 1 : 0) + (bias_term_ ? 1 : 0);
  if (learned && blobs_.empty()) {
    blobs_.push_back(std::make_shared<Blob>(shape));
    if (p.has_filler()) {
      CreateFiller(p.filler())->Fill(blobs_[0].get());
    } else {
      pb::FillerParameter one;
      one.set_type("constant");
      one.set_value(1.f);
      CreateFiller(one)->Fill(blobs_[0].get());
    }
  }
  // As Caffe: weights holding only the scale get a freshly filled bias.
  if (bias_term_ && blobs_.size() + 1 == expected) {
    blobs_.push_back(std::make_shared<Blob>(shape));
    CreateFiller(p.bias_filler())->Fill(blobs_.back().get());
  }
  LAYER_REQUIRE(blobs_.size() == expected,
                "expected " << expected << " parameter blob(s) ("
                            << (learned ? "scale" : "scale from bottom[1]")
                            << (bias_term_ ? ", bias" : ", no bias") << "), got " << blobs_.size());
  bias_index_ = bias_term_ ? static_cast<int>(blobs_.size()) - 1 : -1;
  param_propagate_down_.resize(blobs_.size(), true);
}

void ScaleLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& scale = bottom.size() > 1 ? *bottom[1] : *blobs_[0];
  geometry_ = broadcast::Compute(*this, *bottom[0], scale, axis_param_, "scale");
  if (bias_term_) {
    const Blob& bias = *blobs_[bias_index_];
    LAYER_REQUIRE(bias.count() == scale.count(), "the bias " << bias.shape_string()
                                                             << " does not match the scale "
                                                             << scale.shape_string());
  }
  if (top[0] == bottom[0])
    bottom_copy_.ReshapeLike(*bottom[0]);
  else
    top[0]->ReshapeLike(*bottom[0]);
}

double ScaleLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return (bias_term_ ? 2.0 : 1.0) * bottom[0]->count();
}

void ScaleLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* s = (bottom.size() > 1 ? bottom[1] : blobs_[0].get())->cpu_data();
  const float* b = bias_term_ ? blobs_[bias_index_]->cpu_data() : nullptr;
  float* copy = top[0] == bottom[0] ? bottom_copy_.mutable_cpu_data() : nullptr;
  broadcast::Apply(geometry_, bottom[0]->cpu_data(), s, b, top[0]->mutable_cpu_data(), copy);
}

void ScaleLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  const float* dy = top[0]->cpu_diff();
  const bool learned = bottom.size() == 1;
  // Parameter gradients first: in place, dx overwrites dy. Both sums share one pass over dy
  // when both are wanted.
  float* bias_diff = bias_term_ && param_propagate_down(bias_index_)
                         ? blobs_[bias_index_]->mutable_cpu_diff()
                         : nullptr;
  Blob* scale = learned ? blobs_[0].get() : bottom[1];
  if (learned ? param_propagate_down(0) : propagate_down[1]) {
    const float* x = top[0] == bottom[0] ? bottom_copy_.cpu_data() : bottom[0]->cpu_data();
    broadcast::Reduce(geometry_, dy, x, scale->mutable_cpu_diff(), learned, bias_diff);
  } else if (bias_diff) {
    broadcast::Reduce(geometry_, dy, nullptr, bias_diff, true);
  }
  if (propagate_down[0])
    broadcast::Apply(geometry_, dy, scale->cpu_data(), nullptr, bottom[0]->mutable_cpu_diff());
}

REGISTER_LAYER_CLASS(Scale);

}  // namespace crema
