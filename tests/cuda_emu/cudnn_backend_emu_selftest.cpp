// Self-test of the emulated cuDNN graph (backend) API (cudnn_backend_emu.cpp), against the
// whole emulator: every plan that finalizes computes what the legacy call of the same math
// type computes on the same data, bit for bit (forward, backward data, backward filter; 1-,
// 2- and 3-D; fp32, fp16 and bf16; NCHW and NHWC; alpha and beta); the heuristics, notes and
// workspaces follow the emulated engine table; the validation errors crema's adapter could
// run into are returned; a plan executes inside a stream capture; and descriptors may be
// destroyed in any order. Plain main(); the exit status is the number of failed checks.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda_emu/selftest_check.hpp"

namespace {

constexpr cudnnStatus_t kOk = CUDNN_STATUS_SUCCESS;
constexpr cudnnStatus_t kBad = CUDNN_STATUS_BAD_PARAM;
constexpr cudnnStatus_t kUnsupported = CUDNN_STATUS_NOT_SUPPORTED;

void CheckStatus(cudnnStatus_t got, cudnnStatus_t want, const char* call, int line) {
  char last[512] = "";  // the emulator's message for a failure
  if (got != want && got != kOk) cudnnGetLastErrorString(last, sizeof last);
  selftest::Check(got == want,
                  std::string(call) + ": got " + std::to_string(static_cast<int>(got)) + ", want " +
                      std::to_string(static_cast<int>(want)) +
                      (last[0] ? std::string(" [") + last + "]" : ""),
                  line);
}
#define EXPECT_STATUS(call, want) CheckStatus((call), (want), #call, __LINE__)
#define EXPECT_OK(call) EXPECT_STATUS((call), CUDNN_STATUS_SUCCESS)

using Desc = cudnnBackendDescriptor_t;
using Name = cudnnBackendAttributeName_t;
using I64 = std::vector<int64_t>;
using Bytes = std::vector<unsigned char>;

// ---- Descriptors --------------------------------------------------------------------------

// The descriptors of one test, destroyed when it ends (or earlier through Destroy).
class Pool {
 public:
  Pool() = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {
    for (Desc d : live_) CHECK(cudnnBackendDestroyDescriptor(d) == kOk);
  }
  Desc Make(cudnnBackendDescriptorType_t type) {
    Desc d = nullptr;
    EXPECT_OK(cudnnBackendCreateDescriptor(type, &d));
    live_.push_back(d);
    return d;
  }
  void Destroy(Desc d) {
    live_.erase(std::find(live_.begin(), live_.end(), d));
    EXPECT_OK(cudnnBackendDestroyDescriptor(d));
  }
  std::vector<Desc>& live() { return live_; }

 private:
  std::vector<Desc> live_;
};

cudnnStatus_t SetI64(Desc d, Name name, const I64& v) {
  return cudnnBackendSetAttribute(d, name, CUDNN_TYPE_INT64, static_cast<int64_t>(v.size()),
                                  v.data());
}
cudnnStatus_t SetDesc(Desc d, Name name, Desc value) {
  return cudnnBackendSetAttribute(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}
template <class T>
cudnnStatus_t SetOne(Desc d, Name name, cudnnBackendAttributeType_t type, T value) {
  return cudnnBackendSetAttribute(d, name, type, 1, &value);
}
int64_t GetI64(Desc d, Name name) {
  int64_t v = -1, n = 0;
  EXPECT_OK(cudnnBackendGetAttribute(d, name, CUDNN_TYPE_INT64, 1, &n, &v));
  CHECK(n == 1);
  return v;
}

// ---- Geometry -------------------------------------------------------------------------------

int64_t Count(const I64& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// Packed strides of dims [N, C, spatial...] (or [K, C/g, kernel...]): NCHW order, or channels
// last ([N][spatial...][C]).
I64 Packed(const I64& dims, bool channels_last) {
  const int nb = static_cast<int>(dims.size());
  std::vector<int> order(nb);
  for (int i = 0; i < nb; ++i) order[i] = i;
  if (channels_last) {
    for (int i = 1; i + 1 < nb; ++i) order[i] = i + 1;
    order[nb - 1] = 1;
  }
  I64 strides(nb);
  int64_t s = 1;
  for (int i = nb - 1; i >= 0; --i) {
    strides[order[i]] = s;
    s *= dims[order[i]];
  }
  return strides;
}

struct Geometry {
  const char* name;
  cudnnDataType_t type;
  bool channels_last;         // x and y NHWC, w KRSC
  bool filter_channels_last;  // w KRSC (with NCHW x and y)
  I64 x, w;                   // [N, C, spatial...], [K, C/groups, kernel...]
  I64 pad, stride, dil;
  cudnnConvolutionMode_t mode;

  int nsp() const { return static_cast<int>(pad.size()); }
  I64 y() const {
    I64 out = {x[0], w[0]};
    for (int i = 0; i < nsp(); ++i)
      out.push_back((x[i + 2] + 2 * pad[i] - ((w[i + 2] - 1) * dil[i] + 1)) / stride[i] + 1);
    return out;
  }
  I64 XStrides() const { return Packed(x, channels_last); }
  I64 WStrides() const { return Packed(w, channels_last || filter_channels_last); }
  I64 YStrides() const { return Packed(y(), channels_last); }
};

size_t ElemSize(cudnnDataType_t t) {
  return t == CUDNN_DATA_FLOAT ? 4 : 2;
}

Bytes Random(cudnnDataType_t type, int64_t n, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Bytes out(static_cast<size_t>(n) * ElemSize(type));
  for (int64_t i = 0; i < n; ++i) {
    const float v = u(*rng);
    unsigned char* at = out.data() + i * ElemSize(type);
    if (type == CUDNN_DATA_FLOAT) {
      std::memcpy(at, &v, 4);
    } else if (type == CUDNN_DATA_HALF) {
      const __half h = __float2half_rn(v);
      std::memcpy(at, &h, 2);
    } else {
      const __nv_bfloat16 b = __float2bfloat16_rn(v);
      std::memcpy(at, &b, 2);
    }
  }
  return out;
}

std::vector<float> ToFloats(cudnnDataType_t type, const Bytes& bytes) {
  const size_t n = bytes.size() / ElemSize(type);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* at = bytes.data() + i * ElemSize(type);
    if (type == CUDNN_DATA_FLOAT) {
      std::memcpy(&out[i], at, 4);
    } else if (type == CUDNN_DATA_HALF) {
      __half h;
      std::memcpy(&h, at, 2);
      out[i] = __half2float(h);
    } else {
      __nv_bfloat16 b;
      std::memcpy(&b, at, 2);
      out[i] = __bfloat162float(b);
    }
  }
  return out;
}

bool AnyNan(const std::vector<float>& v) {
  for (float f : v)
    if (std::isnan(f)) return true;
  return false;
}

// ---- Device memory ----------------------------------------------------------------------------

struct Buffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) {
    if (cudaMalloc(&p, n) != cudaSuccess) std::abort();
  }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

void Upload(void* d, const Bytes& h) {
  if (cudaMemcpy(d, h.data(), h.size(), cudaMemcpyHostToDevice) != cudaSuccess) std::abort();
}
Bytes Download(const void* d, size_t n) {
  Bytes h(n);
  if (cudaMemcpy(h.data(), d, n, cudaMemcpyDeviceToHost) != cudaSuccess) std::abort();
  return h;
}

// ---- Building graphs ------------------------------------------------------------------------

enum Dir { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
const char* const kDirNames[] = {"forward", "backward data", "backward filter"};

struct OpNames {
  cudnnBackendDescriptorType_t type;
  Name alpha, beta, conv, x, w, y;
};
const OpNames kOps[] = {
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y},
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY},
    {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY},
};

