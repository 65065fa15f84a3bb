// BaseConvolutionLayer: the machinery shared by Convolution and Deconvolution (im2col +
// GEMM, parameter handling, threading). Not registered itself.
//
// ConvolutionParameter (Caffe's semantics):
//   axis (default 1) is the channel axis; every later axis is spatial (d of them).
//   kernel_size / stride (1) / pad (0) / dilation (1): one value for every spatial axis or
//   one per axis; kernel_h/_w, stride_h/_w, pad_h/_w are 2-D alternatives.
//   group g: channels C and num_output O must both be divisible by g.
// Bottoms and tops: one or more pairs, all bottoms of the same shape, top i computed from
//   bottom i with the shared parameters.
// Parameter blobs:  weight [O, C/g, k_0, ..., k_{d-1}] (Convolution)
//                   weight [C, O/g, k...]              (Deconvolution)
//                   bias [O] (when bias_term, the default)
//
// The "conv view": Convolution maps its bottom (the conv input, C_in = C channels) to its
// top (conv output, C_out = O channels); Deconvolution is the transpose, so its top plays
// the conv input and its bottom the conv output. With K = C_in/g * prod(k) and S = the
// number of conv-output positions, one image is, per group,
//   output_g [C_out/g x S] = W_g [C_out/g x K] * im2col(input)_g [K x S]
// The adjoint products give the input gradient (col2im(W_g^T dY_g)) and the weight
// gradient (dW_g += dY_g im2col(input)_g^T).
//
// Threading (T = Context::num_threads() at Reshape):
//   * batches of at least T images: images are split over threads, each with its own
//     column buffer and single-threaded GEMMs;
//   * smaller batches: one image at a time, im2col/col2im split over channels, the GEMM
//     blocks (below) dealt out over the threads;
//   * every GEMM is cut into blocks of at most 128 columns that depend on the shapes only,
//     each computed by OpenBLAS's single-threaded driver; threads only deal out blocks;
//   * weight gradient: tiles of (input-channel block x output-channel block) of dW, each
//     accumulated by one thread over the images in order (im2col of the tile's channels
//     only). No partial sums per thread, so results depend neither on the thread count
//     nor on timing.
//   * bias gradient: parallel over output channels, images summed in order.
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class BaseConvolutionLayer : public Layer {
 public:
  explicit BaseConvolutionLayer(const pb::LayerParameter& param);

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  int MinBottomBlobs() const override { return 1; }
  int MinTopBlobs() const override { return 1; }
  bool EqualNumBottomTopBlobs() const override { return true; }

  // 2 * images * C_out * S * K per bottom (multiply-adds of the GEMMs; bias excluded).
  double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const override;

 protected:
  // True for Deconvolution (top is the conv input).
  virtual bool reverse_dimensions() const = 0;
  // Spatial sizes of the top from conv_input_shape_/bottom spatial sizes (set when called).
  // May throw (LAYER_THROW) when the geometry does not fit.
  virtual std::vector<int> compute_output_shape() const = 0;

  // Spatial size of the bottom along spatial axis i.
  int input_shape(int i) const { return bottom_spatial_[i]; }

  // --- One image in the conv view ---------------------------------------------------
  // col (rows of `col_ld` floats) = im2col(input) for channels [c0, c1).
  void conv_im2col(const float* input, float* col, int col_ld, int c0, int c1) const;
  // The same rows written from `dst` on (row 0 = first row of channel c0).
  void conv_im2col_rows(const float* input, int c0, int c1, float* dst, int col_ld) const;
  // input += col2im(col) for channels [c0, c1).
  void conv_col2im(const float* col, float* input, int col_ld, int c0, int c1) const;
  // output = W * im2col(input); `threads` > 1 splits the im2col over channels.
  void forward_gemm(const float* input, const float* weights, float* output, float* col,
                    int threads) const;
  // input = col2im(W^T * output) (overwrites input).
  void backward_gemm(const float* output, const float* weights, float* input, float* col,
                     int threads) const;
  // data[o][s] += bias[o] for the num_output_ x out_spatial_dim_ block of one top image.
  void add_bias(float* data, const float* bias) const;

  // --- Whole batches (num_ images) -----------------------------------------------------
  // output_n = W * im2col(input_n), then += bias when `bias` is given (Convolution).
  void forward_batch(const float* input, const float* weights, const float* bias, float* output);
  // input_n = col2im(W^T output_n), then += bias when given (Deconvolution's forward).
  void backward_data_batch(const float* output, const float* weights, const float* bias,
                           float* input);
  // weight_diff += sum_n output_n * im2col(input_n)^T (per group).
  void weight_grad_batch(const float* input, const float* output, float* weight_diff);
  // bias_diff[o] += sum over images and positions of the top diff.
  void bias_grad_batch(const float* top_diff, float* bias_diff) const;

  // Parameters (per spatial axis).
  std::vector<int> kernel_shape_, stride_, pad_, dilation_;
  int num_spatial_axes_ = 0;
  int channel_axis_ = 1;
  bool force_nd_im2col_ = false;
  bool is_1x1_ = false;
  bool bias_term_ = true;
  int channels_ = 0;
  int num_output_ = 0;
  int group_ = 1;
  int conv_in_channels_ = 0, conv_out_channels_ = 0;
  int kernel_dim_ = 0;     // C_in / g * prod(kernel)
  int weight_offset_ = 0;  // floats per group in the weight

  // Shapes (set in Reshape).
  std::vector<int> bottom_spatial_;      // spatial sizes of the bottom
  std::vector<int> output_shape_;        // spatial sizes of the top
  std::vector<int> conv_input_spatial_;  // spatial sizes of the conv input
  int num_ = 0;                          // images: count(0, channel_axis)
  int conv_out_spatial_dim_ = 0;         // S
  int conv_in_spatial_dim_ = 0;
  int out_spatial_dim_ = 0;           // top positions per channel
  int bottom_dim_ = 0, top_dim_ = 0;  // floats per image
  int conv_input_dim_ = 0, conv_output_dim_ = 0;
  int col_image_ = 0;  // floats of one image's columns (all groups)
  int threads_ = 1;
  int team_ = 1;  // threads that work on separate column buffers (<= threads_)

  // Column buffers: one image's columns per team member.
  Blob col_buffer_;
};

}  // namespace crema
