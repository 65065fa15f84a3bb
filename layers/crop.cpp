#include "layers/crop.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

CropLayer::CropLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::CropParameter& p = param.crop_param();
  axis_param_ = p.axis();
  for (int i = 0; i < p.offset_size(); ++i) offset_param_.push_back(static_cast<int>(p.offset(i)));
}

void CropLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < axes,
                "crop axis " << axis_param_ << " is out of range for bottom 0 of shape "
                             << bottom[0]->shape_string());
  const int start = bottom[0]->CanonicalAxisIndex(axis_param_);
  if (offset_param_.size() > 1)
    LAYER_REQUIRE(start + static_cast<int>(offset_param_.size()) == axes,
                  "got " << offset_param_.size() << " offsets but " << axes - start
                         << " axes are cropped (axis " << start << " on of bottom 0, shape "
                         << bottom[0]->shape_string() << "); give one offset or one per axis");
}

void CropLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const Blob& r = *bottom[1];
  const int axes = x.num_axes();
  const int start = x.CanonicalAxisIndex(axis_param_);
  LAYER_REQUIRE(r.num_axes() >= axes, "the reference (bottom 1, shape "
                                          << r.shape_string() << ") has fewer axes than bottom 0 ("
                                          << x.shape_string() << ")");
  std::vector<int> shape = x.shape();
  offsets_.assign(axes, 0);
  for (int a = start; a < axes; ++a) {
    int off = 0;
    if (offset_param_.size() == 1)
      off = offset_param_[0];
    else if (offset_param_.size() > 1)
      off = offset_param_[a - start];
    LAYER_REQUIRE(off >= 0 && static_cast<long>(off) + r.shape(a) <= x.shape(a),
                  "the crop on axis " << a << " is out of bounds: offset " << off << " + size "
                                      << r.shape(a) << " exceeds " << x.shape(a) << " (bottom 0 "
                                      << x.shape_string() << ", bottom 1 " << r.shape_string()
                                      << ")");
    shape[a] = r.shape(a);
    offsets_[a] = off;
  }
  top[0]->Reshape(shape);
}

void CropLayer::CopyWindow(const Blob& big, const Blob& small, const float* src, float* dst,
                           bool to_small) const {
  const int axes = small.num_axes();
  if (small.count() == 0) return;
  if (axes == 0) {
    dst[0] = src[0];
    return;
  }
  const int row = small.shape(axes - 1);
  const long rows = small.count() / row;
  // Strides of the big blob.
  std::vector<long> big_stride(axes, 1);
  for (int a = axes - 2; a >= 0; --a) big_stride[a] = big_stride[a + 1] * big.shape(a + 1);
  long base = 0;
  for (int a = 0; a < axes; ++a) base += offsets_[a] * big_stride[a];
  parallel_for(rows, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      // Decompose the row index over the small blob's outer axes.
      long rem = r, big_off = base;
      for (int a = axes - 2; a >= 0; --a) {
        const int d = small.shape(a);
        big_off += (rem % d) * big_stride[a];
        rem /= d;
      }
      if (to_small)
        cpu_copy(row, src + big_off, dst + r * row);
      else
        cpu_copy(row, src + r * row, dst + big_off);
    }
  });
}

void CropLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  CopyWindow(*bottom[0], *top[0], bottom[0]->cpu_data(), top[0]->mutable_cpu_data(), true);
}

void CropLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  float* dx = bottom[0]->mutable_cpu_diff();
  cpu_set(bottom[0]->count(), 0.f, dx);
  CopyWindow(*bottom[0], *top[0], top[0]->cpu_diff(), dx, false);
}

REGISTER_LAYER_CLASS(Crop);

}  // namespace crema