constexpr int64_t kUidX = 101, kUidW = 102, kUidY = 103;

// A tensor with every attribute set; finalized when `finalize`.
Desc MakeTensor(Pool* pool, cudnnDataType_t type, const I64& dims, const I64& strides, int64_t uid,
                int64_t alignment = 16, bool finalize = true) {
  Desc d = pool->Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  EXPECT_OK(SetOne(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, type));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_TENSOR_DIMENSIONS, dims));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_TENSOR_STRIDES, strides));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, {uid}));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {alignment}));
  if (finalize) EXPECT_OK(cudnnBackendFinalize(d));
  return d;
}

// A convolution descriptor with every attribute set (post padding `post`, default the pre).
Desc MakeConvDesc(Pool* pool, const Geometry& g, cudnnStatus_t want = kOk, I64 post = {}) {
  Desc d = pool->Make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  EXPECT_OK(SetOne(d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_FLOAT));
  EXPECT_OK(SetOne(d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, g.mode));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {g.nsp()}));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_CONVOLUTION_DILATIONS, g.dil));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, g.stride));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, g.pad));
  EXPECT_OK(SetI64(d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, post.empty() ? g.pad : post));
  EXPECT_STATUS(cudnnBackendFinalize(d), want);
  return d;
}

Desc MakeOp(Pool* pool, Dir dir, Desc conv, Desc x, Desc w, Desc y, float alpha, float beta,
            cudnnStatus_t want = kOk) {
  const OpNames& n = kOps[dir];
  Desc d = pool->Make(n.type);
  EXPECT_OK(SetOne(d, n.alpha, CUDNN_TYPE_FLOAT, alpha));
  EXPECT_OK(SetOne(d, n.beta, CUDNN_TYPE_DOUBLE, static_cast<double>(beta)));  // both accepted
  EXPECT_OK(SetDesc(d, n.conv, conv));
  EXPECT_OK(SetDesc(d, n.x, x));
  EXPECT_OK(SetDesc(d, n.w, w));
  EXPECT_OK(SetDesc(d, n.y, y));
  EXPECT_STATUS(cudnnBackendFinalize(d), want);
  return d;
}

Desc MakeGraph(Pool* pool, cudnnHandle_t handle, Desc op, cudnnStatus_t want = kOk) {
  Desc d = pool->Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  EXPECT_OK(SetOne(d, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, handle));
  EXPECT_OK(SetDesc(d, CUDNN_ATTR_OPERATIONGRAPH_OPS, op));
  EXPECT_STATUS(cudnnBackendFinalize(d), want);
  return d;
}

Desc MakeHeuristics(Pool* pool, Desc graph, cudnnBackendHeurMode_t mode) {
  Desc d = pool->Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  EXPECT_OK(SetDesc(d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph));
  EXPECT_OK(SetOne(d, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, mode));
  EXPECT_OK(cudnnBackendFinalize(d));
  return d;
}

// The engine configurations the heuristics list (all of them).
std::vector<Desc> Configs(Pool* pool, Desc graph, cudnnBackendHeurMode_t mode) {
  Desc heur = MakeHeuristics(pool, graph, mode);
  int64_t count = -1;
  EXPECT_OK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  std::vector<Desc> cfgs;
  for (int64_t i = 0; i < count; ++i)
    cfgs.push_back(pool->Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
  int64_t got = -1;
  if (count > 0)
    EXPECT_OK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs.data()));
  CHECK(got == count);
  return cfgs;
}

struct EngineInfo {
  int64_t index = -1;
  std::vector<cudnnBackendNumericalNote_t> notes;
  int64_t behavior_notes = -1;
};

EngineInfo EngineOf(Pool* pool, Desc cfg) {
  Desc engine = pool->Make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t n = -1;
  EXPECT_OK(cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine));
  CHECK(n == 1);
  EngineInfo info;
  info.index = GetI64(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
  int64_t count = -1;
  EXPECT_OK(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                     CUDNN_TYPE_NUMERICAL_NOTE, 0, &count, nullptr));
  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  int64_t written = -1;
  EXPECT_OK(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                     CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                                     &written, notes));
  CHECK(written == count);
  if (written >= 0) info.notes.assign(notes, notes + written);
  cudnnBackendBehaviorNote_t behavior[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
  EXPECT_OK(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE,
                                     CUDNN_TYPE_BEHAVIOR_NOTE, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT,
                                     &info.behavior_notes, behavior));
  return info;
}

// The plan of a configuration; `*status` is its Finalize's.
Desc MakePlan(Pool* pool, cudnnHandle_t handle, Desc cfg, cudnnStatus_t* status) {
  Desc d = pool->Make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  EXPECT_OK(SetOne(d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, handle));
  EXPECT_OK(SetDesc(d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg));
  *status = cudnnBackendFinalize(d);
  return d;
}

