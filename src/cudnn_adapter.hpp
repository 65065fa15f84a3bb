// The one place crema talks to cuDNN (src/cudnn_adapter.cu owns every cuDNN call; nothing
// else includes cudnn.h). GPU builds only. This header needs no cuDNN header, so layers can
// hold a ConvolutionOp without knowing whether cuDNN was found at build time.
//
// ConvolutionOp runs Caffe's convolution (cross-correlation, groups, padding, stride,
// dilation; 1, 2 or 3 spatial axes). With cuDNN >= 9 it runs on cuDNN's graph (backend)
// API: each direction (forward, backward data, backward filter) is a one-operation graph;
// the engine configurations cuDNN's heuristics list (mode A, else FALLBACK) that keep the
// precision's promises below (read from their numerical notes) and fit the workspace limit
// are built as execution plans and timed, and the fastest is kept, once per distinct
// geometry per process (the plan per geometry and host thread). A direction the graph API
// cannot run (no engine qualifies, or a pointer less than 16-byte aligned) runs on the
// legacy API instead, with a warning. The legacy API (cudnnFindConvolution*Algorithm, a
// timed search, and cudnnConvolution*; deprecated in cuDNN 9) runs everything with
// cuDNN 8 or CREMA_CUDNN_API=legacy. The fused ForwardBiasActivation (fp32 only) is a
// legacy call: IMPLICIT_PRECOMP_GEMM, or the legacy forward algorithm where that was chosen
// (see there).
//
// Numerics (ConvShape::precision, from the net's `precision`):
//   FP32 (default): fp32 with FMA math only (no TF32 tensor cores), deterministic
//     algorithms only, and no FFT / Winograd algorithms, so GPU results match the CPU path
//     to fp32 rounding and repeat bit for bit.
//   TF32: fp32 tensors, tensor-core math allowed (TF32 multiplies, fp32 accumulation).
//   FP16 / BF16: x, w and y (and dx, dw, dy) are 16-bit arrays, accumulation in fp32 on the
//     tensor cores; the bias and its gradient stay fp32 (AddBias/BackwardBias take fp32 y).
// Layout (ConvShape::layout): x, y, w (and dx, dy, dw) in Caffe's NCHW order, or channels
// last (NHWC), where cuDNN's fast 16-bit tensor-core kernels work without transposing
// internally. The fp32 y/dy of AddBias/BackwardBias are NCHW in both.
// Environment overrides:
//   CREMA_CUDNN_WORKSPACE_MB    workspace limit per algorithm, MiB (default 512)
//   CREMA_CUDNN_ALLOW_TF32=1    allow TF32 tensor-core math (faster, ~1e-3 relative error)
//   CREMA_CUDNN_FAST_ALGOS=1    allow FFT and Winograd algorithms in FP32 too (the other
//                               precisions always allow them)
//   CREMA_CUDNN_NONDETERMINISTIC=1  allow non-deterministic (atomic) backward algorithms
//   CREMA_CUDNN_API=legacy      the legacy API for every direction (default: graph)
//   CREMA_CUDNN_MAX_ENGINES     graph API: configurations built and timed per geometry and
//                               direction, best-ranked first (default 10)
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstdint>
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

// Memory order of x, y, w and their gradients as cuDNN reads and writes them (d spatial
// axes k..., i..., o...; a 1-D convolution is run as 1 x W, so its NHWC is [num][W][C]):
//   NCHW: x [num][C][i...], y [num][O][o...], w [O][C/groups][k...]   (Caffe's packed order)
//   NHWC: x [num][i...][C], y [num][o...][O], w [O][k...][C/groups]   (channels last; w is
//         cuDNN's NHWC filter format: as in NCHW, output channel o's filter spans the
//         C/groups channels of o's group, only with the channel axis innermost)
enum class ConvLayout { NCHW, NHWC };

// The geometry of one convolution in the conv view (input -> output).
struct ConvShape {
  int num = 0;         // images
  int channels = 0;    // input channels C
  int num_output = 0;  // output channels O
  int groups = 1;
  std::vector<int> input, output;  // spatial sizes (d of them, 1 <= d <= 3)
  std::vector<int> kernel, pad, stride, dilation;
  Precision precision = Precision::FP32;
  ConvLayout layout = ConvLayout::NCHW;

  bool operator==(const ConvShape& o) const {
    return precision == o.precision && layout == o.layout && num == o.num &&
           channels == o.channels && num_output == o.num_output && groups == o.groups &&
           input == o.input && output == o.output && kernel == o.kernel && pad == o.pad &&
           stride == o.stride && dilation == o.dilation;
  }
  bool operator!=(const ConvShape& o) const { return !(*this == o); }
  std::string ToString() const;
};

