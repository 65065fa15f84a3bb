// Every cuDNN call in crema (see cudnn_adapter.hpp for the contract). Built in GPU builds;
// the cuDNN part only when CMake found cuDNN >= 8 (CREMA_WITH_CUDNN), otherwise every
// entry point reports that cuDNN is missing.
#include "src/cudnn_adapter.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>

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

// How many engine configurations of one heuristics list the graph API's search builds and
// times at most (as PyTorch's cudnn.benchmark_limit, 10 by default).
int max_plans() {
  const char* v = std::getenv("CREMA_CUDNN_MAX_ENGINES");
  const long n = v && *v ? std::atol(v) : 10;
  return static_cast<int>(std::max(1L, std::min(n, 1000L)));
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

// ---------------------------------------------------------------------------------------
// Convolutions through cuDNN's graph (backend) API, the algorithm search of cuDNN 9 (where
// cudnnFind*/cudnnConvolution* are deprecated). Each direction of a convolution is a graph
// of one operation whose tensors carry fixed unique ids (x or dx, w or dw, y or dy). cuDNN's
// heuristics (mode A, then FALLBACK) list engine configurations; those whose numerical
// notes the precision forbids are dropped, the others are built as execution plans within
// the workspace limit and timed, and the fastest is kept. The choice (its place in the
// heuristics' list and its engine) is cached per geometry for the process, the plan per
// geometry and cuDNN handle. Used when built against cuDNN >= 9 unless CREMA_CUDNN_API=legacy;
// a direction no engine can run falls back to the legacy API with a warning.
#if CUDNN_VERSION >= 90000
#define CREMA_CUDNN_GRAPH_API 1
#endif
// Heuristics and plans for a described GPU (CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR): 9.8 on.
#if CUDNN_VERSION >= 90800
#define CREMA_CUDNN_DEVICELESS 1
#endif

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kForward:
      return "forward";
    case Direction::kBackwardData:
      return "backward-data";
    default:
      return "backward-filter";
  }
}

// Element strides of a packed tensor with dims [N, C, spatial...] in NCHW order, or in NHWC
// order (C innermost, then the spatial axes, N outermost). Filters [O, C/g, k...] likewise.
std::vector<int64_t> PackedStrides(const std::vector<int>& dims, ConvLayout layout) {
  const int nb = static_cast<int>(dims.size());
  std::vector<int> order(nb);  // axes from outermost to innermost
  for (int i = 0; i < nb; ++i) order[i] = i;
  if (layout == ConvLayout::NHWC) {
    for (int i = 1; i + 1 < nb; ++i) order[i] = i + 1;
    order[nb - 1] = 1;
  }
  std::vector<int64_t> strides(nb);
  int64_t stride = 1;
  for (int i = nb - 1; i >= 0; --i) {
    strides[order[i]] = stride;
    stride *= dims[order[i]];
  }
  return strides;
}

// The geometry of one convolution as its graph needs it (1-D already widened to 1 x W).
struct GraphGeometry {
  std::vector<int> xdims, wdims, ydims;  // [N, C, i...], [O, C/g, k...], [N, O, o...]
  std::vector<int> pad, stride, dilation;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  ConvLayout layout = ConvLayout::NCHW;
};

// Whether an engine with these numerical notes keeps the precision's promises (see
// cudnn_adapter.hpp): fp32 accumulation always, tensor cores only in TF32/16-bit,
// FFT/Winograd and non-deterministic engines only when allowed.
bool NotesAllowed(const std::vector<cudnnBackendNumericalNote_t>& notes, bool half, bool tf32,
                  bool fast, bool nondet) {
  for (cudnnBackendNumericalNote_t note : notes) {
    switch (note) {
      case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
        if (!half && !tf32) return false;
        break;
      case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
      case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        return false;
      case CUDNN_NUMERICAL_NOTE_FFT:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
      case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13:
        if (!fast) return false;
        break;
      case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
        if (!nondet) return false;
        break;
      default:
        break;
    }
  }
  return true;
}

std::string NotesString(const std::vector<cudnnBackendNumericalNote_t>& notes) {
  static const char* const kNames[] = {"tensor-core",  "down-convert",     "reduced-precision",
                                       "fft",          "nondeterministic", "winograd",
                                       "winograd-4x4", "winograd-6x6",     "winograd-13x13",
                                       "strict-nan"};
  std::string out;
  for (cudnnBackendNumericalNote_t note : notes) {
    const int i = static_cast<int>(note);
    out += out.empty() ? "" : ",";
    out += i >= 0 && i < 10 ? kNames[i] : std::to_string(i);
  }
  return out.empty() ? "no notes" : out;
}