Desc MakePack(Pool* pool, const I64& uids, const std::vector<void*>& pointers, void* workspace,
              bool set_workspace = true) {
  Desc d = pool->Make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  EXPECT_OK(SetI64(d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, uids));
  EXPECT_OK(cudnnBackendSetAttribute(d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                     static_cast<int64_t>(pointers.size()), pointers.data()));
  if (set_workspace)
    EXPECT_OK(cudnnBackendSetAttribute(d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                                       &workspace));
  EXPECT_OK(cudnnBackendFinalize(d));
  return d;
}

// ---- The legacy reference -------------------------------------------------------------------

// The same convolution through the emulator's legacy calls (1-D widened to 2-D, which the
// legacy descriptors need).
cudnnStatus_t Legacy(cudnnHandle_t h, const Geometry& g, Dir dir, cudnnMathType_t math, float alpha,
                     float beta, void* x, void* w, void* y) {
  auto ints = [&](I64 v, int64_t extra) {
    if (g.nsp() == 1) v.push_back(extra);
    return std::vector<int>(v.begin(), v.end());
  };
  const std::vector<int> xd = ints(g.x, 1), xs = ints(g.XStrides(), 1), yd = ints(g.y(), 1),
                         ys = ints(g.YStrides(), 1), wd = ints(g.w, 1), pad = ints(g.pad, 0),
                         stride = ints(g.stride, 1), dil = ints(g.dil, 1);
  cudnnTensorDescriptor_t xt, yt;
  cudnnFilterDescriptor_t wt;
  cudnnConvolutionDescriptor_t ct;
  cudnnCreateTensorDescriptor(&xt);
  cudnnCreateTensorDescriptor(&yt);
  cudnnCreateFilterDescriptor(&wt);
  cudnnCreateConvolutionDescriptor(&ct);
  const int nb = static_cast<int>(xd.size());
  EXPECT_OK(cudnnSetTensorNdDescriptor(xt, g.type, nb, xd.data(), xs.data()));
  EXPECT_OK(cudnnSetTensorNdDescriptor(yt, g.type, nb, yd.data(), ys.data()));
  EXPECT_OK(cudnnSetFilterNdDescriptor(
      wt, g.type, g.channels_last || g.filter_channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
      nb, wd.data()));
  EXPECT_OK(cudnnSetConvolutionNdDescriptor(ct, nb - 2, pad.data(), stride.data(), dil.data(),
                                            g.mode, CUDNN_DATA_FLOAT));
  EXPECT_OK(cudnnSetConvolutionGroupCount(ct, static_cast<int>(g.x[1] / g.w[1])));
  EXPECT_OK(cudnnSetConvolutionMathType(ct, math));
  cudnnStatus_t s;
  if (dir == kForward) {
    s = cudnnConvolutionForward(h, &alpha, xt, x, wt, w, ct, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                nullptr, 0, &beta, yt, y);
  } else if (dir == kBackwardData) {
    s = cudnnConvolutionBackwardData(h, &alpha, wt, w, yt, y, ct, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                                     nullptr, 0, &beta, xt, x);
  } else {
    s = cudnnConvolutionBackwardFilter(
        h, &alpha, xt, x, yt, y, ct, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &beta, wt, w);
  }
  cudnnDestroyTensorDescriptor(xt);
  cudnnDestroyTensorDescriptor(yt);
  cudnnDestroyFilterDescriptor(wt);
  cudnnDestroyConvolutionDescriptor(ct);
  return s;
}

// ---- Data of one geometry -------------------------------------------------------------------

struct Data {
  Geometry g;
  int64_t counts[3];
  Bytes host[3];   // x, w, y
  Bytes prior[3];  // what a destination holds before a call with beta != 0
  Bytes nan[3];    // ... with beta == 0 (not read)
  Buffer* dev[3];

  explicit Data(const Geometry& geometry, std::mt19937* rng) : g(geometry) {
    const I64 dims[3] = {g.x, g.w, g.y()};
    for (int i = 0; i < 3; ++i) {
      counts[i] = Count(dims[i]);
      host[i] = Random(g.type, counts[i], rng);
      prior[i] = Random(g.type, counts[i], rng);
      nan[i] = Bytes(host[i].size(), 0xff);
      dev[i] = new Buffer(host[i].size());
    }
  }
  ~Data() {
    for (Buffer* b : dev) delete b;
  }
  Data(const Data&) = delete;
  Data& operator=(const Data&) = delete;

  static int Destination(Dir dir) { return dir == kForward ? 2 : dir == kBackwardData ? 0 : 1; }
  // Sources uploaded, the destination set to its prior (NaN when beta is 0).
  void Reset(Dir dir, float beta) {
    const int dst = Destination(dir);
    for (int i = 0; i < 3; ++i)
      Upload(dev[i]->p, i != dst ? host[i] : beta != 0.f ? prior[i] : nan[i]);
  }
  Bytes Result(Dir dir) const {
    const int dst = Destination(dir);
    return Download(dev[dst]->p, dev[dst]->bytes);
  }
  std::vector<void*> Pointers() const { return {dev[0]->p, dev[1]->p, dev[2]->p}; }
};

// The emulated engine table (cudnn_backend_emu.cpp).
const int64_t kListA[] = {1, 3, 2, 0, 4};
const int kNoteOf[] = {-1, CUDNN_NUMERICAL_NOTE_TENSOR_CORE, CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC,
                       CUDNN_NUMERICAL_NOTE_FFT, CUDNN_NUMERICAL_NOTE_WINOGRAD};
const int64_t kWorkspaceOf[] = {0, int64_t{1} << 20, 0, 0, int64_t{4} << 30};

