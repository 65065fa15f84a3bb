#include "crema/im2col.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace crema {

namespace {

// Range [lo, hi) of output indices o in [0, out) for which o * stride + offset lies in
// [0, size): the positions that read real image data rather than padding.
inline void valid_range(int out, int stride, int offset, int size, int* lo, int* hi) {
  int first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int last = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
  first = std::min(first, out);
  last = std::min(std::max(last, first), out);
  *lo = first;
  *hi = last;
}

// One output row along the innermost axis: dst[o] = src[offset + o * stride] inside
// [lo, hi), 0 elsewhere (offset may be negative; only [lo, hi) is read).
inline void gather_row(const float* src, long offset, int stride, int lo, int hi, int out,
                       float* dst) {
  for (int o = 0; o < lo; ++o) dst[o] = 0.f;
  if (stride == 1) {
    if (hi > lo) std::memcpy(dst + lo, src + offset + lo, sizeof(float) * (hi - lo));
  } else {
    for (int o = lo; o < hi; ++o) dst[o] = src[offset + static_cast<long>(o) * stride];
  }
  for (int o = hi; o < out; ++o) dst[o] = 0.f;
}

// The adjoint of gather_row: dst[offset + o * stride] += src[o] inside [lo, hi).
inline void scatter_row(const float* src, long offset, int stride, int lo, int hi, float* dst) {
  if (stride == 1) {
    float* d = dst + offset + lo;
    const float* s = src + lo;
    for (int o = 0; o < hi - lo; ++o) d[o] += s[o];
  } else {
    for (int o = lo; o < hi; ++o) dst[offset + static_cast<long>(o) * stride] += src[o];
  }
}

}  // namespace

void im2col_cpu(const float* im, int channels, int height, int width, int kernel_h, int kernel_w,
                int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w,
                float* col, int col_ld) {
  const int out_h = conv_output_size(height, kernel_h, pad_h, stride_h, dilation_h);
  const int out_w = conv_output_size(width, kernel_w, pad_w, stride_w, dilation_w);
  if (out_h <= 0 || out_w <= 0) return;
  const long ld = col_ld < 0 ? static_cast<long>(out_h) * out_w : col_ld;
  const long plane = static_cast<long>(height) * width;
  for (int c = 0; c < channels; ++c) {
    const float* im_c = im + c * plane;
    for (int i = 0; i < kernel_h; ++i) {
      const int off_h = i * dilation_h - pad_h;
      int oh_lo, oh_hi;
      valid_range(out_h, stride_h, off_h, height, &oh_lo, &oh_hi);
      for (int j = 0; j < kernel_w; ++j) {
        const int off_w = j * dilation_w - pad_w;
        int ow_lo, ow_hi;
        valid_range(out_w, stride_w, off_w, width, &ow_lo, &ow_hi);
        float* row = col + ((static_cast<long>(c) * kernel_h + i) * kernel_w + j) * ld;
        for (int oh = 0; oh < out_h; ++oh) {
          float* dst = row + static_cast<long>(oh) * out_w;
          if (oh < oh_lo || oh >= oh_hi) {
            std::memset(dst, 0, sizeof(float) * out_w);
            continue;
          }
          const int ih = oh * stride_h + off_h;
          gather_row(im_c, static_cast<long>(ih) * width + off_w, stride_w, ow_lo, ow_hi, out_w,
                     dst);
        }
      }
    }
  }
}

void col2im_cpu(const float* col, int channels, int height, int width, int kernel_h, int kernel_w,
                int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w,
                float* im, int col_ld) {
  const int out_h = conv_output_size(height, kernel_h, pad_h, stride_h, dilation_h);
  const int out_w = conv_output_size(width, kernel_w, pad_w, stride_w, dilation_w);
  if (out_h <= 0 || out_w <= 0) return;
  const long ld = col_ld < 0 ? static_cast<long>(out_h) * out_w : col_ld;
  const long plane = static_cast<long>(height) * width;
  for (int c = 0; c < channels; ++c) {
    float* im_c = im + c * plane;
    for (int i = 0; i < kernel_h; ++i) {
      const int off_h = i * dilation_h - pad_h;
      int oh_lo, oh_hi;
      valid_range(out_h, stride_h, off_h, height, &oh_lo, &oh_hi);
      for (int j = 0; j < kernel_w; ++j) {
        const int off_w = j * dilation_w - pad_w;
        int ow_lo, ow_hi;
        valid_range(out_w, stride_w, off_w, width, &ow_lo, &ow_hi);
        const float* row = col + ((static_cast<long>(c) * kernel_h + i) * kernel_w + j) * ld;
        for (int oh = oh_lo; oh < oh_hi; ++oh) {
          const int ih = oh * stride_h + off_h;
          scatter_row(row + static_cast<long>(oh) * out_w, static_cast<long>(ih) * width + off_w,
                      stride_w, ow_lo, ow_hi, im_c);
        }
      }
    }
  }
}