// One backend descriptor, destroyed with its owner. Calls throw crema::Error naming what
// was being built.
class Backend {
 public:
  explicit Backend(cudnnBackendDescriptorType_t type) {
    check(cudnnBackendCreateDescriptor(type, &desc_), "cudnnBackendCreateDescriptor");
  }
  ~Backend() {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
  }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
           const void* values) {
    check(cudnnBackendSetAttribute(desc_, name, type, count, values), "cudnnBackendSetAttribute");
  }
  void set(cudnnBackendAttributeName_t name, const std::vector<int>& values) {
    const std::vector<int64_t> wide(values.begin(), values.end());
    set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(wide.size()), wide.data());
  }
  void set(cudnnBackendAttributeName_t name, const Backend& value) {
    const cudnnBackendDescriptor_t d = value.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  void finalize(const char* what) { check(cudnnBackendFinalize(desc_), what); }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};
using BackendPtr = std::unique_ptr<Backend>;

// Unique ids of a graph's tensors, the same in every direction, and their promised
// alignment (cudaMalloc gives 256 bytes; Execute checks the pointers it is given).
constexpr int64_t kUidX = 1, kUidW = 2, kUidY = 3;
constexpr int64_t kAlignment = 16;

// One direction of one convolution as a graph, with the execution plan chosen for it.
struct GraphConv {
  std::vector<BackendPtr> parts;  // tensors, convolution, operation: alive with the plan
  BackendPtr graph, plan;
  cudnnHandle_t handle = nullptr;  // the plan's
  int position = -1;               // of its configuration in the heuristics' list
  bool fallback_list = false;      // that list is mode FALLBACK's (else mode A's)
  int64_t engine = -1;             // cuDNN's global engine index
  int64_t workspace = 0;           // bytes
  std::string notes;
};

// Where graphs are planned: on this thread's device (its cuDNN handle), or without one
// for the GPU a device-property descriptor describes (PlanDeviceless).
struct PlanTarget {
  cudnnHandle_t handle = nullptr;
  cudnnBackendDescriptor_t device = nullptr;
};

// The graph of one direction; alpha 1, beta as given (1: accumulate into the output).
std::unique_ptr<GraphConv> BuildGraph(const GraphGeometry& g, Direction dir, float beta,
                                      const PlanTarget& target) {
  auto conv = std::make_unique<GraphConv>();
  conv->handle = target.handle;
  auto tensor = [&](int64_t uid, const std::vector<int>& dims) {
    auto t = std::make_unique<Backend>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    t->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &g.type);
    t->set(CUDNN_ATTR_TENSOR_DIMENSIONS, dims);
    const std::vector<int64_t> strides = PackedStrides(dims, g.layout);
    t->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, static_cast<int64_t>(strides.size()),
           strides.data());
    t->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    t->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &kAlignment);
    t->finalize("cudnnBackendFinalize(tensor)");
    conv->parts.push_back(std::move(t));
    return conv->parts.back().get();
  };
  const Backend* x = tensor(kUidX, g.xdims);
  const Backend* w = tensor(kUidW, g.wdims);
  const Backend* y = tensor(kUidY, g.ydims);

  auto desc = std::make_unique<Backend>(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t spatial = static_cast<int64_t>(g.pad.size());
  desc->set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  desc->set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  desc->set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
  desc->set(CUDNN_ATTR_CONVOLUTION_DILATIONS, g.dilation);
  desc->set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, g.stride);
  desc->set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, g.pad);
  desc->set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, g.pad);
  desc->finalize("cudnnBackendFinalize(convolution)");

  const float alpha = 1.f;
  std::unique_ptr<Backend> op;
  switch (dir) {
    case Direction::kForward:
      op = std::make_unique<Backend>(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, *desc);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, *x);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, *w);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, *y);
      break;
    case Direction::kBackwardData:
      op = std::make_unique<Backend>(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, *desc);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, *x);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, *w);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, *y);
      break;
    case Direction::kBackwardFilter:
      op =
          std::make_unique<Backend>(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, *desc);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, *x);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, *w);
      op->set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, *y);
      break;
  }
  op->finalize("cudnnBackendFinalize(convolution operation)");

  conv->graph = std::make_unique<Backend>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  const cudnnBackendDescriptor_t ops[] = {op->get()};
  if (target.handle)
    conv->graph->set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &target.handle);
  conv->graph->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, ops);
  conv->graph->finalize("cudnnBackendFinalize(operation graph)");
  conv->parts.push_back(std::move(desc));
  conv->parts.push_back(std::move(op));
  return conv;
}