// Every direction of one geometry, every engine the heuristics list, two (alpha, beta)
// pairs: the plans that finalize equal the legacy call of the engine's math type.
void TestGeometry(const Geometry& g, cudnnHandle_t handle, std::mt19937* rng) {
  Pool pool;
  Data data(g, rng);
  Buffer workspace(size_t{1} << 20);
  Desc xt = MakeTensor(&pool, g.type, g.x, g.XStrides(), kUidX);
  Desc wt = MakeTensor(&pool, g.type, g.w, g.WStrides(), kUidW);
  Desc yt = MakeTensor(&pool, g.type, g.y(), g.YStrides(), kUidY);
  Desc conv = MakeConvDesc(&pool, g);
  Desc pack = MakePack(&pool, {kUidY, kUidX, kUidW},
                       {data.dev[2]->p, data.dev[0]->p, data.dev[1]->p}, workspace.p);
  const std::string where = std::string(g.name) + ", ";
  for (Dir dir : {kForward, kBackwardData, kBackwardFilter}) {
    Bytes plain[5];  // alpha 1, beta 0, per engine
    const std::pair<float, float> scalars[] = {{1.f, 0.f}, {0.75f, 1.f}};  // alpha, beta
    for (const auto& [alpha, beta] : scalars) {
      const std::string what = where + kDirNames[dir] + ", alpha " + std::to_string(alpha) +
                               ", beta " + std::to_string(beta);
      Desc op = MakeOp(&pool, dir, conv, xt, wt, yt, alpha, beta);
      Desc graph = MakeGraph(&pool, handle, op);
      const std::vector<Desc> cfgs = Configs(&pool, graph, CUDNN_HEUR_MODE_A);
      selftest::Check(cfgs.size() == 5, what + ": 5 configurations", __LINE__);
      Bytes got[5];
      for (size_t i = 0; i < cfgs.size() && i < 5; ++i) {
        const EngineInfo e = EngineOf(&pool, cfgs[i]);
        selftest::Check(e.index == kListA[i], what + ": heuristics order", __LINE__);
        if (e.index < 0 || e.index > 4) continue;
        const int64_t k = e.index;
        selftest::Check(e.notes.size() == (kNoteOf[k] < 0 ? 0u : 1u) &&
                            (e.notes.empty() || e.notes[0] == kNoteOf[k]),
                        what + ": numerical notes of engine " + std::to_string(k), __LINE__);
        selftest::Check(e.behavior_notes == 0, what + ": no behavior notes", __LINE__);
        cudnnStatus_t status;
        Desc plan = MakePlan(&pool, handle, cfgs[i], &status);
        selftest::Check(status == (k == 3 ? kUnsupported : kOk),
                        what + ": plan finalize of engine " + std::to_string(k), __LINE__);
        if (status != kOk) continue;
        selftest::Check(GetI64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) == kWorkspaceOf[k],
                        what + ": workspace of engine " + std::to_string(k), __LINE__);
        if (k == 4) continue;  // its 4 GiB workspace is not allocated here
        data.Reset(dir, beta);
        EXPECT_OK(cudnnBackendExecute(handle, plan, pack));
        got[k] = data.Result(dir);
        data.Reset(dir, beta);
        EXPECT_OK(Legacy(handle, g, dir, k == 1 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, alpha, beta,
                         data.dev[0]->p, data.dev[1]->p, data.dev[2]->p));
        selftest::Check(
            got[k] == data.Result(dir),
            what + ": engine " + std::to_string(k) + " equals the legacy call bit for bit",
            __LINE__);
        selftest::Check(!AnyNan(ToFloats(g.type, got[k])), what + ": no NaN (beta 0 reads nothing)",
                        __LINE__);
      }
      selftest::Check(got[2] == got[0], what + ": engines 0 and 2 agree", __LINE__);
      if (g.type == CUDNN_DATA_FLOAT)  // engine 1 reads fp32 operands rounded to TF32
        selftest::Check(got[1] != got[0], what + ": engine 1 (TF32) differs from engine 0",
                        __LINE__);
      if (beta == 0.f) {
        for (int k = 0; k < 5; ++k) plain[k] = got[k];
      } else {  // beta 1 accumulates: alpha * plain + prior
        const std::vector<float> acc = ToFloats(g.type, got[0]), base = ToFloats(g.type, plain[0]),
                                 prior = ToFloats(g.type, data.prior[Data::Destination(dir)]);
        bool ok = acc.size() == base.size() && acc.size() == prior.size() && !acc.empty();
        const double tol = g.type == CUDNN_DATA_FLOAT ? 1e-5 : 2e-2;
        for (size_t j = 0; ok && j < acc.size(); ++j) {
          const double scale = std::max({1.0, std::fabs(static_cast<double>(acc[j])),
                                         std::fabs(static_cast<double>(base[j])),
                                         std::fabs(static_cast<double>(prior[j]))});
          ok = std::fabs(acc[j] - (alpha * base[j] + prior[j])) <= tol * scale;
        }
        selftest::Check(ok, what + ": beta 1 accumulates onto the prior destination", __LINE__);
      }
    }
  }
}

// ---- Heuristics, engines, workspaces ----------------------------------------------------------

