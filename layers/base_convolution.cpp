#include "layers/base_convolution.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "crema.pb.h"
#include "crema/im2col.hpp"
#include "crema/math_functions.hpp"

namespace crema {

namespace {

// Per-thread column buffers are capped at this many floats in all (256 MB); beyond it fewer
// threads work on separate images (never fewer than two when there are two).
constexpr long kColBufferFloats = 1L << 26;
// Below this many column floats per image, splitting one im2col over threads is not worth
// the fork/join.
constexpr long kParallelIm2colFloats = 1L << 15;

// C [M x N] = op(A) op(B) + beta C for packed row-major matrices, computed as blocks of
// kGemmBlock columns, each by OpenBLAS's single-threaded driver. The blocks are the same
// whatever the thread count (threads > 1 only deals them out over an OpenMP team), so the
// value of every element depends neither on the number of threads nor on timing.
constexpr int kGemmBlock = 128;

void split_gemm(Trans trans_a, Trans trans_b, int M, int N, int K, const float* A, const float* B,
                float beta, float* C, int threads) {
  const int lda = trans_a == Trans::No ? K : M;
  const int ldb = trans_b == Trans::No ? N : K;
  const CBLAS_TRANSPOSE ta = trans_a == Trans::No ? CblasNoTrans : CblasTrans;
  const CBLAS_TRANSPOSE tb = trans_b == Trans::No ? CblasNoTrans : CblasTrans;
  const int blocks = (N + kGemmBlock - 1) / kGemmBlock;
  auto block = [&](int i) {
    const int j0 = i * kGemmBlock, j1 = std::min(N, j0 + kGemmBlock);
    const float* b = trans_b == Trans::No ? B + j0 : B + static_cast<long>(j0) * ldb;
    cblas_sgemm(CblasRowMajor, ta, tb, M, j1 - j0, K, 1.f, A, lda, b, ldb, beta, C + j0, N);
  };
  if (threads > 1 && !omp_in_parallel()) {
    if (blocks > 1) {
#pragma omp parallel for num_threads(std::min(threads, blocks)) schedule(static)
      for (int i = 0; i < blocks; ++i) block(i);
    } else {
      // A lone call here could take OpenBLAS's threaded driver (other results than the
      // single-threaded one); a team of two with one idle member keeps it single-threaded.
#pragma omp parallel num_threads(2)
      {
        if (omp_get_thread_num() == 0) block(0);
      }
    }
  } else {
    // Inside a parallel region, or with one thread in all: OpenBLAS runs single-threaded.
    for (int i = 0; i < blocks; ++i) block(i);
  }
}

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
  SetUpWeightAndBias(weight_shape, p.weight_filler(), bias_term_, bias_shape, p.bias_filler());
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
  team_ = threads_;
  if (!is_1x1_ && threads_ > 1) {
    const long fit = kColBufferFloats / std::max(col_image_, 1);
    team_ = static_cast<int>(std::max<long>(2, std::min<long>(threads_, fit)));
  }
  // One column matrix per team member (1x1 convolutions use the input itself).
  const long col_images = is_1x1_ ? 0 : team_;
  col_buffer_.Reshape({static_cast<int>(std::max<long>(1, col_images * col_image_))});
}

double BaseConvolutionLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return 2.0 * num_ * conv_out_channels_ * static_cast<double>(conv_out_spatial_dim_) *
         kernel_dim_ * static_cast<double>(bottom.size());
}

void BaseConvolutionLayer::conv_im2col(const float* input, float* col, int col_ld, int c0,
                                       int c1) const {
  long kernel_count = 1;
  for (int k : kernel_shape_) kernel_count *= k;
  conv_im2col_rows(input, c0, c1, col + static_cast<long>(c0) * kernel_count * col_ld, col_ld);
}

void BaseConvolutionLayer::conv_im2col_rows(const float* input, int c0, int c1, float* dst,
                                            int col_ld) const {
  const int d = num_spatial_axes_;
  const float* im = input + static_cast<long>(c0) * conv_in_spatial_dim_;
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
    split_gemm(Trans::No, Trans::No, out_g, S, kernel_dim_, weights + g * weight_offset_,
               cols + static_cast<long>(g) * kernel_dim_ * S, 0.f,
               output + static_cast<long>(g) * out_g * S, threads);
}