// One convolution's descriptors and chosen algorithms. Device pointers throughout; x is
// [num, C, input...], w is [O, C/groups, kernel...], y is [num, O, output...] in the
// shape's layout (see ConvLayout), b is [O].
// x, w, y and their gradients are float arrays, or 16-bit arrays for FP16/BF16 (hence
// void*); b, db and the y/dy given to AddBias/BackwardBias are always float and NCHW.
// ForwardBiasActivation fuses Forward, AddBias and optionally a ReLU into one cuDNN call
// (cudnnConvolutionBiasActivationForward); fp32 shapes only, y in the shape's layout.
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
  void AddBias(const float* b, float* y);                      // y += b (per channel)
  void BackwardData(const void* w, const void* dy, void* dx);  // dx = adjoint (overwrites)
  // dw += (accumulate) or dw = (overwrite) the filter gradient.
  void BackwardFilter(const void* x, const void* dy, void* dw, bool accumulate = true);
  void BackwardBias(const float* dy, float* db);  // db += (accumulates)
  // y = act(conv(x, w) + bias) in one cuDNN call (cudnnConvolutionBiasActivationForward), for
  // fp32 tensors (shape precision FP32 or TF32) in the shape's layout; bias [O] fp32; act is
  // ReLU (relu) or the identity. cuDNN documents the identity as running only with the
  // IMPLICIT_PRECOMP_GEMM algorithm (ReLU with any): the identity runs with it, ReLU with
  // the legacy forward algorithm where the legacy API was chosen, unless cuDNN refuses that
  // (then, and on the graph API, IMPLICIT_PRECOMP_GEMM, for this shape from then on); that
  // workspace is sized on its first use after Setup. Throws
  // crema::Error when cuDNN refuses (e.g. CUDNN_STATUS_NOT_SUPPORTED) or the shape is 16-bit.
  void ForwardBiasActivation(const float* x, const float* w, const float* bias, bool relu,
                             float* y);

  // What runs each direction, for logs: "fwd engine 12 (tensor-core; workspace N bytes),
  // bwd-data engine ..., bwd-filter accumulate engine ..." for the graph API's plans (those
  // searched so far), then "legacy API: fwd algo 1, ... (workspace N bytes)" when the
  // legacy API runs some direction.
  std::string Description() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ConvShape shape_;
  bool configured_ = false;
};

// ---------------------------------------------------------------------------------------
// Deviceless planning: the graph API's search up to, not including, the timing, for a GPU
// described rather than present (cuDNN >= 9.8 builds heuristics and execution plans from a
// device-property descriptor, which cuDNN serialises as JSON). It builds the same graph,
// asks the same heuristics, applies the same rules and builds the same plans as
// ConvolutionOp does on a device, so the descriptors crema writes meet the real cuDNN
// library on a machine without a GPU (the tests do this for every zoo convolution).
enum class Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

// One engine configuration of a heuristics list, as the search saw it.
struct EngineReport {
  bool fallback_list = false;  // listed by heuristics mode FALLBACK (else mode A)
  int position = 0;            // its place in that list (best guess first)
  int64_t engine = -1;         // cuDNN's global engine index
  std::string notes;           // its numerical notes, e.g. "tensor-core,winograd"
  bool allowed = false;        // the notes keep the shape's precision promises (see above)
  bool built = false;          // its execution plan finalised (tried for allowed ones only,
                               // at most CREMA_CUDNN_MAX_ENGINES per list)
  int64_t workspace = -1;      // the plan's workspace, bytes (when built)
  bool candidate = false;      // built within the workspace limit: the search would time it
};

// Whether this build and the cuDNN library loaded can plan without a device (>= 9.8).
bool DevicelessPlanningAvailable();

// The configurations the search examines for one direction of `shape` (`accumulate`: the
// filter gradient is added to dw, beta 1) on the GPU `device_json` describes: mode A's list,
// then FALLBACK's when mode A yields no candidate, as on a device. Throws crema::Error when
// cuDNN cannot plan without a device, rejects the description or the graph.
std::vector<EngineReport> PlanDeviceless(const ConvShape& shape, Direction direction,
                                         bool accumulate, const std::string& device_json);

// cuDNN's description of CUDA device `device` as JSON, for PlanDeviceless elsewhere (needs
// the device). Throws crema::Error when cuDNN cannot describe it.
std::string DevicePropertiesJson(int device);