void TestEngines(cudnnHandle_t handle) {
  Pool pool;
  const Geometry g = {"small",      CUDNN_DATA_FLOAT, false,  false,  {1, 2, 4, 4},
                      {2, 2, 3, 3}, {1, 1},           {1, 1}, {1, 1}, CUDNN_CROSS_CORRELATION};
  Desc xt = MakeTensor(&pool, g.type, g.x, g.XStrides(), kUidX);
  Desc wt = MakeTensor(&pool, g.type, g.w, g.WStrides(), kUidW);
  Desc yt = MakeTensor(&pool, g.type, g.y(), g.YStrides(), kUidY);
  Desc conv = MakeConvDesc(&pool, g);
  Desc op = MakeOp(&pool, kForward, conv, xt, wt, yt, 1.f, 0.f);
  Desc graph = MakeGraph(&pool, handle, op);
  CHECK(GetI64(graph, CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT) == 5);

  for (cudnnBackendHeurMode_t mode :
       {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_INSTANT, CUDNN_HEUR_MODE_FALLBACK}) {
    const std::vector<Desc> cfgs = Configs(&pool, graph, mode);
    std::vector<int64_t> engines;
    for (Desc c : cfgs) engines.push_back(EngineOf(&pool, c).index);
    if (mode == CUDNN_HEUR_MODE_FALLBACK)
      CHECK(engines == I64{0});
    else
      CHECK(engines == I64(std::begin(kListA), std::end(kListA)));
  }

  // Fewer configurations requested than listed: the first ones; more: all, count says so.
  Desc heur = MakeHeuristics(&pool, graph, CUDNN_HEUR_MODE_A);
  std::vector<Desc> cfgs;
  for (int i = 0; i < 7; ++i) cfgs.push_back(pool.Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
  int64_t n = -1;
  EXPECT_OK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 2, &n, cfgs.data()));
  CHECK(n == 2);
  CHECK(EngineOf(&pool, cfgs[0]).index == 1 && EngineOf(&pool, cfgs[1]).index == 3);
  int64_t probe = -1;
  EXPECT_STATUS(cudnnBackendGetAttribute(cfgs[2], CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &n, &probe),
                kBad);  // not filled: not finalized
  EXPECT_OK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 7, &n, cfgs.data()));
  CHECK(n == 5);
  for (int i = 0; i < 5; ++i)
    CHECK(GetI64(cfgs[i], CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE) == kWorkspaceOf[kListA[i]]);
  // The filled configurations are finalized: nothing may be set on them, nor finalize twice.
  Desc engine = pool.Make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  EXPECT_STATUS(SetDesc(cfgs[0], CUDNN_ATTR_ENGINECFG_ENGINE, engine), kBad);
  EXPECT_STATUS(cudnnBackendFinalize(cfgs[0]), kBad);

  // Every plan's workspace, and engine 3's refusal.
  for (int i = 0; i < 5; ++i) {
    cudnnStatus_t status;
    Desc plan = MakePlan(&pool, handle, cfgs[i], &status);
    const int64_t k = kListA[i];
    EXPECT_STATUS(status, k == 3 ? kUnsupported : kOk);
    if (status == kOk)
      CHECK(GetI64(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) == kWorkspaceOf[k]);
    if (status != kOk) {
      int64_t ws = -1;
      EXPECT_STATUS(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                             CUDNN_TYPE_INT64, 1, &n, &ws),
                    kBad);
    }
  }

  // An engine and its configuration built by hand.
  EXPECT_OK(SetDesc(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, graph));
  EXPECT_STATUS(SetI64(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, {5}), kBad);
  EXPECT_OK(SetI64(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, {2}));
  EXPECT_OK(cudnnBackendFinalize(engine));
  Desc cfg = pool.Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  EXPECT_OK(SetDesc(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, engine));
  EXPECT_OK(cudnnBackendFinalize(cfg));
  const EngineInfo info = EngineOf(&pool, cfg);
  CHECK(info.index == 2 && info.notes.size() == 1 &&
        info.notes[0] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
  cudnnStatus_t status;
  MakePlan(&pool, handle, cfg, &status);
  EXPECT_OK(status);

  // Attributes read back as set; requested 0 gives the count.
  int64_t dims[8] = {};
  EXPECT_OK(
      cudnnBackendGetAttribute(xt, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 0, &n, nullptr));
  CHECK(n == 4);
  EXPECT_OK(
      cudnnBackendGetAttribute(xt, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 8, &n, dims));
  CHECK(n == 4 && I64(dims, dims + 4) == g.x);
}

// ---- Validation -------------------------------------------------------------------------------

