// The one place crema talks to cuDNN (src/cudnn_adapter.cu owns every cuDNN call; nothing
// else includes cudnn.h). GPU builds only. This header needs no cuDNN header, so layers can
// hold a ConvolutionOp without knowing whether cuDNN was found at build time.
//
// ConvolutionOp runs Caffe's convolution (cross-correlation, groups, padding, stride,
// dilation; 1, 2 or 3 spatial axes) through cuDNN's convolution API (present in cuDNN 8
// and 9). Algorithms are chosen by cudnnFindConvolution*Algorithm (a timed search) under a
// workspace limit, once per distinct geometry per process, and cached.
//
// Numerics (ConvShape::precision, from the net's `precision`):
//   FP32 (default): fp32 with FMA math only (no TF32 tensor cores), deterministic
//     algorithms only, and no FFT / Winograd algorithms, so GPU results match the CPU path
//     to fp32 rounding and repeat bit for bit.
//   TF32: fp32 tensors, tensor-core math allowed (TF32 multiplies, fp32 accumulation).
//   FP16 / BF16: x, w and y (and dx, dw, dy) are 16-bit arrays, accumulation in fp32 on the
//     tensor cores; the bias and its gradient stay fp32 (AddBias/BackwardBias take fp32 y).
// Environment overrides:
//   CREMA_CUDNN_WORKSPACE_MB    workspace limit per algorithm, MiB (default 512)
//   CREMA_CUDNN_ALLOW_TF32=1    allow TF32 tensor-core math (faster, ~1e-3 relative error)
//   CREMA_CUDNN_FAST_ALGOS=1    allow FFT and Winograd algorithms in FP32 too (the other
//                               precisions always allow them)
//   CREMA_CUDNN_NONDETERMINISTIC=1  allow non-deterministic (atomic) backward algorithms
#pragma once
#ifdef CREMA_WITH_CUDA

#include <memory>
#include <string>
#include <vector>

#include "crema/mixed_precision.hpp"

namespace crema {
namespace cudnn {

// Whether this build has cuDNN (CREMA_WITH_CUDNN).
bool Available();
// "9.19.0" (the version compiled against) or "none".
std::string VersionString();

// The geometry of one convolution in the conv view (input -> output).
struct ConvShape {
  int num = 0;         // images
  int channels = 0;    // input channels C
  int num_output = 0;  // output channels O
  int groups = 1;
  std::vector<int> input, output;  // spatial sizes (d of them, 1 <= d <= 3)
  std::vector<int> kernel, pad, stride, dilation;
  Precision precision = Precision::FP32;

  bool operator==(const ConvShape& o) const {
    return precision == o.precision && num == o.num && channels == o.channels &&
           num_output == o.num_output &&
           groups == o.groups && input == o.input && output == o.output && kernel == o.kernel &&
           pad == o.pad && stride == o.stride && dilation == o.dilation;
  }
  bool operator!=(const ConvShape& o) const { return !(*this == o); }
  std::string ToString() const;
};

// One convolution's descriptors and chosen algorithms. Device pointers throughout; x is
// [num, C, input...], w is [O, C/groups, kernel...], y is [num, O, output...], b is [O].
// x, w, y and their gradients are float arrays, or 16-bit arrays for FP16/BF16 (hence
// void*); b, db and the y/dy given to AddBias/BackwardBias are always float.
class ConvolutionOp {
 public:
  ConvolutionOp();
  ~ConvolutionOp();
  ConvolutionOp(const ConvolutionOp&) = delete;
  ConvolutionOp& operator=(const ConvolutionOp&) = delete;

  // (Re)builds the descriptors and picks algorithms when `shape` differs from the current
  // one; cheap otherwise. Throws crema::Error when cuDNN is missing or cannot run it.
  void Setup(const ConvShape& shape);
  const ConvShape& shape() const { return shape_; }

  void Forward(const void* x, const void* w, void* y);         // y = x * w
  void AddBias(const float* b, float* y);                       // y += b (per channel)
  void BackwardData(const void* w, const void* dy, void* dx);   // dx = adjoint (overwrites)
  // dw += (accumulate) or dw = (overwrite) the filter gradient.
  void BackwardFilter(const void* x, const void* dy, void* dw, bool accumulate = true);
  void BackwardBias(const float* dy, float* db);                // db += (accumulates)

  // The algorithms chosen, for logs: "fwd 1, bwd-data 1, bwd-filter 1 (workspace N bytes)".
  std::string Description() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ConvShape shape_;
  bool configured_ = false;
};

}  // namespace cudnn
}  // namespace crema

#endif  // CREMA_WITH_CUDA
