#include "layers/reshape.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/syncedmem.hpp"

namespace crema {

ReshapeLayer::ReshapeLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::ReshapeParameter& p = param.reshape_param();
  for (int i = 0; i < p.shape().dim_size(); ++i)
    new_dims_.push_back(static_cast<int>(p.shape().dim(i)));
  axis_ = p.axis();
  num_axes_ = p.num_axes();
}

void ReshapeLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(top[0] != bottom[0], "cannot be computed in place");
  copy_axes_.clear();
  inferred_axis_ = -1;
  constant_count_ = 1;
  for (int i = 0; i < static_cast<int>(new_dims_.size()); ++i) {
    const int d = new_dims_[i];
    if (d == 0) {
      copy_axes_.push_back(i);
    } else if (d == -1) {
      LAYER_REQUIRE(inferred_axis_ == -1, "the new shape has more than one -1 dimension (dims "
                                              << inferred_axis_ << " and " << i
                                              << "); at most one may be inferred");
      inferred_axis_ = i;
    } else {
      LAYER_REQUIRE(d > 0, "dimension " << i << " of the new shape is " << d
                                        << "; dims must be positive, 0 (copy) or -1 (infer)");
      constant_count_ *= d;
    }
  }
  LAYER_REQUIRE(num_axes_ >= -1, "num_axes must be >= 0, or -1 for all, got " << num_axes_);
}

void ReshapeLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  Blob& in = *bottom[0];
  const int axes = in.num_axes();
  const int start = axis_ >= 0 ? axis_ : axes + axis_ + 1;
  LAYER_REQUIRE(start >= 0 && start <= axes, "axis " << axis_ << " is out of range for the " << axes
                                                     << "-axis bottom of shape "
                                                     << in.shape_string());
  const int end = num_axes_ == -1 ? axes : start + num_axes_;
  LAYER_REQUIRE(end <= axes, "axis + num_axes = " << start << " + " << num_axes_
                                                  << " is out of range for bottom shape "
                                                  << in.shape_string());
  std::vector<int> shape(in.shape().begin(), in.shape().begin() + start);
  shape.insert(shape.end(), new_dims_.begin(), new_dims_.end());
  shape.insert(shape.end(), in.shape().begin() + end, in.shape().end());
  for (int c : copy_axes_) {
    LAYER_REQUIRE(start + c < axes, "dimension " << c << " of the new shape is 0 (copy), but "
                                                 << "bottom shape " << in.shape_string()
                                                 << " has no axis " << start + c << " to copy");
    shape[start + c] = in.shape(start + c);
  }
  if (inferred_axis_ >= 0) {
    int64_t known = constant_count_ * in.count(0, start) * in.count(end);
    for (int c : copy_axes_) known *= shape[start + c];
    LAYER_REQUIRE(known != 0 && in.count() % known == 0,
                  "bottom count (" << in.count() << ", shape " << in.shape_string()
                                   << ") is not divisible by the product of the given "
                                   << "dimensions (" << known << ")");
    shape[start + inferred_axis_] = static_cast<int>(in.count() / known);
  }
  int64_t count = 1;
  for (int d : shape) count *= d;
  LAYER_REQUIRE(count == in.count(), "the new shape " << shape_string(shape) << " has " << count
                                                      << " elements but bottom shape "
                                                      << in.shape_string() << " has "
                                                      << in.count());
  top[0]->Reshape(shape);
  // The top is a view of the bottom: it shares the bottom's data and diff, so whatever
  // writes the top's diff writes the bottom's (even a diff the bottom itself shares, such
  // as a Parameter layer's).
  top[0]->ShareData(in);
  top[0]->ShareDiff(in);
}

// Nothing to compute either way: the top shares the bottom's memory since Reshape.
void ReshapeLayer::Forward_cpu(const BlobVec&, const BlobVec&) {}

void ReshapeLayer::Backward_cpu(const BlobVec&, const std::vector<bool>&, const BlobVec&) {}

REGISTER_LAYER_CLASS(Reshape);

}  // namespace crema