namespace {

// Shared walk of the N-d transform. For every (channel, kernel offset) row and every
// output position along all but the innermost axis, calls
//   fn(row pointer into col for that output line, image channel pointer, offset of
//      o_last = 0 in it (may be negative: only [lo, hi) is touched), stride, lo, hi, out_last)
// or, when the line lies in the padding, fn with lo = hi = 0.
template <typename Col, typename Im, typename Fn>
void walk_nd(Col* col, Im* im, int channels, int num_axes, const int* im_shape, const int* kernel,
             const int* pad, const int* stride, const int* dilation, int col_ld, const Fn& fn) {
  std::vector<int> out(num_axes);
  long out_count = 1, kernel_count = 1, im_count = 1;
  for (int a = 0; a < num_axes; ++a) {
    out[a] = conv_output_size(im_shape[a], kernel[a], pad[a], stride[a], dilation[a]);
    if (out[a] <= 0) return;
    out_count *= out[a];
    kernel_count *= kernel[a];
    im_count *= im_shape[a];
  }
  const long ld = col_ld < 0 ? out_count : col_ld;
  if (num_axes == 0) {
    // No spatial axes: one column, one row per channel.
    for (int c = 0; c < channels; ++c) fn(col + c * ld, im + c, 0L, 1, 0, 1, 1);
    return;
  }
  const int last = num_axes - 1;
  const int out_last = out[last];
  // Element strides of the image along each axis.
  std::vector<long> im_stride(num_axes);
  {
    long s = 1;
    for (int a = last; a >= 0; --a) {
      im_stride[a] = s;
      s *= im_shape[a];
    }
  }
  const long lines = out_count / out_last;
  std::vector<int> k(num_axes), o(num_axes);
  for (int c = 0; c < channels; ++c) {
    Im* im_c = im + c * im_count;
    std::fill(k.begin(), k.end(), 0);
    for (long kidx = 0; kidx < kernel_count; ++kidx) {
      Col* row = col + (c * kernel_count + kidx) * ld;
      const int off_last = k[last] * dilation[last] - pad[last];
      int lo, hi;
      valid_range(out_last, stride[last], off_last, im_shape[last], &lo, &hi);
      std::fill(o.begin(), o.end(), 0);
      for (long line = 0; line < lines; ++line) {
        bool inside = true;
        long offset = off_last;
        for (int a = 0; a < last; ++a) {
          const int pos = o[a] * stride[a] + k[a] * dilation[a] - pad[a];
          if (pos < 0 || pos >= im_shape[a]) {
            inside = false;
            break;
          }
          offset += pos * im_stride[a];
        }
        Col* dst = row + line * out_last;
        if (inside)
          fn(dst, im_c, offset, stride[last], lo, hi, out_last);
        else
          fn(dst, im_c, 0L, stride[last], 0, 0, out_last);
        // Next output line (odometer over axes 0..last-1).
        for (int a = last - 1; a >= 0; --a) {
          if (++o[a] < out[a]) break;
          o[a] = 0;
        }
      }
      for (int a = last; a >= 0; --a) {
        if (++k[a] < kernel[a]) break;
        k[a] = 0;
      }
    }
  }
}

}  // namespace

void im2col_nd_cpu(const float* im, int channels, int num_axes, const int* im_shape,
                   const int* kernel, const int* pad, const int* stride, const int* dilation,
                   float* col, int col_ld) {
  walk_nd(col, im, channels, num_axes, im_shape, kernel, pad, stride, dilation, col_ld,
          [](float* dst, const float* src, long offset, int s, int lo, int hi, int n) {
            gather_row(src, offset, s, lo, hi, n, dst);
          });
}

void col2im_nd_cpu(const float* col, int channels, int num_axes, const int* im_shape,
                   const int* kernel, const int* pad, const int* stride, const int* dilation,
                   float* im, int col_ld) {
  walk_nd(col, im, channels, num_axes, im_shape, kernel, pad, stride, dilation, col_ld,
          [](const float* src, float* dst, long offset, int s, int lo, int hi, int /*n*/) {
            scatter_row(src, offset, s, lo, hi, dst);
          });
}

}  // namespace crema
