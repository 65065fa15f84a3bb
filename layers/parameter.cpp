#include "layers/parameter.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

ParameterLayer::ParameterLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::BlobShape& s = param.parameter_param().shape();
  for (int i = 0; i < s.dim_size(); ++i) shape_.push_back(static_cast<int>(s.dim(i)));
}

void ParameterLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  for (size_t i = 0; i < shape_.size(); ++i)
    LAYER_REQUIRE(shape_[i] >= 0, "parameter_param.shape has a negative dimension: "
                                      << layer_param_->parameter_param().shape().DebugString());
  if (blobs_.empty()) {
    blobs_.push_back(std::make_shared<Blob>(shape_));
    cpu_set(blobs_[0]->count(), 0.f, blobs_[0]->mutable_cpu_data());
  } else {
    LAYER_REQUIRE(blobs_.size() == 1, "expected 1 parameter blob, got " << blobs_.size());
    LAYER_REQUIRE(blobs_[0]->shape() == shape_, "incorrect parameter shape: expected "
                                                    << shape_string(shape_) << ", got "
                                                    << blobs_[0]->shape_string());
  }
  param_propagate_down_.resize(1, true);
}

void ParameterLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  top[0]->ReshapeLike(*blobs_[0]);
  top[0]->ShareData(*blobs_[0]);
  top[0]->ShareDiff(*blobs_[0]);
}

void ParameterLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  // Re-share in case the top was reshaped elsewhere or the parameter was replaced (weights
  // copied in).
  top[0]->ShareData(*blobs_[0]);
  top[0]->ShareDiff(*blobs_[0]);
}

REGISTER_LAYER_CLASS(Parameter);

}  // namespace crema