// ---------------------------------------------------------------------------------------
// The other layers' ops (fp32 only; device pointers; shapes in elements). Each holds its
// descriptors in an Impl made on first Setup; Setup is cheap when nothing changed; every
// cuDNN call is checked (crema::Error). In builds without cuDNN every entry point throws.
// The layers using them are in layers/cudnn_layers.hpp; the engine choice in
// layers/engines.cpp.
// They use cuDNN's legacy calls (pooling and activations are deprecated in cuDNN 9, softmax
// and LRN are not). The graph API is no way out yet: asked, deviceless, for an H100, cuDNN
// 9.19's heuristics list no engine at all for a graph of pointwise operations alone (an
// activation, a bias addition) and, for max pooling (a resample graph), one engine of the
// FALLBACK list in NCHW and none in NHWC.

// 2-D pooling of x [num, channels, height, width] into y [num, channels, pooled_h, pooled_w]
// (cuDNN's output size: floor((H + 2 pad - k) / stride) + 1; Setup checks it).
//   MAX: CUDNN_POOLING_MAX_DETERMINISTIC (padding never wins).
//   AVE: CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING (divisor kernel_h * kernel_w).
struct PoolShape {
  bool max = true;
  int num = 0, channels = 0, height = 0, width = 0;
  int kernel_h = 0, kernel_w = 0, pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
  int pooled_h = 0, pooled_w = 0;
  bool operator==(const PoolShape& o) const {
    return max == o.max && num == o.num && channels == o.channels && height == o.height &&
           width == o.width && kernel_h == o.kernel_h && kernel_w == o.kernel_w &&
           pad_h == o.pad_h && pad_w == o.pad_w && stride_h == o.stride_h &&
           stride_w == o.stride_w && pooled_h == o.pooled_h && pooled_w == o.pooled_w;
  }
};

class PoolingOp {
 public:
  PoolingOp();
  ~PoolingOp();
  PoolingOp(const PoolingOp&) = delete;
  PoolingOp& operator=(const PoolingOp&) = delete;
  void Setup(const PoolShape& shape);
  void Forward(const float* x, float* y);
  // dx = (overwrites) the gradient; needs the forward's x and y.
  void Backward(const float* y, const float* dy, const float* x, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PoolShape shape_;
  bool configured_ = false;
};

// Softmax over the channel axis of [outer, channels, inner] (CUDNN_SOFTMAX_ACCURATE:
// max subtracted; CUDNN_SOFTMAX_MODE_CHANNEL on the tensor [outer, channels, inner, 1]).
// Both calls may run in place (y == x; dx == dy).
class SoftmaxOp {
 public:
  SoftmaxOp();
  ~SoftmaxOp();
  SoftmaxOp(const SoftmaxOp&) = delete;
  SoftmaxOp& operator=(const SoftmaxOp&) = delete;
  void Setup(int outer, int channels, int inner);
  void Forward(const float* x, float* y);
  void Backward(const float* y, const float* dy, float* dx);  // dx = (overwrites)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int outer_ = -1, channels_ = -1, inner_ = -1;
};

// Elementwise activations on `count` floats:
//   RELU: max(x, 0)   SIGMOID: 1 / (1 + exp(-x))   TANH: tanh(x)
//   ELU: x > 0 ? x : coef (exp(x) - 1)   (coef = alpha)
//   SWISH: x * sigmoid(coef x)            (coef = beta)
// Backward takes y, dy and x (dx = overwrites; dx may be dy).
enum class Activation { RELU, SIGMOID, TANH, ELU, SWISH };

class ActivationOp {
 public:
  ActivationOp();
  ~ActivationOp();
  ActivationOp(const ActivationOp&) = delete;
  ActivationOp& operator=(const ActivationOp&) = delete;
  void Setup(Activation mode, double coef, int64_t count);
  void Forward(const float* x, float* y);
  void Backward(const float* y, const float* dy, const float* x, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Activation mode_ = Activation::RELU;
  double coef_ = 0;
  int64_t count_ = -1;
};

// Cross-channel LRN on x [num, channels, height, width] (cudnnLRNCrossChannel*):
//   y = x * (k + alpha / n * sum over the n channels centred on c of x^2)^-beta,
// which is Caffe's ACROSS_CHANNELS formula for odd n (cuDNN divides alpha by n itself).
// LRNSupported says whether cuDNN accepts (n, beta, k) (and n is odd); `why` gets the
// reason when not.
bool LRNSupported(int n, double beta, double k, std::string* why);

class LRNOp {
 public:
  LRNOp();
  ~LRNOp();
  LRNOp(const LRNOp&) = delete;
  LRNOp& operator=(const LRNOp&) = delete;
  void Setup(int n, double alpha, double beta, double k, int num, int channels, int height,
             int width);
  void Forward(const float* x, float* y);
  // dx = (overwrites); needs the forward's x and y.
  void Backward(const float* y, const float* dy, const float* x, float* dx);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<double> key_;
};

}  // namespace cudnn
}  // namespace crema

#endif  // CREMA_WITH_CUDA
