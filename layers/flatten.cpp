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
  // The top is a view of the bottom: it shares the bottom's data and diff, so whatever
  // writes the top's diff writes the bottom's (even a diff the bottom itself shares, such
  // as a Parameter layer's).
  // (Caffe's Flatten instead points the bottom's diff at the top's in Backward, which loses
  // the gradient of a bottom whose diff is shared, e.g. Parameter -> Flatten.)
  top[0]->ShareData(in);
  top[0]->ShareDiff(in);
}

// Nothing to compute either way: the top shares the bottom's memory since Reshape.
void FlattenLayer::Forward_cpu(const BlobVec&, const BlobVec&) {}

void FlattenLayer::Backward_cpu(const BlobVec&, const std::vector<bool>&, const BlobVec&) {}

REGISTER_LAYER_CLASS(Flatten);

}  // namespace crema
