// im2col / col2im: the rearrangement that turns a convolution into one matrix product.
//
// For an image of C channels and spatial size (H, W), a kernel (kh, kw) with padding
// (ph, pw), stride (sh, sw) and dilation (dh, dw), the output grid has
//     Ho = (H + 2 ph - (dh (kh - 1) + 1)) / sh + 1     (integer division, floor)
//     Wo = (W + 2 pw - (dw (kw - 1) + 1)) / sw + 1
// positions. The column matrix has C*kh*kw rows and Ho*Wo columns:
//     col[(c*kh + i)*kw + j][oh*Wo + ow] = im[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw]
// (0 where the source position falls into the padding). Rows are `col_ld` floats apart
// (col_ld >= Ho*Wo), so several images' columns can sit side by side in one matrix.
//
// col2im is the adjoint: every column entry is ADDED into the image position it was read
// from (entries that came from padding are dropped). It does not clear `im` first.
//
// Channels are independent: to split the work over threads, offset `im` by c0*H*W and
// `col` by c0*kh*kw*col_ld and pass the channel count of the slice.
//
// The N-d versions do the same for any number of spatial axes (kernel, pad, stride,
// dilation, image and output sizes given per axis); rows are indexed
// (c, k_0, ..., k_{d-1}) and columns (o_0, ..., o_{d-1}), both row-major.
#pragma once

namespace crema {

// Output extent of one spatial axis (may be <= 0 when the kernel does not fit).
inline int conv_output_size(int in, int kernel, int pad, int stride, int dilation) {
  return (in + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
}

void im2col_cpu(const float* im, int channels, int height, int width, int kernel_h, int kernel_w,
                int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w,
                float* col, int col_ld = -1);

void col2im_cpu(const float* col, int channels, int height, int width, int kernel_h, int kernel_w,
                int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w,
                float* im, int col_ld = -1);

// num_axes spatial axes; im_shape/kernel/pad/stride/dilation have num_axes entries each.
void im2col_nd_cpu(const float* im, int channels, int num_axes, const int* im_shape,
                   const int* kernel, const int* pad, const int* stride, const int* dilation,
                   float* col, int col_ld = -1);

void col2im_nd_cpu(const float* col, int channels, int num_axes, const int* im_shape,
                   const int* kernel, const int* pad, const int* stride, const int* dilation,
                   float* im, int col_ld = -1);

}  // namespace crema