// The engine configurations cuDNN's heuristics list for a graph, best guess first.
std::vector<BackendPtr> EngineConfigs(const Backend& graph, cudnnBackendHeurMode_t mode,
                                      const PlanTarget& target) {
  Backend heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
#ifdef CREMA_CUDNN_DEVICELESS
  if (target.device)
    heuristics.set(CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                   &target.device);
#endif
  heuristics.finalize("cudnnBackendFinalize(engine heuristics)");
  int64_t count = 0;
  check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
        "cudnnBackendGetAttribute(heuristics' result count)");
  std::vector<BackendPtr> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_unique<Backend>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  int64_t got = 0;
  if (count > 0)
    check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()),
          "cudnnBackendGetAttribute(heuristics' results)");
  configs.resize(static_cast<size_t>(std::min(got, count)));
  return configs;
}

// A configuration's engine: its global index and numerical notes.
void EngineOf(const Backend& config, int64_t* index,
              std::vector<cudnnBackendNumericalNote_t>* notes) {
  Backend engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  cudnnBackendDescriptor_t e = engine.get();
  int64_t n = 0;
  check(cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e),
        "cudnnBackendGetAttribute(engine of a configuration)");
  check(cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, index),
        "cudnnBackendGetAttribute(engine index)");
  cudnnBackendNumericalNote_t found[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  check(cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, found),
        "cudnnBackendGetAttribute(numerical notes)");
  notes->assign(found, found + std::min<int64_t>(n, CUDNN_NUMERICAL_NOTE_TYPE_COUNT));
}

// The execution plan of a configuration, or null when cuDNN cannot build it here.
BackendPtr MakePlan(const Backend& config, const PlanTarget& target, int64_t* workspace) {
  auto plan = std::make_unique<Backend>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  if (target.handle)
    plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &target.handle);
#ifdef CREMA_CUDNN_DEVICELESS
  if (target.device)
    plan->set(CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
              &target.device);
#endif
  plan->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config);
  if (cudnnBackendFinalize(plan->get()) != CUDNN_STATUS_SUCCESS) return nullptr;
  int64_t n = 0;
  check(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                 CUDNN_TYPE_INT64, 1, &n, workspace),
        "cudnnBackendGetAttribute(plan workspace)");
  return plan;
}

// The variant pack that binds a plan's tensors to x (or dx), w (or dw), y (or dy) and the
// workspace.
BackendPtr MakePack(const void* x, const void* w, const void* y, void* ws) {
  auto pack = std::make_unique<Backend>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  const int64_t uids[] = {kUidX, kUidW, kUidY};
  const void* pointers[] = {x, w, y};
  pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  pack->set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
  pack->set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  pack->finalize("cudnnBackendFinalize(variant pack)");
  return pack;
}