void TestValidation(cudnnHandle_t handle) {
  Pool pool;
  const Geometry g = {"validation", CUDNN_DATA_FLOAT, false,  false,  {2, 4, 5, 4},
                      {6, 2, 3, 3}, {1, 1},           {2, 2}, {1, 1}, CUDNN_CROSS_CORRELATION};
  const I64 y = g.y();  // [2, 6, 3, 2]
  CHECK(y == (I64{2, 6, 3, 2}));
  int64_t n = 0, v = 0;

  // Null and foreign descriptors.
  Desc out = nullptr;
  EXPECT_STATUS(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, nullptr), kBad);
  EXPECT_STATUS(cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &out),
                kUnsupported);
  EXPECT_STATUS(SetI64(nullptr, CUDNN_ATTR_TENSOR_UNIQUE_ID, {1}), kBad);
  EXPECT_STATUS(cudnnBackendFinalize(nullptr), kBad);
  EXPECT_STATUS(
      cudnnBackendGetAttribute(nullptr, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &n, &v),
      kBad);
  EXPECT_STATUS(cudnnBackendDestroyDescriptor(nullptr), kBad);
  int not_a_descriptor = 0;
  EXPECT_STATUS(SetI64(&not_a_descriptor, CUDNN_ATTR_TENSOR_UNIQUE_ID, {1}), kBad);
  EXPECT_STATUS(cudnnBackendExecute(handle, nullptr, nullptr), kBad);

  // Tensors: wrong attribute type, wrong counts, domains, missing attributes, overlap.
  Desc t = pool.Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int32_t dims32[4] = {2, 4, 5, 4};
  EXPECT_STATUS(
      cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT32, 4, dims32), kBad);
  EXPECT_STATUS(SetOne(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_INT64, int64_t{0}), kBad);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_DIMENSIONS, {2, 4}), kBad);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_DIMENSIONS, I64(9, 1)), kBad);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_DIMENSIONS, {2, 0, 5, 4}), kBad);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, {1, 2}), kBad);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {12}), kBad);
  EXPECT_STATUS(SetOne(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_DOUBLE),
                kUnsupported);
  EXPECT_STATUS(SetOne(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, true), kUnsupported);
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {2}), kBad);  // another type's
  EXPECT_STATUS(
      cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, nullptr), kBad);
  EXPECT_OK(SetOne(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_FLOAT));
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_DIMENSIONS, g.x));
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_STRIDES, {1, 1, 1, 1, 1}), kBad);  // 5 vs 4 dims
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, {kUidX}));
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {16}));
  EXPECT_STATUS(cudnnBackendFinalize(t), kBad);  // no strides
  EXPECT_STATUS(
      cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &n, &v),
      kBad);                                                        // not finalized
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_STRIDES, {80, 20, 4, 2}));  // h and w overlap
  EXPECT_STATUS(cudnnBackendFinalize(t), kBad);
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_STRIDES, g.XStrides()));
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {2}));  // below the element size
  EXPECT_STATUS(cudnnBackendFinalize(t), kBad);
  EXPECT_OK(SetI64(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {16}));
  EXPECT_OK(cudnnBackendFinalize(t));
  EXPECT_STATUS(cudnnBackendFinalize(t), kBad);                          // twice
  EXPECT_STATUS(SetI64(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, {kUidY}), kBad);  // finalized
  EXPECT_STATUS(
      cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT32, 1, &n, &v),
      kBad);  // wrong type
  EXPECT_OK(cudnnBackendGetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &n, &v));
  CHECK(n == 1 && v == kUidX);
  const Desc xt = t;
  const Desc wt = MakeTensor(&pool, g.type, g.w, g.WStrides(), kUidW);
  const Desc yt = MakeTensor(&pool, g.type, y, g.YStrides(), kUidY);
  const Desc unfinalized = MakeTensor(&pool, g.type, y, g.YStrides(), kUidY, 16, false);

  // Convolution descriptors.
  Desc c = pool.Make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  EXPECT_STATUS(SetOne(c, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_HALF),
                kUnsupported);
  EXPECT_STATUS(SetOne(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE,
                       static_cast<cudnnConvolutionMode_t>(7)),
                kBad);
  EXPECT_STATUS(SetI64(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {0}), kBad);
  EXPECT_OK(SetI64(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {2}));
  EXPECT_STATUS(SetI64(c, CUDNN_ATTR_CONVOLUTION_DILATIONS, {1, 1, 1}), kBad);  // 3 of 2
  EXPECT_STATUS(SetI64(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {1, 0}), kBad);
  EXPECT_STATUS(SetI64(c, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {-1, 0}), kBad);
  EXPECT_STATUS(cudnnBackendFinalize(c), kBad);  // attributes missing
  MakeConvDesc(&pool, g, kUnsupported, {1, 2});  // post != pre
  const Desc conv = MakeConvDesc(&pool, g);

  // Operations: descriptor arguments, geometry.
  Desc op = pool.Make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  EXPECT_STATUS(
      SetOne(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_INT64, int64_t{1}),
      kBad);
  EXPECT_STATUS(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, conv), kBad);  // type
  EXPECT_STATUS(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, unfinalized), kBad);
  EXPECT_STATUS(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, xt), kBad);
  EXPECT_STATUS(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, xt), kBad);  // bwd's
  const Desc two[2] = {xt, xt};
  EXPECT_STATUS(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 2, two),
                kBad);
  EXPECT_OK(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, xt));
  EXPECT_STATUS(cudnnBackendFinalize(op), kBad);  // missing alpha, beta, w, y, conv
  {
    Pool local;
    Desc doomed = MakeTensor(&local, g.type, y, g.YStrides(), kUidY);
    local.Destroy(doomed);
    EXPECT_STATUS(SetDesc(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, doomed), kBad);
    EXPECT_STATUS(cudnnBackendDestroyDescriptor(doomed), kBad);  // twice
  }
  const Desc bad_y = MakeTensor(&pool, g.type, {2, 6, 3, 3}, Packed({2, 6, 3, 3}, false), kUidY);
  MakeOp(&pool, kForward, conv, xt, wt, bad_y, 1.f, 0.f, kBad);       // y dims off
  MakeOp(&pool, kBackwardData, conv, xt, wt, bad_y, 1.f, 0.f, kBad);  // dy dims off
  const Desc bad_w = MakeTensor(&pool, g.type, {6, 3, 3, 3}, Packed({6, 3, 3, 3}, false), kUidW);
  MakeOp(&pool, kForward, conv, xt, bad_w, yt, 1.f, 0.f, kBad);  // 3 does not divide C = 4
  const Desc half_w = MakeTensor(&pool, CUDNN_DATA_HALF, g.w, g.WStrides(), kUidW);
  MakeOp(&pool, kForward, conv, xt, half_w, yt, 1.f, 0.f, kBad);  // mixed data types
  const Desc fwd = MakeOp(&pool, kForward, conv, xt, wt, yt, 1.f, 0.f);

  // Graphs: one op, distinct unique ids, the refusal hook.
  Desc graph = pool.Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  const Desc ops[2] = {fwd, fwd};
  EXPECT_STATUS(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 2, ops),
                kUnsupported);
  EXPECT_STATUS(SetDesc(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, xt), kBad);
  EXPECT_STATUS(SetOne(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE,
                       static_cast<cudnnHandle_t>(nullptr)),
                kBad);
  EXPECT_OK(SetDesc(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, fwd));
  EXPECT_STATUS(cudnnBackendFinalize(graph), kBad);  // no handle
  const Desc same_uid = MakeTensor(&pool, g.type, y, g.YStrides(), kUidX);
  MakeGraph(&pool, handle, MakeOp(&pool, kForward, conv, xt, wt, same_uid, 1.f, 0.f), kBad);
  setenv("CREMA_EMU_CUDNN_BACKEND_REFUSE", "1", 1);
  MakeGraph(&pool, handle, fwd, kUnsupported);
  setenv("CREMA_EMU_CUDNN_BACKEND_REFUSE", "0", 1);
  MakeGraph(&pool, handle, fwd);
  unsetenv("CREMA_EMU_CUDNN_BACKEND_REFUSE");
  const Desc fwd_graph = MakeGraph(&pool, handle, fwd);

  // Heuristics and plans.
  Desc heur = pool.Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  EXPECT_STATUS(SetOne(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE,
                       static_cast<cudnnBackendHeurMode_t>(9)),
                kBad);
  EXPECT_STATUS(SetDesc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, fwd), kBad);
  EXPECT_OK(SetDesc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, fwd_graph));
  EXPECT_STATUS(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, nullptr),
                kBad);                              // not finalized
  EXPECT_STATUS(cudnnBackendFinalize(heur), kBad);  // no mode
  EXPECT_OK(SetOne(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, CUDNN_HEUR_MODE_A));
  EXPECT_OK(cudnnBackendFinalize(heur));
  Desc wrong[1] = {pool.Make(CUDNN_BACKEND_ENGINE_DESCRIPTOR)};
  EXPECT_STATUS(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, wrong),
                kBad);  // not an engine configuration
  EXPECT_STATUS(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, nullptr, nullptr),
                kBad);  // no count
  EXPECT_STATUS(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_INT64, 0,
                                         &n, nullptr),
                kBad);                                                          // wrong type
  const std::vector<Desc> cfgs = Configs(&pool, fwd_graph, CUDNN_HEUR_MODE_A);  // 1, 3, 2, 0, 4
  Desc engine = pool.Make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  EXPECT_OK(cudnnBackendGetAttribute(cfgs[0], CUDNN_ATTR_ENGINECFG_ENGINE,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine));
  EXPECT_STATUS(
      cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT32, 1, &n, &v),
      kBad);  // wrong type
  Desc plan_e1 = pool.Make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
  EXPECT_STATUS(SetDesc(plan_e1, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, engine), kBad);
  EXPECT_STATUS(SetDesc(plan_e1, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                        pool.Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)),
                kBad);  // not finalized
  EXPECT_OK(SetDesc(plan_e1, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfgs[0]));
  EXPECT_STATUS(cudnnBackendFinalize(plan_e1), kBad);  // no handle
  EXPECT_STATUS(cudnnBackendGetAttribute(plan_e1, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &n, &v),
                kBad);  // not finalized
  EXPECT_OK(SetOne(plan_e1, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, handle));
  EXPECT_OK(cudnnBackendFinalize(plan_e1));
  cudnnStatus_t status;
  const Desc plan_e0 = MakePlan(&pool, handle, cfgs[3], &status);
  EXPECT_OK(status);

  // A filter in an order the legacy filter descriptor cannot express: no plan.
  {
    const Desc odd_w = MakeTensor(&pool, g.type, g.w, {9, 54, 3, 1}, kUidW);  // C outermost
    const Desc odd_op = MakeOp(&pool, kForward, conv, xt, odd_w, yt, 1.f, 0.f);
    const std::vector<Desc> odd =
        Configs(&pool, MakeGraph(&pool, handle, odd_op), CUDNN_HEUR_MODE_FALLBACK);
    MakePlan(&pool, handle, odd[0], &status);
    EXPECT_STATUS(status, kUnsupported);
  }

  // Variant packs.
  Desc p = pool.Make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  void* three[3] = {nullptr, nullptr, nullptr};
  EXPECT_OK(SetI64(p, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, {kUidX, kUidW, kUidY}));
  EXPECT_STATUS(cudnnBackendSetAttribute(p, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                         CUDNN_TYPE_VOID_PTR, 2, three),
                kBad);  // 2 pointers for 3 ids
  EXPECT_STATUS(cudnnBackendSetAttribute(p, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_INT64,
                                         3, three),
                kBad);                                           // wrong type
  EXPECT_STATUS(cudnnBackendFinalize(p), kBad);                  // no pointers
  EXPECT_STATUS(cudnnBackendExecute(handle, plan_e0, p), kBad);  // pack not finalized
  Desc dup = pool.Make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  EXPECT_OK(SetI64(dup, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, {kUidX, kUidX, kUidY}));
  EXPECT_OK(cudnnBackendSetAttribute(dup, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                     CUDNN_TYPE_VOID_PTR, 3, three));
  EXPECT_STATUS(cudnnBackendFinalize(dup), kBad);  // an id twice

  // Execute: pointers, alignment, unique ids, workspace.
  std::mt19937 rng(7);
  Data data(g, &rng);
  Buffer shifted(data.dev[0]->bytes + 16);  // x at byte 4 of an allocation
  Buffer workspace(size_t{1} << 20);
  void* const x_at_4 = static_cast<char*>(shifted.p) + 4;
  const I64 uids = {kUidX, kUidW, kUidY};
  auto pointers = [&](void* x) { return std::vector<void*>{x, data.dev[1]->p, data.dev[2]->p}; };
  data.Reset(kForward, 0.f);
  EXPECT_OK(cudnnBackendExecute(handle, plan_e0, MakePack(&pool, uids, data.Pointers(), nullptr)));
  EXPECT_OK(
      cudnnBackendExecute(handle, plan_e0, MakePack(&pool, uids, data.Pointers(), nullptr, false)));
  EXPECT_STATUS(
      cudnnBackendExecute(nullptr, plan_e0, MakePack(&pool, uids, data.Pointers(), nullptr)),
      kBad);  // no handle
  EXPECT_STATUS(cudnnBackendExecute(handle, MakePack(&pool, uids, data.Pointers(), nullptr),
                                    MakePack(&pool, uids, data.Pointers(), nullptr)),
                kBad);  // a pack for a plan
  EXPECT_STATUS(
      cudnnBackendExecute(handle, plan_e0, MakePack(&pool, uids, pointers(x_at_4), nullptr)),
      kBad);  // misaligned x
  EXPECT_STATUS(cudnnBackendExecute(
                    handle, plan_e0,
                    MakePack(&pool, {kUidX, kUidW}, {data.dev[0]->p, data.dev[1]->p}, nullptr)),
                kBad);  // y missing
  EXPECT_STATUS(
      cudnnBackendExecute(
          handle, plan_e0,
          MakePack(&pool, {kUidX, kUidW, kUidY, 7},
                   {data.dev[0]->p, data.dev[1]->p, data.dev[2]->p, data.dev[2]->p}, nullptr)),
      kBad);  // an id the plan does not know
  EXPECT_STATUS(
      cudnnBackendExecute(handle, plan_e0, MakePack(&pool, uids, pointers(nullptr), nullptr)),
      kBad);  // null x
  EXPECT_STATUS(
      cudnnBackendExecute(handle, plan_e1, MakePack(&pool, uids, data.Pointers(), nullptr)),
      kBad);  // engine 1 needs 1 MiB of workspace
  EXPECT_OK(
      cudnnBackendExecute(handle, plan_e1, MakePack(&pool, uids, data.Pointers(), workspace.p)));
  {  // with a 4-byte alignment promised, x at byte 4 is fine
    const Desc x4 = MakeTensor(&pool, g.type, g.x, g.XStrides(), kUidX, 4);
    const Desc op4 = MakeOp(&pool, kForward, conv, x4, wt, yt, 1.f, 0.f);
    const std::vector<Desc> c4 =
        Configs(&pool, MakeGraph(&pool, handle, op4), CUDNN_HEUR_MODE_FALLBACK);
    const Desc plan4 = MakePlan(&pool, handle, c4[0], &status);
    EXPECT_OK(status);
    Upload(x_at_4, data.host[0]);
    EXPECT_OK(cudnnBackendExecute(handle, plan4, MakePack(&pool, uids, pointers(x_at_4), nullptr)));
    const Bytes shifted_result = data.Result(kForward);
    data.Reset(kForward, 0.f);
    EXPECT_OK(
        cudnnBackendExecute(handle, plan_e0, MakePack(&pool, uids, data.Pointers(), nullptr)));
    CHECK(shifted_result == data.Result(kForward));
  }
}