void BaseConvolutionLayer::backward_gemm(const float* output, const float* weights, float* input,
                                         float* col, int threads) const {
  const int S = conv_out_spatial_dim_;
  float* cols = is_1x1_ ? input : col;
  const int out_g = conv_out_channels_ / group_;
  for (int g = 0; g < group_; ++g)
    split_gemm(Trans::Yes, Trans::No, kernel_dim_, S, out_g, weights + g * weight_offset_,
               output + static_cast<long>(g) * out_g * S, 0.f,
               cols + static_cast<long>(g) * kernel_dim_ * S, threads);
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
#pragma omp parallel num_threads(team_)
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
#pragma omp parallel num_threads(team_)
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
  // The weight gradient of each group is cut into tiles: a block of input channels (the
  // columns of dW that come from their im2col rows, about kGemmBlock of them) times a block
  // of output channels. A tile runs through the images in order: im2col of its channels
  // only, into the running thread's buffer, then one GEMM that adds the image's share.
  // The tiling depends on the shapes alone and each tile is computed by one thread, so
  // every element sees the same operations whatever the thread count.
  const int S = conv_out_spatial_dim_;
  const int out_g = conv_out_channels_ / group_;
  const int cin_g = conv_in_channels_ / group_;
  const int kpc = kernel_dim_ / cin_g;  // im2col rows per channel: prod(kernel)
  const int cblocks = std::max(1, std::min(cin_g, (kernel_dim_ + kGemmBlock - 1) / kGemmBlock));
  const int cb = (cin_g + cblocks - 1) / cblocks;
  const int cblocks_used = (cin_g + cb - 1) / cb;
  // Few channel blocks (first layers): split the output channels too, for parallelism.
  const int mblocks = cblocks_used >= 4
                          ? 1
                          : std::max(1, std::min((4 + cblocks_used - 1) / cblocks_used, out_g / 8));
  const int mb = (out_g + mblocks - 1) / mblocks;
  const int tiles = group_ * cblocks_used * mblocks;
  float* col_base = col_buffer_.mutable_cpu_data();
  auto tile = [&](int t, float* buf) {
    const int g = t / (cblocks_used * mblocks);
    const int r = t % (cblocks_used * mblocks);
    const int c0 = (r / mblocks) * cb, c1 = std::min(cin_g, c0 + cb);
    const int m0 = (r % mblocks) * mb, m1 = std::min(out_g, m0 + mb);
    if (m1 <= m0 || c1 <= c0) return;
    const int rows = (c1 - c0) * kpc;
    const int cabs = g * cin_g + c0;
    float* dw = weight_diff + static_cast<long>(g) * weight_offset_ +
                static_cast<long>(m0) * kernel_dim_ + static_cast<long>(c0) * kpc;
    for (int n = 0; n < num_; ++n) {
      const float* in = input + static_cast<long>(n) * conv_input_dim_;
      const float* cols;
      if (is_1x1_) {
        cols = in + static_cast<long>(cabs) * S;
      } else {
        conv_im2col_rows(in, cabs, cabs + (c1 - c0), buf, S);
        cols = buf;
      }
      const float* dy =
          output + static_cast<long>(n) * conv_output_dim_ + static_cast<long>(g * out_g + m0) * S;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m1 - m0, rows, S, 1.f, dy, S, cols, S,
                  1.f, dw, kernel_dim_);
    }
  };
  if (threads_ > 1) {
    // A full team even when there are fewer tiles: inside an active parallel region OpenBLAS
    // stays single-threaded.
#pragma omp parallel num_threads(team_)
    {
      float* buf =
          is_1x1_ ? nullptr : col_base + static_cast<long>(omp_get_thread_num()) * col_image_;
#pragma omp for schedule(dynamic, 1)
      for (int t = 0; t < tiles; ++t) tile(t, buf);
    }
  } else {
    for (int t = 0; t < tiles; ++t) tile(t, col_base);
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
