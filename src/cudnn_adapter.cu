// Every cuDNN call in crema (see cudnn_adapter.hpp for the contract). Built in GPU builds;
// the cuDNN part only when CMake found cuDNN >= 8 (CREMA_WITH_CUDNN), otherwise every
// entry point reports that cuDNN is missing.
#include "src/cudnn_adapter.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

#include "crema/common.hpp"
#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"

#ifdef CREMA_WITH_CUDNN
#include <cudnn.h>
#endif

namespace crema {
namespace cudnn {

std::string ConvShape::ToString() const {
  std::ostringstream out;
  auto list = [&out](const char* name, const std::vector<int>& v) {
    out << " " << name;
    for (size_t i = 0; i < v.size(); ++i) out << (i ? "x" : " ") << v[i];
  };
  out << PrecisionName(precision) << " n " << num << " c " << channels << " o " << num_output
      << " g " << groups;
  list("in", input);
  list("out", output);
  list("k", kernel);
  list("pad", pad);
  list("stride", stride);
  list("dil", dilation);
  if (layout == ConvLayout::NHWC) out << " NHWC";
  return out.str();
}

#if defined(CREMA_WITH_CUDNN) && defined(CUDNN_VERSION) && CUDNN_VERSION >= 8000

bool Available() {
  return true;
}

std::string VersionString() {
  std::ostringstream out;
  out << CUDNN_MAJOR << "." << CUDNN_MINOR << "." << CUDNN_PATCHLEVEL;
  return out.str();
}

namespace {

void check(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    CREMA_THROW("cuDNN error in " << what << ": " << cudnnGetErrorString(status));
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

size_t workspace_limit() {
  const char* v = std::getenv("CREMA_CUDNN_WORKSPACE_MB");
  long mb = v ? std::atol(v) : 512;
  if (mb < 0) mb = 0;
  return static_cast<size_t>(mb) << 20;
}

// One cuDNN handle per host thread, on crema's stream (src/cuda_stream.hpp) like cuBLAS and
// the kernels.
cudnnHandle_t handle() {
  thread_local cudnnHandle_t h = [] {
    cudnnHandle_t created = nullptr;
    check(cudnnCreate(&created), "cudnnCreate");
    check(cudnnSetStream(created, cuda_stream()), "cudnnSetStream");
    return created;
  }();
  return h;
}

// One growing device workspace per host thread, shared by every convolution it runs.
struct Workspace {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Workspace() {
    if (ptr) cudaFree(ptr);
  }
  void* get(size_t need) {
    if (need == 0) return nullptr;
    if (need > bytes) {
      if (ptr) cudaFree(ptr);
      ptr = nullptr;
      bytes = 0;
      CudaSharedScratchReallocated();
      const cudaError_t status = cudaMalloc(&ptr, need);
      if (status != cudaSuccess)
        CREMA_THROW("cuDNN workspace: cudaMalloc of "
                    << need << " bytes failed: " << cudaGetErrorString(status)
                    << " (lower CREMA_CUDNN_WORKSPACE_MB)");
      bytes = need;
    }
    return ptr;
  }
};
Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

struct Algorithms {
  cudnnConvolutionFwdAlgo_t fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

// Chosen algorithms per (device, geometry), shared by all layers of the process.
std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, Algorithms>& cache() {
  static std::map<std::string, Algorithms> c;
  return c;
}

bool fast_fwd(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool fast_bwd_data(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool fast_bwd_filter(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}
bool tensor_math(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

}  // namespace

cudnnDataType_t data_type(Precision precision) {
  switch (precision) {
    case Precision::FP16:
      return CUDNN_DATA_HALF;
    case Precision::BF16:
      return CUDNN_DATA_BFLOAT16;
    default:
      return CUDNN_DATA_FLOAT;
  }
}

// The algorithm of the fused convolution + bias + identity: cuDNN documents the identity
// activation as running only with it. ReLU runs with any algorithm: it first tries the one
// Setup chose for the plain forward and falls back to this one if cuDNN refuses.
constexpr cudnnConvolutionFwdAlgo_t kFusedAlgo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;

struct ConvolutionOp::Impl {
  // x, y, w in the op's data type; y32 is y's geometry in fp32 (for the bias).
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, y32 = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;  // of ForwardBiasActivation
  Algorithms algos;
  // kFusedAlgo's workspace for the configured shape, once sized (fused_sized), and whether
  // cuDNN refused the fused ReLU with the plain forward's algorithm (then kFusedAlgo).
  size_t fused_bytes = 0;
  bool fused_sized = false;
  bool relu_needs_fused_algo = false;

  Impl() {
    check(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
    check(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
    check(cudnnCreateTensorDescriptor(&y32), "cudnnCreateTensorDescriptor");
    check(cudnnCreateTensorDescriptor(&bias), "cudnnCreateTensorDescriptor");
    check(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
    check(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
    check(cudnnCreateActivationDescriptor(&act), "cudnnCreateActivationDescriptor");
  }
  ~Impl() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(y32);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyActivationDescriptor(act);
  }

  // kFusedAlgo's workspace bytes, queried on the first use after configure().
  size_t fused_workspace() {
    if (!fused_sized) {
      check(cudnnGetConvolutionForwardWorkspaceSize(handle(), x, w, conv, y, kFusedAlgo,
                                                    &fused_bytes),
            "cudnnGetConvolutionForwardWorkspaceSize");
      fused_sized = true;
    }
    return fused_bytes;
  }

  // dims are [N, C, spatial...]; the strides pack them in NCHW order, or in NHWC order
  // (C innermost, then the spatial axes, N outermost).
  static void set_tensor(cudnnTensorDescriptor_t desc, const std::vector<int>& dims,
                         cudnnDataType_t type = CUDNN_DATA_FLOAT,
                         ConvLayout layout = ConvLayout::NCHW) {
    const int nb = static_cast<int>(dims.size());
    std::vector<int> order(nb);  // axes from outermost to innermost
    for (int i = 0; i < nb; ++i) order[i] = i;
    if (layout == ConvLayout::NHWC) {
      for (int i = 1; i + 1 < nb; ++i) order[i] = i + 1;
      order[nb - 1] = 1;
    }
    std::vector<int> strides(nb);
    int stride = 1;
    for (int i = nb - 1; i >= 0; --i) {
      strides[order[i]] = stride;
      stride *= dims[order[i]];
    }
    check(cudnnSetTensorNdDescriptor(desc, type, static_cast<int>(dims.size()), dims.data(),
                                     strides.data()),
          "cudnnSetTensorNdDescriptor");
  }

  void configure(const ConvShape& s) {
    fused_sized = false;  // new descriptors: the fused workspace is sized again
    relu_needs_fused_algo = false;
    const int d = static_cast<int>(s.kernel.size());
    if (d < 1 || d > 3) CREMA_THROW("cuDNN convolution supports 1 to 3 spatial axes, got " << d);
    // cuDNN wants at least 2 spatial axes: a 1-D convolution becomes 1 x W.
    auto widen = [d](const std::vector<int>& v, int fill) {
      std::vector<int> out = v;
      if (d == 1) out.insert(out.begin(), fill);
      return out;
    };
    const std::vector<int> in = widen(s.input, 1), out = widen(s.output, 1), k = widen(s.kernel, 1),
                           pad = widen(s.pad, 0), stride = widen(s.stride, 1),
                           dil = widen(s.dilation, 1);
    const int nd = static_cast<int>(k.size());

    std::vector<int> xdims = {s.num, s.channels}, ydims = {s.num, s.num_output},
                     wdims = {s.num_output, s.channels / s.groups}, bdims = {1, s.num_output};
    for (int i = 0; i < nd; ++i) {
      xdims.push_back(in[i]);
      ydims.push_back(out[i]);
      wdims.push_back(k[i]);
      bdims.push_back(1);
    }
    const cudnnDataType_t type = data_type(s.precision);
    set_tensor(x, xdims, type, s.layout);
    set_tensor(y, ydims, type, s.layout);
    set_tensor(y32, ydims);  // the fp32 y of AddBias/BackwardBias: NCHW in every layout
    set_tensor(bias, bdims);
    // Filter dims are [O, C/groups, k...] in both formats; NHWC stores them [O][k...][C/groups].
    const cudnnTensorFormat_t filter_format =
        s.layout == ConvLayout::NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    check(cudnnSetFilterNdDescriptor(w, type, filter_format, static_cast<int>(wdims.size()),
                                     wdims.data()),
          "cudnnSetFilterNdDescriptor");
    check(cudnnSetConvolutionNdDescriptor(conv, nd, pad.data(), stride.data(), dil.data(),
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
          "cudnnSetConvolutionNdDescriptor");
    check(cudnnSetConvolutionGroupCount(conv, s.groups), "cudnnSetConvolutionGroupCount");
    // Tensor-core math: asked for by the precision (TF32, 16-bit), or by the environment.
    // For fp32 tensors CUDNN_DEFAULT_MATH permits TF32; 16-bit tensors use tensor ops.
    const bool tf32 = s.precision != Precision::FP32 || env_flag("CREMA_CUDNN_ALLOW_TF32");
    const cudnnMathType_t math = IsHalfPrecision(s.precision) ? CUDNN_TENSOR_OP_MATH
                                 : tf32                       ? CUDNN_DEFAULT_MATH
                                                              : CUDNN_FMA_MATH;
    check(cudnnSetConvolutionMathType(conv, math), "cudnnSetConvolutionMathType");

    // The output geometry cuDNN derives must be crema's (an internal invariant).
    std::vector<int> cudnn_out(nd + 2);
    check(cudnnGetConvolutionNdForwardOutputDim(conv, x, w, nd + 2, cudnn_out.data()),
          "cudnnGetConvolutionNdForwardOutputDim");
    CHECK(cudnn_out == ydims) << "cuDNN output geometry differs from crema's for " << s.ToString();

    std::ostringstream key;
    int device = 0;
    cudaGetDevice(&device);
    // Reduced precisions give up bit-exactness with the CPU anyway: FFT and Winograd
    // algorithms are allowed for them (still deterministic ones only).
    const bool fast = s.precision != Precision::FP32 || env_flag("CREMA_CUDNN_FAST_ALGOS");
    key << "dev " << device << " " << s.ToString() << (tf32 ? " tf32" : "") << (fast ? " fast" : "")
        << (env_flag("CREMA_CUDNN_NONDETERMINISTIC") ? " nondet" : "") << " ws "
        << workspace_limit();
    {
      std::lock_guard<std::mutex> lock(cache_mutex());
      auto it = cache().find(key.str());
      if (it != cache().end()) {
        algos = it->second;
        return;
      }
    }
    algos = choose(tf32, fast);
    std::lock_guard<std::mutex> lock(cache_mutex());
    cache()[key.str()] = algos;
  }

  Algorithms choose(bool tf32, bool fast) {
    const size_t limit = workspace_limit();
    const bool nondet = env_flag("CREMA_CUDNN_NONDETERMINISTIC");
    Algorithms a;
    cudnnHandle_t h = handle();

    {  // Forward
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int n = 0;
      check(cudnnFindConvolutionForwardAlgorithm(h, x, w, conv, y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                 &n, perf),
            "cudnnFindConvolutionForwardAlgorithm");
      auto bytes_of = [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, x, w, conv, y, algo, bytes);
      };
      if (!pick(perf, n, fast_fwd, fast, tf32, nondet, limit, bytes_of, &a.fwd, &a.fwd_bytes) &&
          !pick(perf, n, fast_fwd, true, tf32, true, limit, bytes_of, &a.fwd, &a.fwd_bytes)) {
        a.fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // needs no workspace
        check(bytes_of(a.fwd, &a.fwd_bytes), "cudnnGetConvolutionForwardWorkspaceSize");
      }
    }
    {  // Backward data
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int n = 0;
      check(cudnnFindConvolutionBackwardDataAlgorithm(
                h, w, y, conv, x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf),
            "cudnnFindConvolutionBackwardDataAlgorithm");
      auto bytes_of = [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, w, y, conv, x, algo, bytes);
      };
      if (!pick(perf, n, fast_bwd_data, fast, tf32, nondet, limit, bytes_of, &a.bwd_data,
                &a.bwd_data_bytes) &&
          !pick(perf, n, fast_bwd_data, true, tf32, true, limit, bytes_of, &a.bwd_data,
                &a.bwd_data_bytes)) {
        a.bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
        check(bytes_of(a.bwd_data, &a.bwd_data_bytes),
              "cudnnGetConvolutionBackwardDataWorkspaceSize");
      }
    }
    {  // Backward filter
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int n = 0;
      check(cudnnFindConvolutionBackwardFilterAlgorithm(
                h, x, y, conv, w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
            "cudnnFindConvolutionBackwardFilterAlgorithm");
      auto bytes_of = [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x, y, conv, w, algo, bytes);
      };
      if (!pick(perf, n, fast_bwd_filter, fast, tf32, nondet, limit, bytes_of, &a.bwd_filter,
                &a.bwd_filter_bytes) &&
          !pick(perf, n, fast_bwd_filter, true, tf32, true, limit, bytes_of, &a.bwd_filter,
                &a.bwd_filter_bytes)) {
        a.bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
        check(bytes_of(a.bwd_filter, &a.bwd_filter_bytes),
              "cudnnGetConvolutionBackwardFilterWorkspaceSize");
      }
    }
    return a;
  }

  // The fastest measured algorithm (perf is sorted by time) that ran, fits the workspace
  // limit and passes the filters; its workspace size is queried again under the
  // descriptor's math type. False when none qualifies.
  template <typename Perf, typename Algo, typename BytesOf>
  static bool pick(const Perf* perf, int n, bool (*is_fast)(Algo), bool allow_fast, bool allow_tf32,
                   bool allow_nondet, size_t limit, const BytesOf& bytes_of, Algo* algo,
                   size_t* bytes) {
    for (int i = 0; i < n; ++i) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS) continue;
      if (!allow_fast && is_fast(p.algo)) continue;
      if (!allow_tf32 && tensor_math(p.mathType)) continue;
      if (!allow_nondet && p.determinism != CUDNN_DETERMINISTIC) continue;
      size_t need = 0;
      if (bytes_of(p.algo, &need) != CUDNN_STATUS_SUCCESS || need > limit) continue;
      *algo = p.algo;
      *bytes = need;
      return true;
    }
    return false;
  }
};

ConvolutionOp::ConvolutionOp() : impl_(new Impl) {}
ConvolutionOp::~ConvolutionOp() = default;

void ConvolutionOp::Setup(const ConvShape& shape) {
  if (configured_ && shape == shape_) return;
  configured_ = false;
  impl_->configure(shape);
  shape_ = shape;
  configured_ = true;
  VLOG(1) << "cuDNN convolution " << shape.ToString() << ": " << Description();
}

void ConvolutionOp::Forward(const void* x, const void* w, void* y) {
  CHECK(configured_);
  const float one = 1.f, zero = 0.f;
  void* ws = workspace().get(impl_->algos.fwd_bytes);
  check(cudnnConvolutionForward(handle(), &one, impl_->x, x, impl_->w, w, impl_->conv,
                                impl_->algos.fwd, ws, impl_->algos.fwd_bytes, &zero, impl_->y, y),
        "cudnnConvolutionForward");
}

void ConvolutionOp::AddBias(const float* b, float* y) {
  CHECK(configured_);
  const float one = 1.f;
  check(cudnnAddTensor(handle(), &one, impl_->bias, b, &one, impl_->y32, y), "cudnnAddTensor");
}

void ConvolutionOp::ForwardBiasActivation(const float* x, const float* w, const float* bias,
                                          bool relu, float* y) {
  CHECK(configured_);
  if (IsHalfPrecision(shape_.precision))
    CREMA_THROW("cuDNN fused convolution + bias + activation takes fp32 tensors, not "
                << PrecisionName(shape_.precision) << " (" << shape_.ToString() << ")");
  // NOT_PROPAGATE_NAN: what cuDNN's fused kernels implement; the coefficient (the clipped
  // ReLU's ceiling) is unused.
  check(cudnnSetActivationDescriptor(impl_->act,
                                     relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                     CUDNN_NOT_PROPAGATE_NAN, 0.0),
        "cudnnSetActivationDescriptor");
  // y = act(1 * conv(x, w) + 0 * z + bias) with z = y (cuDNN allows z to alias y).
  const float one = 1.f, zero = 0.f;
  auto run = [&](cudnnConvolutionFwdAlgo_t algo, size_t bytes) {
    void* ws = workspace().get(bytes);
    return cudnnConvolutionBiasActivationForward(handle(), &one, impl_->x, x, impl_->w, w,
                                                 impl_->conv, algo, ws, bytes, &zero, impl_->y, y,
                                                 impl_->bias, bias, impl_->act, impl_->y, y);
  };
  if (relu && !impl_->relu_needs_fused_algo) {
    const cudnnStatus_t status = run(impl_->algos.fwd, impl_->algos.fwd_bytes);
    if (status == CUDNN_STATUS_SUCCESS) return;
    if (status != CUDNN_STATUS_NOT_SUPPORTED && status != CUDNN_STATUS_BAD_PARAM)
      check(status, "cudnnConvolutionBiasActivationForward");
    impl_->relu_needs_fused_algo = true;
  }
  check(run(kFusedAlgo, impl_->fused_workspace()), "cudnnConvolutionBiasActivationForward");
}

void ConvolutionOp::BackwardData(const void* w, const void* dy, void* dx) {
  CHECK(configured_);
  const float one = 1.f, zero = 0.f;
  void* ws = workspace().get(impl_->algos.bwd_data_bytes);
  check(cudnnConvolutionBackwardData(handle(), &one, impl_->w, w, impl_->y, dy, impl_->conv,
                                     impl_->algos.bwd_data, ws, impl_->algos.bwd_data_bytes, &zero,
                                     impl_->x, dx),
        "cudnnConvolutionBackwardData");
}

void ConvolutionOp::BackwardFilter(const void* x, const void* dy, void* dw, bool accumulate) {
  CHECK(configured_);
  const float one = 1.f, beta = accumulate ? 1.f : 0.f;
  void* ws = workspace().get(impl_->algos.bwd_filter_bytes);
  check(cudnnConvolutionBackwardFilter(handle(), &one, impl_->x, x, impl_->y, dy, impl_->conv,
                                       impl_->algos.bwd_filter, ws, impl_->algos.bwd_filter_bytes,
                                       &beta, impl_->w, dw),
        "cudnnConvolutionBackwardFilter");
}

void ConvolutionOp::BackwardBias(const float* dy, float* db) {
  CHECK(configured_);
  const float one = 1.f;
  check(cudnnConvolutionBackwardBias(handle(), &one, impl_->y32, dy, &one, impl_->bias, db),
        "cudnnConvolutionBackwardBias");
}

std::string ConvolutionOp::Description() const {
  std::ostringstream out;
  const Algorithms& a = impl_->algos;
  out << "fwd algo " << static_cast<int>(a.fwd) << ", bwd-data algo "
      << static_cast<int>(a.bwd_data) << ", bwd-filter algo " << static_cast<int>(a.bwd_filter)
      << " (workspace " << std::max({a.fwd_bytes, a.bwd_data_bytes, a.bwd_filter_bytes})
      << " bytes)";
  return out.str();
}

// ---------------------------------------------------------------------------------------
// Pooling, softmax, activations, LRN (fp32).

namespace {

void set_4d(cudnnTensorDescriptor_t desc, int n, int c, int h, int w) {
  check(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w),
        "cudnnSetTensor4dDescriptor");
}

// One NCHW fp32 tensor descriptor, destroyed with its owner.
struct Tensor {
  cudnnTensorDescriptor_t desc = nullptr;
  Tensor() { check(cudnnCreateTensorDescriptor(&desc), "cudnnCreateTensorDescriptor"); }
  ~Tensor() { cudnnDestroyTensorDescriptor(desc); }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
};

const float kOne = 1.f, kZero = 0.f;

}  // namespace

struct PoolingOp::Impl {
  Tensor x, y;
  cudnnPoolingDescriptor_t pool = nullptr;
  Impl() { check(cudnnCreatePoolingDescriptor(&pool), "cudnnCreatePoolingDescriptor"); }
  ~Impl() { cudnnDestroyPoolingDescriptor(pool); }
};

PoolingOp::PoolingOp() = default;
PoolingOp::~PoolingOp() = default;

void PoolingOp::Setup(const PoolShape& s) {
  if (configured_ && s == shape_) return;
  configured_ = false;
  if (!impl_) impl_.reset(new Impl);
  set_4d(impl_->x.desc, s.num, s.channels, s.height, s.width);
  set_4d(impl_->y.desc, s.num, s.channels, s.pooled_h, s.pooled_w);
  check(cudnnSetPooling2dDescriptor(
            impl_->pool,
            s.max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
            CUDNN_NOT_PROPAGATE_NAN, s.kernel_h, s.kernel_w, s.pad_h, s.pad_w, s.stride_h,
            s.stride_w),
        "cudnnSetPooling2dDescriptor");
  int n = 0, c = 0, h = 0, w = 0;
  check(cudnnGetPooling2dForwardOutputDim(impl_->pool, impl_->x.desc, &n, &c, &h, &w),
        "cudnnGetPooling2dForwardOutputDim");
  CHECK(n == s.num && c == s.channels && h == s.pooled_h && w == s.pooled_w)
      << "cuDNN pooling output " << h << " x " << w << " differs from crema's " << s.pooled_h
      << " x " << s.pooled_w;
  shape_ = s;
  configured_ = true;
}

void PoolingOp::Forward(const float* x, float* y) {
  CHECK(configured_);
  check(
      cudnnPoolingForward(handle(), impl_->pool, &kOne, impl_->x.desc, x, &kZero, impl_->y.desc, y),
      "cudnnPoolingForward");
}

void PoolingOp::Backward(const float* y, const float* dy, const float* x, float* dx) {
  CHECK(configured_);
  check(cudnnPoolingBackward(handle(), impl_->pool, &kOne, impl_->y.desc, y, impl_->y.desc, dy,
                             impl_->x.desc, x, &kZero, impl_->x.desc, dx),
        "cudnnPoolingBackward");
}

struct SoftmaxOp::Impl {
  Tensor t;
};

SoftmaxOp::SoftmaxOp() = default;
SoftmaxOp::~SoftmaxOp() = default;

void SoftmaxOp::Setup(int outer, int channels, int inner) {
  if (impl_ && outer == outer_ && channels == channels_ && inner == inner_) return;
  if (!impl_) impl_.reset(new Impl);
  outer_ = -1;
  set_4d(impl_->t.desc, outer, channels, inner, 1);
  outer_ = outer;
  channels_ = channels;
  inner_ = inner;
}

void SoftmaxOp::Forward(const float* x, float* y) {
  CHECK(outer_ >= 0);
  check(cudnnSoftmaxForward(handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne,
                            impl_->t.desc, x, &kZero, impl_->t.desc, y),
        "cudnnSoftmaxForward");
}

void SoftmaxOp::Backward(const float* y, const float* dy, float* dx) {
  CHECK(outer_ >= 0);
  check(cudnnSoftmaxBackward(handle(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne,
                             impl_->t.desc, y, impl_->t.desc, dy, &kZero, impl_->t.desc, dx),
        "cudnnSoftmaxBackward");
}

struct ActivationOp::Impl {
  Tensor t;
  cudnnActivationDescriptor_t act = nullptr;
  Impl() { check(cudnnCreateActivationDescriptor(&act), "cudnnCreateActivationDescriptor"); }
  ~Impl() { cudnnDestroyActivationDescriptor(act); }
};

ActivationOp::ActivationOp() = default;
ActivationOp::~ActivationOp() = default;

void ActivationOp::Setup(Activation mode, double coef, int64_t count) {
  if (impl_ && count_ >= 0 && mode == mode_ && coef == coef_ && count == count_) return;
  if (count < 0 || count > INT32_MAX)
    CREMA_THROW("cuDNN activation: " << count << " elements do not fit one cuDNN tensor");
  if (!impl_) impl_.reset(new Impl);
  count_ = -1;
  cudnnActivationMode_t m = CUDNN_ACTIVATION_RELU;
  switch (mode) {
    case Activation::RELU:
      m = CUDNN_ACTIVATION_RELU;
      break;
    case Activation::SIGMOID:
      m = CUDNN_ACTIVATION_SIGMOID;
      break;
    case Activation::TANH:
      m = CUDNN_ACTIVATION_TANH;
      break;
    case Activation::ELU:
      m = CUDNN_ACTIVATION_ELU;
      break;
    case Activation::SWISH:
      m = CUDNN_ACTIVATION_SWISH;
      break;
  }
  // coef is ELU's alpha (and the ceiling of CLIPPED_RELU, unused here); swish's beta is set
  // separately. NaN propagates like crema's kernels (arithmetic on NaN gives NaN).
  check(cudnnSetActivationDescriptor(impl_->act, m, CUDNN_PROPAGATE_NAN,
                                     mode == Activation::ELU ? coef : 0.0),
        "cudnnSetActivationDescriptor");
  if (mode == Activation::SWISH)
    check(cudnnSetActivationDescriptorSwishBeta(impl_->act, coef),
          "cudnnSetActivationDescriptorSwishBeta");
  if (count > 0) set_4d(impl_->t.desc, 1, 1, 1, static_cast<int>(count));
  mode_ = mode;
  coef_ = coef;
  count_ = count;
}

void ActivationOp::Forward(const float* x, float* y) {
  CHECK(count_ >= 0);
  if (count_ == 0) return;
  check(cudnnActivationForward(handle(), impl_->act, &kOne, impl_->t.desc, x, &kZero, impl_->t.desc,
                               y),
        "cudnnActivationForward");
}

void ActivationOp::Backward(const float* y, const float* dy, const float* x, float* dx) {
  CHECK(count_ >= 0);
  if (count_ == 0) return;
  check(cudnnActivationBackward(handle(), impl_->act, &kOne, impl_->t.desc, y, impl_->t.desc, dy,
                                impl_->t.desc, x, &kZero, impl_->t.desc, dx),
        "cudnnActivationBackward");
}

bool LRNSupported(int n, double beta, double k, std::string* why) {
  std::ostringstream reason;
  if (n % 2 != 1)
    reason << "local_size " << n << " is even";
  else if (n < CUDNN_LRN_MIN_N || n > CUDNN_LRN_MAX_N)
    reason << "local_size " << n << " is outside cuDNN's [" << CUDNN_LRN_MIN_N << ", "
           << CUDNN_LRN_MAX_N << "]";
  else if (k < CUDNN_LRN_MIN_K)
    reason << "k " << k << " is below cuDNN's minimum " << CUDNN_LRN_MIN_K;
  else if (beta < CUDNN_LRN_MIN_BETA)
    reason << "beta " << beta << " is below cuDNN's minimum " << CUDNN_LRN_MIN_BETA;
  else
    return true;
  if (why) *why = reason.str();
  return false;
}

struct LRNOp::Impl {
  Tensor t;
  cudnnLRNDescriptor_t lrn = nullptr;
  Impl() { check(cudnnCreateLRNDescriptor(&lrn), "cudnnCreateLRNDescriptor"); }
  ~Impl() { cudnnDestroyLRNDescriptor(lrn); }
};

LRNOp::LRNOp() = default;
LRNOp::~LRNOp() = default;

void LRNOp::Setup(int n, double alpha, double beta, double k, int num, int channels, int height,
                  int width) {
  const std::vector<double> key = {double(n),        alpha,          beta,         k, double(num),
                                   double(channels), double(height), double(width)};
  if (impl_ && key == key_) return;
  std::string why;
  if (!LRNSupported(n, beta, k, &why)) CREMA_THROW("cuDNN LRN: " << why);
  if (!impl_) impl_.reset(new Impl);
  key_.clear();
  // cuDNN divides lrnAlpha by lrnN itself: Caffe's alpha goes in unchanged.
  check(cudnnSetLRNDescriptor(impl_->lrn, static_cast<unsigned>(n), alpha, beta, k),
        "cudnnSetLRNDescriptor");
  set_4d(impl_->t.desc, num, channels, height, width);
  key_ = key;
}

void LRNOp::Forward(const float* x, float* y) {
  CHECK(!key_.empty());
  check(cudnnLRNCrossChannelForward(handle(), impl_->lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne,
                                    impl_->t.desc, x, &kZero, impl_->t.desc, y),
        "cudnnLRNCrossChannelForward");
}

void LRNOp::Backward(const float* y, const float* dy, const float* x, float* dx) {
  CHECK(!key_.empty());
  check(cudnnLRNCrossChannelBackward(handle(), impl_->lrn, CUDNN_LRN_CROSS_CHANNEL_DIM1, &kOne,
                                     impl_->t.desc, y, impl_->t.desc, dy, impl_->t.desc, x, &kZero,
                                     impl_->t.desc, dx),
        "cudnnLRNCrossChannelBackward");
}

#else  // no cuDNN

bool Available() {
  return false;
}
std::string VersionString() {
  return "none";
}

struct ConvolutionOp::Impl {};

ConvolutionOp::ConvolutionOp() = default;
ConvolutionOp::~ConvolutionOp() = default;

namespace {
[[noreturn]] void missing() {
  CREMA_THROW(
      "this crema was built without cuDNN, which GPU convolution (and the cuDNN engine of "
      "the other layers) needs; install "
      "cuDNN >= 8 and rebuild, or run on the CPU");
}
}  // namespace

void ConvolutionOp::Setup(const ConvShape&) {
  missing();
}
void ConvolutionOp::Forward(const void*, const void*, void*) {
  missing();
}
void ConvolutionOp::AddBias(const float*, float*) {
  missing();
}
void ConvolutionOp::ForwardBiasActivation(const float*, const float*, const float*, bool, float*) {
  missing();
}
void ConvolutionOp::BackwardData(const void*, const void*, void*) {
  missing();
}
void ConvolutionOp::BackwardFilter(const void*, const void*, void*, bool) {
  missing();
}
void ConvolutionOp::BackwardBias(const float*, float*) {
  missing();
}
std::string ConvolutionOp::Description() const {
  return "cuDNN missing";
}

struct PoolingOp::Impl {};
struct SoftmaxOp::Impl {};
struct ActivationOp::Impl {};
struct LRNOp::Impl {};
PoolingOp::PoolingOp() = default;
PoolingOp::~PoolingOp() = default;
SoftmaxOp::SoftmaxOp() = default;
SoftmaxOp::~SoftmaxOp() = default;
ActivationOp::ActivationOp() = default;
ActivationOp::~ActivationOp() = default;
LRNOp::LRNOp() = default;
LRNOp::~LRNOp() = default;

void PoolingOp::Setup(const PoolShape&) {
  missing();
}
void PoolingOp::Forward(const float*, float*) {
  missing();
}
void PoolingOp::Backward(const float*, const float*, const float*, float*) {
  missing();
}
void SoftmaxOp::Setup(int, int, int) {
  missing();
}
void SoftmaxOp::Forward(const float*, float*) {
  missing();
}
void SoftmaxOp::Backward(const float*, const float*, float*) {
  missing();
}
void ActivationOp::Setup(Activation, double, int64_t) {
  missing();
}
void ActivationOp::Forward(const float*, float*) {
  missing();
}
void ActivationOp::Backward(const float*, const float*, const float*, float*) {
  missing();
}
bool LRNSupported(int, double, double, std::string* why) {
  if (why) *why = "this crema was built without cuDNN";
  return false;
}
void LRNOp::Setup(int, double, double, double, int, int, int, int) {
  missing();
}
void LRNOp::Forward(const float*, float*) {
  missing();
}
void LRNOp::Backward(const float*, const float*, const float*, float*) {
  missing();
}

#endif

}  // namespace cudnn
}  // namespace crema
