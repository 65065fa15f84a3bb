// The one place crema talks to cuDNN (src/cudnn_adapter.cu owns every cuDNN call; nothing
// else includes cudnn.h). GPU builds only. This header needs no cuDNN header, so layers can
// hold a ConvolutionOp without knowing whether cuDNN was found at build time.
//
// ConvolutionOp runs Caffe's convolution (cross-correlation, groups, padding, stride,
// dilation; 1, 2 or 3 spatial axes) through cuDNN's convolution API (present in cuDNN 8
// and 9). Algorithms are chosen by cudnnFindConvolution*Algorithm (a timed search) under a
// workspace limit, once per distinct geometry per process, and cached.
//
// Numerics: fp32 with FMA math only (no TF32 tensor cores), deterministic algorithms only,
// and no FFT / Winograd algorithms, so GPU results match the CPU path to fp32 rounding and
// repeat bit for bit. Environment overrides:
//   CREMA_CUDNN_WORKSPACE_MB    workspace limit per algorithm, MiB (default 512)
//   CREMA_CUDNN_ALLOW_TF32=1    allow TF32 tensor-core math (faster, ~1e-3 relative error)
//   CREMA_CUDNN_FAST_ALGOS=1    allow FFT and Winograd algorithms
//   CREMA_CUDNN_NONDETERMINISTIC=1  allow non-deterministic (atomic) backward algorithms
#pragma once
#ifdef CREMA_WITH_CUDA

#include <memory>
#include <string>
#include <vector>

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

  bool operator==(const ConvShape& o) const {
    return num == o.num && channels == o.channels && num_output == o.num_output &&
           groups == o.groups && input == o.input && output == o.output && kernel == o.kernel &&
           pad == o.pad && stride == o.stride && dilation == o.dilation;
  }
  bool operator!=(const ConvShape& o) const { return !(*this == o); }
  std::string ToString() const;
};

// One convolution's descriptors and chosen algorithms. Device pointers throughout; x is
// [num, C, input...], w is [O, C/groups, kernel...], y is [num, O, output...], b is [O].
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

  void Forward(const float* x, const float* w, float* y);           // y = x * w
  void AddBias(const float* b, float* y);                           // y += b (per channel)
  void BackwardData(const float* w, const float* dy, float* dx);    // dx = adjoint (overwrites)
  void BackwardFilter(const float* x, const float* dy, float* dw);  // dw += (accumulates)
  void BackwardBias(const float* dy, float* db);                    // db += (accumulates)

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
