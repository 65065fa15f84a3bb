#include "layers/im2col.hpp"

#include <sstream>

#include "crema.pb.h"
#include "crema/im2col.hpp"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {
std::string join(const std::vector<int>& v) {
  std::ostringstream s;
  for (size_t i = 0; i < v.size(); ++i) s << (i ? " x " : "") << v[i];
  return s.str();
}
}  // namespace

void Im2colLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::ConvolutionParameter& p = layer_param_->convolution_param();
  force_nd_ = p.force_nd_im2col();
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      p.axis() >= -axes && p.axis() < axes,
      "axis " << p.axis() << " is out of range for bottom shape " << bottom[0]->shape_string());
  channel_axis_ = bottom[0]->CanonicalAxisIndex(p.axis());
  num_spatial_axes_ = axes - channel_axis_ - 1;
  const int d = num_spatial_axes_;
  LAYER_REQUIRE(d >= 1, "needs at least one spatial axis after the channel axis "
                            << channel_axis_ << "; bottom shape " << bottom[0]->shape_string());
  auto per_axis = [&](const char* name, bool has_hw, int h, int w,
                      const google::protobuf::RepeatedField<uint32_t>& values, bool required,
                      int fallback) {
    std::vector<int> out(d);
    if (has_hw) {
      LAYER_REQUIRE(d == 2, name << "_h/" << name << "_w need exactly 2 spatial axes; bottom "
                                 << bottom[0]->shape_string() << " has " << d);
      LAYER_REQUIRE(values.size() == 0,
                    "give either " << name << " or " << name << "_h/" << name << "_w, not both");
      out[0] = h;
      out[1] = w;
      return out;
    }
    const int n = values.size();
    LAYER_REQUIRE((n == 1 || n == d) || (!required && n == 0),
                  name << " must be given once, or once per spatial axis (" << name << " given "
                       << n << " times; " << d << " spatial axes)");
    for (int i = 0; i < d; ++i)
      out[i] = n == 0 ? fallback : static_cast<int>(values.Get(n == 1 ? 0 : i));
    return out;
  };
  kernel_ = per_axis("kernel", p.has_kernel_h() || p.has_kernel_w(), p.kernel_h(), p.kernel_w(),
                     p.kernel_size(), true, 0);
  stride_ = per_axis("stride", p.has_stride_h() || p.has_stride_w(), p.stride_h(), p.stride_w(),
                     p.stride(), false, 1);
  pad_ = per_axis("pad", p.has_pad_h() || p.has_pad_w(), p.pad_h(), p.pad_w(), p.pad(), false, 0);
  dilation_ = per_axis("dilation", false, 0, 0, p.dilation(), false, 1);
  for (int i = 0; i < d; ++i) {
    LAYER_REQUIRE(kernel_[i] > 0,
                  "kernel size must be nonzero along every spatial axis, got " << join(kernel_));
    LAYER_REQUIRE(stride_[i] > 0,
                  "stride must be nonzero along every spatial axis, got " << join(stride_));
    LAYER_REQUIRE(dilation_[i] > 0,
                  "dilation must be nonzero along every spatial axis, got " << join(dilation_));
    LAYER_REQUIRE(pad_[i] >= 0, "pad must be non-negative, got " << join(pad_));
  }
}

void Im2colLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  LAYER_REQUIRE(x.num_axes() == channel_axis_ + 1 + num_spatial_axes_,
                "the bottom must keep " << channel_axis_ + 1 + num_spatial_axes_
                                        << " axes, got shape " << x.shape_string());
  std::vector<int> shape = x.shape();
  in_spatial_.assign(x.shape().begin() + channel_axis_ + 1, x.shape().end());
  for (int i = 0; i < num_spatial_axes_; ++i) {
    shape[channel_axis_] *= kernel_[i];
    const int in = in_spatial_[i];
    const int out = conv_output_size(in, kernel_[i], pad_[i], stride_[i], dilation_[i]);
    const int extent = dilation_[i] * (kernel_[i] - 1) + 1;
    LAYER_REQUIRE(out > 0 && in + 2 * pad_[i] >= extent,
                  "kernel extent " << extent << " exceeds the padded input " << in << " + 2*"
                                   << pad_[i] << " along spatial axis " << i << " (bottom "
                                   << x.shape_string() << ")");
    shape[channel_axis_ + 1 + i] = out;
  }
  top[0]->Reshape(shape);
  num_ = x.count(0, channel_axis_);
  channels_ = x.shape(channel_axis_);
  bottom_dim_ = x.count(channel_axis_);
  top_dim_ = top[0]->count(channel_axis_);
}

void Im2colLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const std::vector<int>& s = in_spatial_;
#pragma omp parallel for schedule(static) if (num_ > 1 && Context::num_threads() > 1)
  for (int n = 0; n < num_; ++n) {
    const float* im = x + static_cast<long>(n) * bottom_dim_;
    float* col = y + static_cast<long>(n) * top_dim_;
    if (!force_nd_ && num_spatial_axes_ == 2)
      im2col_cpu(im, channels_, s[0], s[1], kernel_[0], kernel_[1], pad_[0], pad_[1], stride_[0],
                 stride_[1], dilation_[0], dilation_[1], col);
    else
      im2col_nd_cpu(im, channels_, num_spatial_axes_, s.data(), kernel_.data(), pad_.data(),
                    stride_.data(), dilation_.data(), col);
  }
}

void Im2colLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                               const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const std::vector<int>& s = in_spatial_;
#pragma omp parallel for schedule(static) if (num_ > 1 && Context::num_threads() > 1)
  for (int n = 0; n < num_; ++n) {
    float* im = dx + static_cast<long>(n) * bottom_dim_;
    const float* col = dy + static_cast<long>(n) * top_dim_;
    cpu_set(bottom_dim_, 0.f, im);
    if (!force_nd_ && num_spatial_axes_ == 2)
      col2im_cpu(col, channels_, s[0], s[1], kernel_[0], kernel_[1], pad_[0], pad_[1], stride_[0],
                 stride_[1], dilation_[0], dilation_[1], im);
    else
      col2im_nd_cpu(col, channels_, num_spatial_axes_, s.data(), kernel_.data(), pad_.data(),
                    stride_.data(), dilation_.data(), im);
  }
}

REGISTER_LAYER_CLASS(Im2col);

}  // namespace crema
