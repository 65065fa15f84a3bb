#include "layers/base_convolution.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "crema/im2col.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {

// Images per weight-gradient GEMM are chosen so that one chunk's columns stay within this
// many floats (16 MB). It depends on the shapes only, never on the thread count.
constexpr long kGradChunkFloats = 1L << 22;
// Below this many column floats per image, splitting one im2col over threads is not worth
// the fork/join.
constexpr long kParallelIm2colFloats = 1L << 15;

std::string join(const std::vector<int>& v) {
  std::ostringstream s;
  for (size_t i = 0; i < v.size(); ++i) s << (i ? " x " : "") << v[i];
  return s.str();
}

}  // namespace

BaseConvolutionLayer::BaseConvolutionLayer(const pb::LayerParameter& param) : Layer(param) {}

void BaseConvolutionLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::ConvolutionParameter& p = layer_param_->convolution_param();
  force_nd_im2col_ = p.force_nd_im2col();
  const int axes = bottom[0]->num_axes();
  LAYER_REQUIRE(
      p.axis() >= -axes && p.axis() < axes,
      "axis " << p.axis() << " is out of range for bottom shape " << bottom[0]->shape_string());
  channel_axis_ = bottom[0]->CanonicalAxisIndex(p.axis());
  num_spatial_axes_ = axes - channel_axis_ - 1;
  const int d = num_spatial_axes_;

  // Reads one per-axis setting: the _h/_w pair, or the repeated field given 0 times
  // (default), once (every axis) or once per axis.
  auto per_axis = [&](const char* name, bool has_hw, int h, int w,
                      const google::protobuf::RepeatedField<uint32_t>& values, bool required,
                      int fallback) {
    std::vector<int> out(d);
    if (has_hw) {
      LAYER_REQUIRE(d == 2, name << "_h/" << name << "_w need exactly 2 spatial axes; the bottom "
                                 << bottom[0]->shape_string() << " has " << d
                                 << " after the channel axis " << channel_axis_);
      LAYER_REQUIRE(values.size() == 0,
                    "give either " << name << " or " << name << "_h/" << name << "_w, not both");
      out[0] = h;
      out[1] = w;
      return out;
    }
    const int n = values.size();
    if (required)
      LAYER_REQUIRE(n == 1 || n == d, name << " must be given once, or once per spatial axis ("
                                           << name << " given " << n << " times; " << d
                                           << " spatial axes)");
    else
      LAYER_REQUIRE(n == 0 || n == 1 || n == d,
                    name << " must be given once, or once per spatial axis (" << name << " given "
                         << n << " times; " << d << " spatial axes)");
    for (int i = 0; i < d; ++i)
      out[i] = n == 0 ? fallback : static_cast<int>(values.Get(n == 1 ? 0 : i));
    return out;
  };
  kernel_shape_ = per_axis("kernel", p.has_kernel_h() || p.has_kernel_w(), p.kernel_h(),
                           p.kernel_w(), p.kernel_size(), /*required=*/true, 0);
  stride_ = per_axis("stride", p.has_stride_h() || p.has_stride_w(), p.stride_h(), p.stride_w(),
                     p.stride(), false, 1);
  pad_ = per_axis("pad", p.has_pad_h() || p.has_pad_w(), p.pad_h(), p.pad_w(), p.pad(), false, 0);
  dilation_ = per_axis("dilation", false, 0, 0, p.dilation(), false, 1);
  for (int i = 0; i < d; ++i) {
    LAYER_REQUIRE(kernel_shape_[i] > 0, "kernel size must be nonzero along every spatial axis, got "
                                            << join(kernel_shape_));
    LAYER_REQUIRE(stride_[i] > 0,
                  "stride must be nonzero along every spatial axis, got " << join(stride_));
    LAYER_REQUIRE(dilation_[i] > 0,
                  "dilation must be nonzero along every spatial axis, got " << join(dilation_));
    LAYER_REQUIRE(pad_[i] >= 0, "pad must be non-negative, got " << join(pad_));
  }
  is_1x1_ = true;
  for (int i = 0; i < d; ++i)
    is_1x1_ = is_1x1_ && kernel_shape_[i] == 1 && stride_[i] == 1 && pad_[i] == 0;

  channels_ = bottom[0]->shape(channel_axis_);
  num_output_ = static_cast<int>(p.num_output());
  LAYER_REQUIRE(num_output_ > 0, "num_output must be positive, got " << p.num_output());
  group_ = static_cast<int>(p.group());
  LAYER_REQUIRE(group_ > 0, "group must be positive, got " << p.group());
  LAYER_REQUIRE(channels_ % group_ == 0, "the input channels (" << channels_ << ", bottom shape "
                                                                << bottom[0]->shape_string()
                                                                << ") are not divisible by group "
                                                                << group_);
  LAYER_REQUIRE(num_output_ % group_ == 0,
                "num_output " << num_output_ << " is not divisible by group " << group_);
  if (reverse_dimensions()) {
    conv_out_channels_ = channels_;
    conv_in_channels_ = num_output_;
  } else {
    conv_out_channels_ = num_output_;
    conv_in_channels_ = channels_;
  }

  std::vector<int> weight_shape = {conv_out_channels_, conv_in_channels_ / group_};
  weight_shape.insert(weight_shape.end(), kernel_shape_.begin(), kernel_shape_.end());
  bias_term_ = p.bias_term();
  const std::vector<int> bias_shape = {num_output_};
  if (!blobs_.empty()) {
    LAYER_REQUIRE(static_cast<int>(blobs_.size()) == 1 + (bias_term_ ? 1 : 0),
                  "expected " << 1 + (bias_term_ ? 1 : 0) << " parameter blobs (bias_term "
                              << (bias_term_ ? "true" : "false") << "), got " << blobs_.size());
    LAYER_REQUIRE(blobs_[0]->shape() == weight_shape, "incorrect weight shape: expected "
                                                          << shape_string(weight_shape) << ", got "
                                                          << blobs_[0]->shape_string());
    if (bias_term_)
      LAYER_REQUIRE(blobs_[1]->shape() == bias_shape, "incorrect bias shape: expected "
                                                          << shape_string(bias_shape) << ", got "
                                                          << blobs_[1]->shape_string());
  } else {
    blobs_.push_back(std::make_shared<Blob>(weight_shape));
    CreateFiller(p.weight_filler())->Fill(blobs_[0].get());
    if (bias_term_) {
      blobs_.push_back(std::make_shared<Blob>(bias_shape));
      CreateFiller(p.bias_filler())->Fill(blobs_[1].get());
    }
  }
  kernel_dim_ = blobs_[0]->count(1);
  weight_offset_ = conv_out_channels_ / group_ * kernel_dim_;
  param_propagate_down_.resize(blobs_.size(), true);
}

void BaseConvolutionLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const int d = num_spatial_axes_;
  LAYER_REQUIRE(bottom[0]->num_axes() == channel_axis_ + 1 + d,
                "the bottom must keep " << channel_axis_ + 1 + d << " axes, got shape "
                                        << bottom[0]->shape_string());
  LAYER_REQUIRE(bottom[0]->shape(channel_axis_) == channels_,
                "the bottom " << bottom[0]->shape_string() << " has "
                              << bottom[0]->shape(channel_axis_)
                              << " channels; the layer was set up for " << channels_);
  for (size_t i = 1; i < bottom.size(); ++i)
    LAYER_REQUIRE(bottom[i]->shape() == bottom[0]->shape(),
                  "all bottoms must have the same shape: bottom 0 is "
                      << bottom[0]->shape_string() << ", bottom " << i << " is "
                      << bottom[i]->shape_string());
  num_ = bottom[0]->count(0, channel_axis_);
  bottom_spatial_.assign(bottom[0]->shape().begin() + channel_axis_ + 1, bottom[0]->shape().end());
  output_shape_ = compute_output_shape();

  std::vector<int> top_shape(bottom[0]->shape().begin(),
                             bottom[0]->shape().begin() + channel_axis_);
  top_shape.push_back(num_output_);
  top_shape.insert(top_shape.end(), output_shape_.begin(), output_shape_.end());
  for (Blob* t : top) t->Reshape(top_shape);

  auto product = [](const std::vector<int>& v) {
    long p = 1;
    for (int x : v) p *= x;
    return static_cast<int>(p);
  };
  const int bottom_spatial = product(bottom_spatial_);
  out_spatial_dim_ = product(output_shape_);
  conv_input_spatial_ = reverse_dimensions() ? output_shape_ : bottom_spatial_;
  conv_in_spatial_dim_ = product(conv_input_spatial_);
  conv_out_spatial_dim_ = reverse_dimensions() ? bottom_spatial : out_spatial_dim_;
  bottom_dim_ = channels_ * bottom_spatial;
  top_dim_ = num_output_ * out_spatial_dim_;
  conv_input_dim_ = conv_in_channels_ * conv_in_spatial_dim_;
  conv_output_dim_ = conv_out_channels_ * conv_out_spatial_dim_;
  col_image_ = kernel_dim_ * group_ * conv_out_spatial_dim_;

  threads_ = std::max(1, Context::num_threads());
  const long per_image = std::max<long>(std::max(col_image_, conv_output_dim_), 1);
  grad_chunk_ = static_cast<int>(
      std::max<long>(1, std::min<long>(std::max(num_, 1), kGradChunkFloats / per_image)));
  long col_images = std::max(std::min(num_, threads_), grad_chunk_);
  if (is_1x1_ && grad_chunk_ == 1) col_images = 0;  // the input is its own column matrix
  col_buffer_.Reshape({static_cast<int>(std::max<long>(1, col_images * col_image_))});
  pack_buffer_.Reshape({grad_chunk_ > 1 ? grad_chunk_ * conv_output_dim_ : 1});
}

double BaseConvolutionLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return 2.0 * num_ * conv_out_channels_ * static_cast<double>(conv_out_spatial_dim_) *
         kernel_dim_ * static_cast<double>(bottom.size());
}

void BaseConvolutionLayer::conv_im2col(const float* input, float* col, int col_ld, int c0,
                                       int c1) const {
  const int d = num_spatial_axes_;
  long kernel_count = 1;
  for (int k : kernel_shape_) kernel_count *= k;
  const float* im = input + static_cast<long>(c0) * conv_in_spatial_dim_;
  float* dst = col + static_cast<long>(c0) * kernel_count * col_ld;
  if (!force_nd_im2col_ && d == 2) {
    im2col_cpu(im, c1 - c0, conv_input_spatial_[0], conv_input_spatial_[1], kernel_shape_[0],
               kernel_shape_[1], pad_[0], pad_[1], stride_[0], stride_[1], dilation_[0],
               dilation_[1], dst, col_ld);
  } else {
    im2col_nd_cpu(im, c1 - c0, d, conv_input_spatial_.data(), kernel_shape_.data(), pad_.data(),
                  stride_.data(), dilation_.data(), dst, col_ld);
  }
}

void BaseConvolutionLayer::conv_col2im(const float* col, float* input, int col_ld, int c0,
                                       int c1) const {
  const int d = num_spatial_axes_;
  long kernel_count = 1;
  for (int k : kernel_shape_) kernel_count *= k;
  float* im = input + static_cast<long>(c0) * conv_in_spatial_dim_;
  const float* src = col + static_cast<long>(c0) * kernel_count * col_ld;
  if (!force_nd_im2col_ && d == 2) {
    col2im_cpu(src, c1 - c0, conv_input_spatial_[0], conv_input_spatial_[1], kernel_shape_[0],
               kernel_shape_[1], pad_[0], pad_[1], stride_[0], stride_[1], dilation_[0],
               dilation_[1], im, col_ld);
  } else {
    col2im_nd_cpu(src, c1 - c0, d, conv_input_spatial_.data(), kernel_shape_.data(), pad_.data(),
                  stride_.data(), dilation_.data(), im, col_ld);
  }
}