// Device memory for timing candidate plans, zero-filled, freed with its owner.
struct ScratchBuffer {
  void* ptr = nullptr;
  explicit ScratchBuffer(size_t bytes) {
    const cudaError_t status = cudaMalloc(&ptr, std::max<size_t>(bytes, 1));
    if (status != cudaSuccess)
      CREMA_THROW("cuDNN algorithm search: cudaMalloc of "
                  << bytes << " bytes failed: " << cudaGetErrorString(status));
    cudaMemsetAsync(ptr, 0, bytes, cuda_stream());
  }
  ~ScratchBuffer() { cudaFree(ptr); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
};

size_t ElementCount(const std::vector<int>& dims) {
  size_t n = 1;
  for (int d : dims) n *= static_cast<size_t>(d);
  return n;
}

// Milliseconds of one run of a plan (best of 3 after a warm-up), +inf when it fails.
float TimePlan(const Backend& plan, int64_t workspace_bytes, const void* x, const void* w,
               const void* y) {
  const float failed = std::numeric_limits<float>::infinity();
  const BackendPtr pack = MakePack(x, w, y, workspace().get(static_cast<size_t>(workspace_bytes)));
  auto execute = [&] { return cudnnBackendExecute(handle(), plan.get(), pack->get()); };
  if (execute() != CUDNN_STATUS_SUCCESS) {
    cudaGetLastError();
    return failed;
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best = failed;
  for (int run = 0; run < 3; ++run) {
    cudaEventRecord(start, cuda_stream());
    const cudnnStatus_t status = execute();
    cudaEventRecord(stop, cuda_stream());
    float ms = 0.f;
    if (status != CUDNN_STATUS_SUCCESS || cudaEventSynchronize(stop) != cudaSuccess ||
        cudaEventElapsedTime(&ms, start, stop) != cudaSuccess) {
      cudaGetLastError();
      best = failed;
      break;
    }
    best = std::min(best, ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

// What the search chose for one direction of one geometry (process-wide cache).
struct GraphChoice {
  bool fallback_list = false;
  int position = -1;
  int64_t engine = -1;
};
std::map<std::string, GraphChoice>& graph_choices() {
  static auto* choices = new std::map<std::string, GraphChoice>;  // outlives every plan
  return *choices;
}
// Plans per (geometry + direction, handle), shared by the ops of one thread. Never freed:
// destroying cuDNN descriptors after the CUDA context is gone (at exit) is not safe.
std::map<std::pair<std::string, cudnnHandle_t>, std::shared_ptr<const GraphConv>>& graph_plans() {
  static auto* plans =
      new std::map<std::pair<std::string, cudnnHandle_t>, std::shared_ptr<const GraphConv>>;
  return *plans;
}

// The rules a candidate engine must keep for one geometry.
struct SearchRules {
  bool half = false, tf32 = false, fast = false, nondet = false;
  size_t workspace_limit = 0;
  int max_plans = 10;  // configurations built and timed per heuristics list, best first
};

// An engine configuration the search may time: its plan and where it came from.
struct Candidate {
  BackendPtr plan;
  int position;
  int64_t engine, workspace;
  std::string notes;
};

// Walks one heuristics list of `conv`'s graph as the search does: configurations whose
// notes the rules forbid are skipped, the others (best first, at most rules.max_plans of
// them) are built as plans, and those within the workspace limit become candidates. With
// `cached`, only the configuration at its position counts, and only while it is still the
// same engine. `report` (may be null) gets every configuration examined.
std::vector<Candidate> ListCandidates(const GraphConv& conv, cudnnBackendHeurMode_t mode,
                                      const SearchRules& rules, const PlanTarget& target,
                                      const GraphChoice* cached,
                                      std::vector<EngineReport>* report) {
  std::vector<Candidate> candidates;
  std::vector<BackendPtr> configs = EngineConfigs(*conv.graph, mode, target);
  int built = 0;  // plans finalized from this list (some compile kernels: costly)
  for (int i = 0; i < static_cast<int>(configs.size()) && built < rules.max_plans; ++i) {
    if (cached && i != cached->position) continue;
    EngineReport seen;
    seen.fallback_list = mode == CUDNN_HEUR_MODE_FALLBACK;
    seen.position = i;
    std::vector<cudnnBackendNumericalNote_t> notes;
    EngineOf(*configs[i], &seen.engine, &notes);
    if (cached && seen.engine != cached->engine) break;  // the list changed: search again
    seen.notes = NotesString(notes);
    seen.allowed = NotesAllowed(notes, rules.half, rules.tf32, rules.fast, rules.nondet);
    if (seen.allowed) {
      ++built;
      int64_t bytes = -1;
      BackendPtr plan = MakePlan(*configs[i], target, &bytes);
      seen.built = plan != nullptr;
      seen.workspace = plan ? bytes : -1;
      seen.candidate = plan && bytes >= 0 && static_cast<size_t>(bytes) <= rules.workspace_limit;
      if (seen.candidate)
        candidates.push_back({std::move(plan), i, seen.engine, bytes, seen.notes});
    }
    if (report) report->push_back(seen);
  }
  return candidates;
}

// The heuristics lists the search walks, in order: FALLBACK only when mode A gives nothing.
constexpr cudnnBackendHeurMode_t kHeuristicModes[] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};

// Builds the plan at a cached choice, or searches (times the allowed configurations of
// heuristics mode A, then of FALLBACK when none qualifies) and records the choice. Null
// when no engine qualifies or none of them runs.
std::shared_ptr<const GraphConv> SearchGraph(const GraphGeometry& g, Direction dir, float beta,
                                             const SearchRules& rules, const std::string& key) {
  const PlanTarget target{handle(), nullptr};
  GraphChoice cached;
  bool have_choice = false;
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto plan = graph_plans().find({key, target.handle});
    if (plan != graph_plans().end()) return plan->second;
    auto choice = graph_choices().find(key);
    if (choice != graph_choices().end()) {
      if (choice->second.position < 0) return nullptr;  // searched before: no engine
      cached = choice->second;
      have_choice = true;
    }
  }
  std::unique_ptr<GraphConv> conv = BuildGraph(g, dir, beta, target);
  std::vector<Candidate> candidates;
  bool fallback_list = false;
  for (cudnnBackendHeurMode_t mode : kHeuristicModes) {
    fallback_list = mode == CUDNN_HEUR_MODE_FALLBACK;
    if (have_choice && cached.fallback_list != fallback_list) continue;
    candidates =
        ListCandidates(*conv, mode, rules, target, have_choice ? &cached : nullptr, nullptr);
    if (!candidates.empty() || have_choice) break;
  }
  if (candidates.empty()) {
    std::lock_guard<std::mutex> lock(cache_mutex());
    if (have_choice) {  // the cached choice no longer builds: forget it and search again
      graph_choices().erase(key);
    } else {
      graph_choices()[key] = GraphChoice{};  // no engine: remembered, not searched again
      return nullptr;
    }
  }
  if (candidates.empty()) return SearchGraph(g, dir, beta, rules, key);
  // A new search times its candidates, a lone one too (it must run before it is kept); a
  // plan rebuilt from the cached choice is kept as it is.
  size_t best = 0;
  if (!have_choice) {
    const size_t elem = g.type == CUDNN_DATA_FLOAT ? 4 : 2;
    ScratchBuffer x(ElementCount(g.xdims) * elem), w(ElementCount(g.wdims) * elem),
        y(ElementCount(g.ydims) * elem);
    std::vector<float> ms(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i)
      ms[i] = TimePlan(*candidates[i].plan, candidates[i].workspace, x.ptr, w.ptr, y.ptr);
    best = std::min_element(ms.begin(), ms.end()) - ms.begin();
    if (!std::isfinite(ms[best])) {  // every candidate failed to run
      std::lock_guard<std::mutex> lock(cache_mutex());
      graph_choices()[key] = GraphChoice{};
      return nullptr;
    }
  }
  Candidate& chosen = candidates[best];
  conv->plan = std::move(chosen.plan);
  conv->position = chosen.position;
  conv->fallback_list = fallback_list;
  conv->engine = chosen.engine;
  conv->workspace = chosen.workspace;
  conv->notes = chosen.notes;
  std::shared_ptr<const GraphConv> shared(conv.release());
  std::lock_guard<std::mutex> lock(cache_mutex());
  graph_choices()[key] = {fallback_list, shared->position, shared->engine};
  graph_plans()[{key, target.handle}] = shared;
  return shared;
}

bool GraphApiWanted() {
#ifdef CREMA_CUDNN_GRAPH_API
  const char* api = std::getenv("CREMA_CUDNN_API");
  if (api && std::string(api) == "legacy") return false;
  if (api && *api && std::string(api) != "graph")
    CREMA_THROW("CREMA_CUDNN_API is '" << api << "'; it takes 'graph' or 'legacy'");
  return true;
#else
  return false;
#endif
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

namespace {

// A shape's graph geometry; cuDNN wants at least 2 spatial axes, so 1-D becomes 1 x W.
GraphGeometry GeometryOf(const ConvShape& s) {
  const int d = static_cast<int>(s.kernel.size());
  if (d < 1 || d > 3) CREMA_THROW("cuDNN convolution supports 1 to 3 spatial axes, got " << d);
  auto widen = [d](const std::vector<int>& v, int fill) {
    std::vector<int> out = v;
    if (d == 1) out.insert(out.begin(), fill);
    return out;
  };
  GraphGeometry g;
  const std::vector<int> in = widen(s.input, 1), out = widen(s.output, 1), k = widen(s.kernel, 1);
  g.pad = widen(s.pad, 0);
  g.stride = widen(s.stride, 1);
  g.dilation = widen(s.dilation, 1);
  g.xdims = {s.num, s.channels};
  g.ydims = {s.num, s.num_output};
  g.wdims = {s.num_output, s.channels / s.groups};
  g.xdims.insert(g.xdims.end(), in.begin(), in.end());
  g.ydims.insert(g.ydims.end(), out.begin(), out.end());
  g.wdims.insert(g.wdims.end(), k.begin(), k.end());
  g.type = data_type(s.precision);
  g.layout = s.layout;
  return g;
}

// The precision's promises (cudnn_adapter.hpp) and the environment's overrides. Reduced
// precisions give up bit-exactness with the CPU anyway: FFT and Winograd engines are
// allowed for them (still deterministic ones only).
SearchRules RulesOf(const ConvShape& s) {
  SearchRules r;
  r.half = IsHalfPrecision(s.precision);
  r.tf32 = s.precision != Precision::FP32 || env_flag("CREMA_CUDNN_ALLOW_TF32");
  r.fast = s.precision != Precision::FP32 || env_flag("CREMA_CUDNN_FAST_ALGOS");
  r.nondet = env_flag("CREMA_CUDNN_NONDETERMINISTIC");
  r.workspace_limit = workspace_limit();
  r.max_plans = max_plans();
  return r;
}

}  // namespace

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
  // Whether `algos` holds the legacy API's choice (made when some direction needs it).
  bool legacy_chosen = false;

  // The graph API (see SearchGraph): whether it is used, the geometry, its rules and cache
  // key, and the plans per slot (forward, backward data, backward filter overwriting,
  // backward filter accumulating), each searched on first need; a null plan after its
  // search means the legacy API runs that slot.
  bool graph_api = false;
  GraphGeometry geometry;
  SearchRules rules;
  std::string key;
  std::string shape_text;
  static constexpr int kSlots = 4;
  std::shared_ptr<const GraphConv> plans[kSlots];
  bool searched[kSlots] = {};
  bool misaligned_warned = false;
  // Per slot, the variant pack of the last call and what it binds (rebuilt when a pointer
  // changes; a net's blobs and workspace mostly stay put).
  struct BoundPack {
    const GraphConv* plan = nullptr;
    const void *x = nullptr, *w = nullptr, *y = nullptr;
    void* ws = nullptr;
    BackendPtr pack;
  };
  BoundPack packs[kSlots];

  static int slot_of(Direction dir, float beta) {
    return dir == Direction::kBackwardFilter ? (beta != 0.f ? 3 : 2) : static_cast<int>(dir);
  }

  // The plan of a slot for this thread's handle: searched (or rebuilt from the cached
  // choice) when needed; null when no engine of the graph API qualifies (logged once per
  // geometry) and the legacy API must run it.
  const GraphConv* graph_plan(Direction dir, float beta) {
    const int slot = slot_of(dir, beta);
    std::shared_ptr<const GraphConv>& plan = plans[slot];
    if (searched[slot] && (!plan || plan->handle == handle())) return plan.get();
    searched[slot] = true;
    const std::string slot_key =
        key + " " + DirectionName(dir) + (beta != 0.f ? " accumulate" : "");
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(cache_mutex());
      first = graph_choices().count(slot_key) == 0;
    }
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (first && cudaStreamIsCapturing(cuda_stream(), &capture) == cudaSuccess &&
        capture != cudaStreamCaptureStatusNone)
      CREMA_THROW("the cuDNN " << DirectionName(dir) << " convolution " << shape_text
                               << (beta != 0.f ? " (accumulating)" : "")
                               << " first runs inside a CUDA graph capture, where its "
                                  "algorithm search cannot time anything");
    std::string why = "no engine qualifies";
    try {
      plan = SearchGraph(geometry, dir, beta, rules, slot_key);
    } catch (const Error& e) {
      why = e.what();
      plan = nullptr;
      std::lock_guard<std::mutex> lock(cache_mutex());
      graph_choices()[slot_key] = GraphChoice{};
    }
    if (!plan && first)
      LOG(WARNING) << "cuDNN graph API: " << why << " for the " << DirectionName(dir)
                   << (beta != 0.f ? " (accumulating)" : "") << " convolution " << shape_text
                   << "; it runs on the legacy cuDNN API";
    return plan.get();
  }

  // Runs one direction through the graph API; false when the legacy API must run it (no
  // plan, or a pointer less aligned than the plan's tensors promise).
  bool run_graph(Direction dir, float beta, const void* xp, const void* wp, const void* yp) {
    if (!graph_api) return false;
    const GraphConv* plan = graph_plan(dir, beta);
    if (plan) {
      const auto aligned = [](const void* p) {
        return reinterpret_cast<uintptr_t>(p) % kAlignment == 0;
      };
      if (aligned(xp) && aligned(wp) && aligned(yp)) {
        void* ws = workspace().get(static_cast<size_t>(plan->workspace));
        BoundPack& bound = packs[slot_of(dir, beta)];
        if (!bound.pack || bound.plan != plan || bound.x != xp || bound.w != wp || bound.y != yp ||
            bound.ws != ws) {
          bound.pack = MakePack(xp, wp, yp, ws);
          bound.plan = plan;
          bound.x = xp;
          bound.w = wp;
          bound.y = yp;
          bound.ws = ws;
        }
        check(cudnnBackendExecute(handle(), plan->plan->get(), bound.pack->get()),
              "cudnnBackendExecute");
        return true;
      }
      if (!misaligned_warned)
        LOG(WARNING) << "cuDNN graph API: a " << DirectionName(dir)
                     << " convolution operand is not " << kAlignment << "-byte aligned ("
                     << shape_text << "); that call runs on the legacy cuDNN API";
      misaligned_warned = true;
    }
    choose_legacy();
    return false;
  }

  // The legacy API's algorithms for this geometry (cached per process like the plans).
  void choose_legacy() {
    if (legacy_chosen) return;
    bool cached = false;
    {
      std::lock_guard<std::mutex> lock(cache_mutex());
      auto it = cache().find(key);
      if (it != cache().end()) {
        algos = it->second;
        cached = true;
      }
    }
    if (!cached) {
      algos = choose(rules.tf32, rules.fast);
      std::lock_guard<std::mutex> lock(cache_mutex());
      cache()[key] = algos;
    }
    legacy_chosen = true;
  }

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
    const std::vector<int64_t> wide = PackedStrides(dims, layout);
    const std::vector<int> strides(wide.begin(), wide.end());
    check(cudnnSetTensorNdDescriptor(desc, type, static_cast<int>(dims.size()), dims.data(),
                                     strides.data()),
          "cudnnSetTensorNdDescriptor");
  }

  void configure(const ConvShape& s) {
    fused_sized = false;  // new descriptors: the fused workspace is sized again
    relu_needs_fused_algo = false;
    geometry = GeometryOf(s);
    rules = RulesOf(s);
    const std::vector<int>& ydims = geometry.ydims;
    const int nd = static_cast<int>(geometry.pad.size());
    std::vector<int> bdims = {1, s.num_output};
    bdims.resize(nd + 2, 1);
    const cudnnDataType_t type = geometry.type;
    set_tensor(x, geometry.xdims, type, s.layout);
    set_tensor(y, ydims, type, s.layout);
    set_tensor(y32, ydims);  // the fp32 y of AddBias/BackwardBias: NCHW in every layout
    set_tensor(bias, bdims);
    // Filter dims are [O, C/groups, k...] in both formats; NHWC stores them [O][k...][C/groups].
    const cudnnTensorFormat_t filter_format =
        s.layout == ConvLayout::NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    check(
        cudnnSetFilterNdDescriptor(w, type, filter_format, static_cast<int>(geometry.wdims.size()),
                                   geometry.wdims.data()),
        "cudnnSetFilterNdDescriptor");
    check(cudnnSetConvolutionNdDescriptor(conv, nd, geometry.pad.data(), geometry.stride.data(),
                                          geometry.dilation.data(), CUDNN_CROSS_CORRELATION,
                                          CUDNN_DATA_FLOAT),
          "cudnnSetConvolutionNdDescriptor");
    check(cudnnSetConvolutionGroupCount(conv, s.groups), "cudnnSetConvolutionGroupCount");
    // Tensor-core math: asked for by the precision (TF32, 16-bit), or by the environment.
    // For fp32 tensors CUDNN_DEFAULT_MATH permits TF32; 16-bit tensors use tensor ops.
    const cudnnMathType_t math = rules.half   ? CUDNN_TENSOR_OP_MATH
                                 : rules.tf32 ? CUDNN_DEFAULT_MATH
                                              : CUDNN_FMA_MATH;
    check(cudnnSetConvolutionMathType(conv, math), "cudnnSetConvolutionMathType");

    // The output geometry cuDNN derives must be crema's (an internal invariant).
    std::vector<int> cudnn_out(nd + 2);
    check(cudnnGetConvolutionNdForwardOutputDim(conv, x, w, nd + 2, cudnn_out.data()),
          "cudnnGetConvolutionNdForwardOutputDim");
    CHECK(cudnn_out == ydims) << "cuDNN output geometry differs from crema's for " << s.ToString();

    std::ostringstream key_text;
    int device = 0;
    cudaGetDevice(&device);
    key_text << "dev " << device << " " << s.ToString() << (rules.tf32 ? " tf32" : "")
             << (rules.fast ? " fast" : "") << (rules.nondet ? " nondet" : "") << " ws "
             << rules.workspace_limit;
    key = key_text.str();
    shape_text = s.ToString();
    legacy_chosen = false;
    misaligned_warned = false;
    for (int i = 0; i < kSlots; ++i) {
      plans[i] = nullptr;
      searched[i] = false;
      packs[i] = BoundPack{};
    }
    graph_api = GraphApiWanted();
    if (graph_api) {
      // Searched now, as the legacy API's algorithms were: the slots a training step uses
      // (fp32 accumulates the filter gradient, 16-bit overwrites it).
      const float filter_beta = IsHalfPrecision(s.precision) ? 0.f : 1.f;
      const bool all = graph_plan(Direction::kForward, 0.f) &&
                       graph_plan(Direction::kBackwardData, 0.f) &&
                       graph_plan(Direction::kBackwardFilter, filter_beta);
      if (all) return;
    }
    choose_legacy();
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
  if (impl_->run_graph(Direction::kForward, 0.f, x, w, y)) return;
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
  // Without the legacy API's choice (the graph API runs the plain forward) the fused call
  // takes kFusedAlgo directly.
  if (relu && impl_->legacy_chosen && !impl_->relu_needs_fused_algo) {
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
  if (impl_->run_graph(Direction::kBackwardData, 0.f, dx, w, dy)) return;
  const float one = 1.f, zero = 0.f;
  void* ws = workspace().get(impl_->algos.bwd_data_bytes);
  check(cudnnConvolutionBackwardData(handle(), &one, impl_->w, w, impl_->y, dy, impl_->conv,
                                     impl_->algos.bwd_data, ws, impl_->algos.bwd_data_bytes, &zero,
                                     impl_->x, dx),
        "cudnnConvolutionBackwardData");
}

void ConvolutionOp::BackwardFilter(const void* x, const void* dy, void* dw, bool accumulate) {
  CHECK(configured_);
  if (impl_->run_graph(Direction::kBackwardFilter, accumulate ? 1.f : 0.f, x, dw, dy)) return;
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
  const char* const names[] = {"fwd", "bwd-data", "bwd-filter", "bwd-filter accumulate"};
  for (int slot = 0; slot < Impl::kSlots; ++slot) {
    const GraphConv* plan = impl_->plans[slot].get();
    if (!plan) continue;
    out << (out.tellp() > 0 ? ", " : "") << names[slot] << " engine " << plan->engine << " ("
        << plan->notes << "; workspace " << plan->workspace << " bytes)";
  }
  if (impl_->legacy_chosen) {
    const Algorithms& a = impl_->algos;
    out << (out.tellp() > 0 ? "; " : "") << "legacy API: fwd algo " << static_cast<int>(a.fwd)
        << ", bwd-data algo " << static_cast<int>(a.bwd_data) << ", bwd-filter algo "
        << static_cast<int>(a.bwd_filter) << " (workspace "
        << std::max({a.fwd_bytes, a.bwd_data_bytes, a.bwd_filter_bytes}) << " bytes)";
  }
  return out.str();
}

// ---------------------------------------------------------------------------------------
// Pooling, softmax, activations, LRN (fp32).

// ---------------------------------------------------------------------------------------
// Deviceless planning (cudnn_adapter.hpp): the search's graph, heuristics, rules and plans
// for a GPU described by a device-property descriptor; nothing runs.

bool DevicelessPlanningAvailable() {
#ifdef CREMA_CUDNN_DEVICELESS
  return cudnnGetVersion() >= 90800;
#else
  return false;
#endif
}

std::vector<EngineReport> PlanDeviceless(const ConvShape& shape, Direction direction,
                                         bool accumulate, const std::string& device_json) {
#ifdef CREMA_CUDNN_DEVICELESS
  if (!DevicelessPlanningAvailable())
    CREMA_THROW("planning without a device needs cuDNN >= 9.8; the library loaded is "
                << cudnnGetVersion());
  Backend device(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR);
  device.set(CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
             static_cast<int64_t>(device_json.size()), device_json.data());
  device.finalize("cudnnBackendFinalize(device properties from JSON)");
  const PlanTarget target{nullptr, device.get()};
  const SearchRules rules = RulesOf(shape);
  const float beta = direction == Direction::kBackwardFilter && accumulate ? 1.f : 0.f;
  std::unique_ptr<GraphConv> conv = BuildGraph(GeometryOf(shape), direction, beta, target);
  std::vector<EngineReport> report;
  for (cudnnBackendHeurMode_t mode : kHeuristicModes)
    if (!ListCandidates(*conv, mode, rules, target, nullptr, &report).empty()) break;
  return report;
#else
  (void)shape, (void)direction, (void)accumulate, (void)device_json;
  CREMA_THROW("planning without a device needs cuDNN >= 9.8; crema was built against "
              << VersionString());
#endif
}

std::string DevicePropertiesJson(int device) {
#ifdef CREMA_CUDNN_DEVICELESS
  if (!DevicelessPlanningAvailable())
    CREMA_THROW("describing a device needs cuDNN >= 9.8; the library loaded is "
                << cudnnGetVersion());
  Backend properties(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR);
  const int32_t id = device;
  properties.set(CUDNN_ATTR_DEVICEPROP_DEVICE_ID, CUDNN_TYPE_INT32, 1, &id);
  properties.finalize("cudnnBackendFinalize(device properties of a device)");
  int64_t length = 0;
  check(cudnnBackendGetAttribute(properties.get(), CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, 0, &length, nullptr),
        "cudnnBackendGetAttribute(device properties' JSON length)");
  std::string json(static_cast<size_t>(std::max<int64_t>(length, 0)), '\0');
  check(cudnnBackendGetAttribute(properties.get(), CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                 CUDNN_TYPE_CHAR, length, &length, &json[0]),
        "cudnnBackendGetAttribute(device properties' JSON)");
  if (length >= 0 && static_cast<size_t>(length) < json.size()) json.resize(length);
  while (!json.empty() && json.back() == '\0') json.pop_back();  // a C string's end
  return json;
#else
  (void)device;
  CREMA_THROW("describing a device needs cuDNN >= 9.8; crema was built against "
              << VersionString());
#endif
}

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
bool DevicelessPlanningAvailable() {
  return false;
}
std::vector<EngineReport> PlanDeviceless(const ConvShape&, Direction, bool, const std::string&) {
  missing();
}
std::string DevicePropertiesJson(int) {
  missing();
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