// ---- Stream capture ---------------------------------------------------------------------------

// A plan executed on a capturing stream is recorded, not run; the replay computes what the
// eager call did.
void TestCapture(cudnnHandle_t handle) {
  Pool pool;
  const Geometry g = {"capture",    CUDNN_DATA_FLOAT, false,  false,  {2, 4, 5, 4},
                      {6, 2, 3, 3}, {1, 1},           {2, 2}, {1, 1}, CUDNN_CROSS_CORRELATION};
  std::mt19937 rng(11);
  Data data(g, &rng);
  Desc conv = MakeConvDesc(&pool, g);
  Desc op = MakeOp(&pool, kForward, conv, MakeTensor(&pool, g.type, g.x, g.XStrides(), kUidX),
                   MakeTensor(&pool, g.type, g.w, g.WStrides(), kUidW),
                   MakeTensor(&pool, g.type, g.y(), g.YStrides(), kUidY), 1.f, 1.f);
  const std::vector<Desc> cfgs =
      Configs(&pool, MakeGraph(&pool, handle, op), CUDNN_HEUR_MODE_FALLBACK);
  cudnnStatus_t status;
  Desc plan = MakePlan(&pool, handle, cfgs[0], &status);
  EXPECT_OK(status);
  Desc pack = MakePack(&pool, {kUidX, kUidW, kUidY}, data.Pointers(), nullptr);
  data.Reset(kForward, 1.f);
  EXPECT_OK(cudnnBackendExecute(handle, plan, pack));
  const Bytes eager = data.Result(kForward);

  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream) == cudaSuccess);
  EXPECT_OK(cudnnSetStream(handle, stream));
  data.Reset(kForward, 1.f);
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  EXPECT_OK(cudnnBackendExecute(handle, plan, pack));
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  CHECK(data.Result(kForward) == data.prior[2]);  // nothing ran
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (Desc d : std::vector<Desc>(pool.live())) pool.Destroy(d);  // the graph needs none
  CHECK(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(data.Result(kForward) == eager);
  CHECK(cudaGraphExecDestroy(exec) == cudaSuccess);
  CHECK(cudaGraphDestroy(graph) == cudaSuccess);
  EXPECT_OK(cudnnSetStream(handle, nullptr));
  CHECK(cudaStreamDestroy(stream) == cudaSuccess);
}