void BaseConvolutionLayer::forward_gemm(const float* input, const float* weights, float* output,
                                        float* col, int threads) const {
  const int S = conv_out_spatial_dim_;
  const float* cols = input;
  if (!is_1x1_) {
    const int channels = conv_in_channels_;
    if (threads > 1 && channels > 1 && col_image_ >= kParallelIm2colFloats) {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int c = 0; c < channels; ++c) conv_im2col(input, col, S, c, c + 1);
    } else {
      conv_im2col(input, col, S, 0, channels);
    }
    cols = col;
  }
  const int out_g = conv_out_channels_ / group_;
  for (int g = 0; g < group_; ++g)
    cpu_gemm(Trans::No, Trans::No, out_g, S, kernel_dim_, 1.f, weights + g * weight_offset_,
             cols + static_cast<long>(g) * kernel_dim_ * S, 0.f,
             output + static_cast<long>(g) * out_g * S);
}

void BaseConvolutionLayer::backward_gemm(const float* output, const float* weights, float* input,
                                         float* col, int threads) const {
  const int S = conv_out_spatial_dim_;
  float* cols = is_1x1_ ? input : col;
  const int out_g = conv_out_channels_ / group_;
  for (int g = 0; g < group_; ++g)
    cpu_gemm(Trans::Yes, Trans::No, kernel_dim_, S, out_g, 1.f, weights + g * weight_offset_,
             output + static_cast<long>(g) * out_g * S, 0.f,
             cols + static_cast<long>(g) * kernel_dim_ * S);
  if (is_1x1_) return;
  const int channels = conv_in_channels_;
  const long plane = conv_in_spatial_dim_;
  if (threads > 1 && channels > 1 && col_image_ >= kParallelIm2colFloats) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int c = 0; c < channels; ++c) {
      std::memset(input + c * plane, 0, sizeof(float) * plane);
      conv_col2im(col, input, S, c, c + 1);
    }
  } else {
    std::memset(input, 0, sizeof(float) * plane * channels);
    conv_col2im(col, input, S, 0, channels);
  }
}

void BaseConvolutionLayer::add_bias(float* data, const float* bias) const {
  const int S = out_spatial_dim_;
  for (int o = 0; o < num_output_; ++o) {
    const float b = bias[o];
    float* row = data + static_cast<long>(o) * S;
    for (int s = 0; s < S; ++s) row[s] += b;
  }
}

void BaseConvolutionLayer::forward_batch(const float* input, const float* weights,
                                         const float* bias, float* output) {
  float* col_base = col_buffer_.mutable_cpu_data();
  const int T = threads_;
  if (T > 1 && num_ >= T) {
#pragma omp parallel num_threads(T)
    {
      float* col =
          is_1x1_ ? nullptr : col_base + static_cast<long>(omp_get_thread_num()) * col_image_;
#pragma omp for schedule(static)
      for (int n = 0; n < num_; ++n) {
        float* out = output + static_cast<long>(n) * conv_output_dim_;
        forward_gemm(input + static_cast<long>(n) * conv_input_dim_, weights, out, col, 1);
        if (bias) add_bias(out, bias);
      }
    }
  } else {
    for (int n = 0; n < num_; ++n) {
      float* out = output + static_cast<long>(n) * conv_output_dim_;
      forward_gemm(input + static_cast<long>(n) * conv_input_dim_, weights, out, col_base, T);
      if (bias) add_bias(out, bias);
    }
  }
}

void BaseConvolutionLayer::backward_data_batch(const float* output, const float* weights,
                                               const float* bias, float* input) {
  float* col_base = col_buffer_.mutable_cpu_data();
  const int T = threads_;
  if (T > 1 && num_ >= T) {
#pragma omp parallel num_threads(T)
    {
      float* col =
          is_1x1_ ? nullptr : col_base + static_cast<long>(omp_get_thread_num()) * col_image_;
#pragma omp for schedule(static)
      for (int n = 0; n < num_; ++n) {
        float* in = input + static_cast<long>(n) * conv_input_dim_;
        backward_gemm(output + static_cast<long>(n) * conv_output_dim_, weights, in, col, 1);
        if (bias) add_bias(in, bias);
      }
    }
  } else {
    for (int n = 0; n < num_; ++n) {
      float* in = input + static_cast<long>(n) * conv_input_dim_;
      backward_gemm(output + static_cast<long>(n) * conv_output_dim_, weights, in, col_base, T);
      if (bias) add_bias(in, bias);
    }
  }
}

