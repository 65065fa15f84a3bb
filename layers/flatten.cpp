#include "layers/flatten.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/syncedmem.hpp"

namespace crema {

FlattenLayer::FlattenLayer(const pb::LayerParameter& param) : Layer(param) {
  axis_param_ = param.flatten_param().axis();
  end_axis_param_ = param.flatten_param().end_axis();
}

void FlattenLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(top[0] != bottom[0], "cannot be computed in place");
  Blob& in = *bottom[0];
  const int axes = in.num_axes();
  LAYER_REQUIRE(
      axis_param_ >= -axes && axis_param_ < axes,
      "axis " << axis_param_ << " is out of range for bottom shape " << in.shape_string());
  LAYER_REQUIRE(
      end_axis_param_ >= -axes && end_axis_param_ < axes,
      "end_axis " << end_axis_param_ << " is out of range for bottom shape " << in.shape_string());
  const int start = in.CanonicalAxisIndex(axis_param_);
  const int end = in.CanonicalAxisIndex(end_axis_param_);
  LAYER_REQUIRE(start <= end, "axis (" << start << ") must not come after end_axis (" << end
                                       << ") for bottom shape " << in.shape_string());
  std::vector<int> shape(in.shape().begin(), in.shape().begin() + start);
  shape.push_back(in.count(start, end + 1));
  shape.insert(shape.end(), in.shape().begin() + end + 1, in.shape().end());
  top[0]->Reshape(shape);
  top[0]->ShareData(in);
  // Backward points the bottom's diff at the top's; if the bottom has since grown past that
  // buffer, point it at the (resized) top diff again so no write can overrun it.
  if (in.diff() && in.diff()->size() < static_cast<size_t>(in.count()) * sizeof(float))
    in.ShareDiff(*top[0]);
}

void FlattenLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  // Data is shared since Reshape; re-sharing is free and survives a bottom reallocation.
  top[0]->ShareData(*bottom[0]);
}

void FlattenLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                const BlobVec& bottom) {
  if (propagate_down[0]) bottom[0]->ShareDiff(*top[0]);
}

REGISTER_LAYER_CLASS(Flatten);

}  // namespace crema