// ---- Destruction order ------------------------------------------------------------------------

// A whole chain destroyed in shuffled orders; a plan and its pack still execute after every
// descriptor they were built from is gone.
void TestDestructionOrder(cudnnHandle_t handle) {
  const Geometry g = {"order",      CUDNN_DATA_FLOAT, false,  false,  {1, 2, 4, 4},
                      {2, 2, 3, 3}, {1, 1},           {1, 1}, {1, 1}, CUDNN_CROSS_CORRELATION};
  std::mt19937 rng(5);
  Data data(g, &rng);
  Bytes reference;
  for (int seed = 0; seed < 6; ++seed) {
    Pool pool;
    Desc conv = MakeConvDesc(&pool, g);
    Desc op =
        MakeOp(&pool, kBackwardFilter, conv, MakeTensor(&pool, g.type, g.x, g.XStrides(), kUidX),
               MakeTensor(&pool, g.type, g.w, g.WStrides(), kUidW),
               MakeTensor(&pool, g.type, g.y(), g.YStrides(), kUidY), 1.f, 0.f);
    Desc graph = MakeGraph(&pool, handle, op);
    const std::vector<Desc> cfgs = Configs(&pool, graph, CUDNN_HEUR_MODE_A);
    EngineOf(&pool, cfgs[3]);  // an engine descriptor too
    cudnnStatus_t status;
    Desc plan = MakePlan(&pool, handle, cfgs[3], &status);  // engine 0
    EXPECT_OK(status);
    Desc pack = MakePack(&pool, {kUidX, kUidW, kUidY}, data.Pointers(), nullptr);
    data.Reset(kBackwardFilter, 0.f);
    EXPECT_OK(cudnnBackendExecute(handle, plan, pack));
    if (seed == 0) reference = data.Result(kBackwardFilter);
    std::vector<Desc> order = pool.live();
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    const bool keep = seed % 2 == 0;  // keep the plan and pack to the end
    for (Desc d : order)
      if (!keep || (d != plan && d != pack)) pool.Destroy(d);
    if (keep) {
      data.Reset(kBackwardFilter, 0.f);
      EXPECT_OK(cudnnBackendExecute(handle, plan, pack));
      CHECK(data.Result(kBackwardFilter) == reference);
      pool.Destroy(pack);
      pool.Destroy(plan);
    } else {
      EXPECT_STATUS(cudnnBackendExecute(handle, plan, pack), kBad);  // destroyed: caught
    }
    CHECK(pool.live().empty());
  }
}

}  // namespace

int main() {
  cudnnHandle_t handle = nullptr;
  if (cudnnCreate(&handle) != kOk) return 1;
  std::mt19937 rng(2024);
  const cudnnConvolutionMode_t xcorr = CUDNN_CROSS_CORRELATION, conv = CUDNN_CONVOLUTION;
  const Geometry geometries[] = {
      // name, type, NHWC, KRSC filter only, x, w, pad, stride, dilation, mode
      {"fp32 NCHW grouped 2-D",
       CUDNN_DATA_FLOAT,
       false,
       false,
       {2, 4, 5, 4},
       {6, 2, 3, 3},
       {1, 1},
       {2, 2},
       {1, 1},
       xcorr},
      {"fp16 NHWC grouped dilated 2-D",
       CUDNN_DATA_HALF,
       true,
       false,
       {2, 6, 6, 5},
       {4, 3, 3, 3},
       {1, 1},
       {1, 1},
       {2, 2},
       conv},
      {"fp32 NCHW with a KRSC filter",
       CUDNN_DATA_FLOAT,
       false,
       true,
       {1, 4, 4, 4},
       {2, 4, 2, 3},
       {0, 1},
       {1, 1},
       {1, 1},
       xcorr},
      {"bf16 NCHW 2-D",
       CUDNN_DATA_BFLOAT16,
       false,
       false,
       {2, 3, 5, 5},
       {4, 3, 3, 3},
       {1, 1},
       {1, 2},
       {1, 1},
       xcorr},
      {"fp32 NCHW 3-D",
       CUDNN_DATA_FLOAT,
       false,
       false,
       {1, 2, 3, 4, 5},
       {2, 2, 2, 3, 3},
       {1, 0, 1},
       {1, 2, 1},
       {1, 1, 2},
       conv},
      {"fp32 NHWC 1-D", CUDNN_DATA_FLOAT, true, false, {2, 3, 7}, {4, 3, 3}, {1}, {2}, {1}, xcorr},
  };
  for (const Geometry& g : geometries) TestGeometry(g, handle, &rng);
  TestEngines(handle);
  TestValidation(handle);
  TestCapture(handle);
  TestDestructionOrder(handle);
  cudnnDestroy(handle);
  return selftest::Summary("cudnn_backend_emu_selftest");
}