void BaseConvolutionLayer::weight_grad_batch(const float* input, const float* output,
                                             float* weight_diff) {
  const int S = conv_out_spatial_dim_;
  const int T = threads_;
  const int out_g = conv_out_channels_ / group_;
  float* col = col_buffer_.mutable_cpu_data();
  float* pack = pack_buffer_.mutable_cpu_data();
  for (int n0 = 0; n0 < num_; n0 += grad_chunk_) {
    const int b = std::min(grad_chunk_, num_ - n0);
    const long ld = static_cast<long>(b) * S;
    const float* cols;
    const float* outs;
    if (b == 1) {
      const float* in = input + static_cast<long>(n0) * conv_input_dim_;
      outs = output + static_cast<long>(n0) * conv_output_dim_;
      if (is_1x1_) {
        cols = in;
      } else {
        const int channels = conv_in_channels_;
        if (T > 1 && channels > 1 && col_image_ >= kParallelIm2colFloats) {
#pragma omp parallel for num_threads(T) schedule(static)
          for (int c = 0; c < channels; ++c) conv_im2col(in, col, S, c, c + 1);
        } else {
          conv_im2col(in, col, S, 0, channels);
        }
        cols = col;
      }
    } else {
      // Lay the chunk's columns side by side (image j at column j*S) and pack the conv
      // outputs the same way, so one GEMM sums over every position of every image.
      const int cin = conv_in_channels_;
      const int cout = conv_out_channels_;
      const long items = static_cast<long>(b) * cin;
      const int in_dim = conv_input_dim_;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
      for (long it = 0; it < items; ++it) {
        const int j = static_cast<int>(it / cin), c = static_cast<int>(it % cin);
        conv_im2col(input + static_cast<long>(n0 + j) * in_dim, col + static_cast<long>(j) * S,
                    static_cast<int>(ld), c, c + 1);
      }
      const long rows = static_cast<long>(b) * cout;
      const int out_dim = conv_output_dim_;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
      for (long it = 0; it < rows; ++it) {
        const int j = static_cast<int>(it / cout), o = static_cast<int>(it % cout);
        std::memcpy(pack + o * ld + static_cast<long>(j) * S,
                    output + static_cast<long>(n0 + j) * out_dim + static_cast<long>(o) * S,
                    sizeof(float) * S);
      }
      cols = col;
      outs = pack;
    }
    for (int g = 0; g < group_; ++g)
      cpu_gemm(Trans::No, Trans::Yes, out_g, kernel_dim_, static_cast<int>(ld), 1.f,
               outs + static_cast<long>(g) * out_g * ld,
               cols + static_cast<long>(g) * kernel_dim_ * ld, 1.f,
               weight_diff + static_cast<long>(g) * weight_offset_);
  }
}

void BaseConvolutionLayer::bias_grad_batch(const float* top_diff, float* bias_diff) const {
  const int S = out_spatial_dim_;
  const int O = num_output_;
  const int N = num_;
  const int top_dim = top_dim_;
  const int T = threads_;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1 && O > 1)
  for (int o = 0; o < O; ++o) {
    float acc = bias_diff[o];
    for (int n = 0; n < N; ++n) {
      const float* row = top_diff + static_cast<long>(n) * top_dim + static_cast<long>(o) * S;
      // Eight independent partial sums (vectorisable, fixed order).
      float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int s = 0;
      for (; s + 8 <= S; s += 8)
        for (int l = 0; l < 8; ++l) lane[l] += row[s + l];
      for (; s < S; ++s) lane[s & 7] += row[s];
      acc +=
          ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
    bias_diff[o] = acc;
  }
}

}  // namespace crema
