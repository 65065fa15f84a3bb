// Host-side emulation of the cuDNN 9 graph (backend) API subset used by crema, for the CUDA
// emulator (tests/cuda_emu): operation graphs of exactly one convolution (forward, backward
// data or backward filter), engine heuristics, engine configurations, execution plans and
// variant packs. Written from NVIDIA's backend API documentation and cudnn_graph.h, not
// from crema's adapter.
//
// Every descriptor is a Descriptor (below) that records its type, whether it is finalized,
// and a copy of every attribute set on it. Validation is strict: whatever crema does not
// use is refused, so that an adapter that only passes here has a chance on a real GPU.
//
// Execution: cudnnBackendExecute builds legacy descriptors (tensor, filter, convolution
// with group count and math type) from the plan and calls this emulator's own
// cudnnConvolutionForward / cudnnConvolutionBackwardData / cudnnConvolutionBackwardFilter
// (cudnn_emu.cpp) with the handle it was given. Stream capture, the alpha/beta semantics,
// TF32 rounding of FLOAT operands under math types other than CUDNN_FMA_MATH and the 16-bit
// widening are therefore exactly those of the legacy calls.
//
// Emulated engines: the same table for every convolution graph.
//
//   global | numerical note   | workspace         | plan finalize  | computes as (legacy math)
//   -------+------------------+-------------------+----------------+-------------------------
//      0   | (none)           | 0                 | ok             | CUDNN_FMA_MATH (exact fp32)
//      1   | TENSOR_CORE      | 1 MiB   (1 << 20) | ok             | CUDNN_DEFAULT_MATH (TF32)
//      2   | NONDETERMINISTIC | 0                 | ok             | CUDNN_FMA_MATH
//      3   | FFT              | 0                 | NOT_SUPPORTED  | -
//      4   | WINOGRAD         | 4 GiB   (4 << 30) | ok             | CUDNN_FMA_MATH
//
// No engine has behavior notes. Heuristics: modes A, B and INSTANT list engines 1, 3, 2, 0,
// 4 in that order; FALLBACK lists engine 0 only. CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT
// is 5. Test hook: while the environment variable CREMA_EMU_CUDNN_BACKEND_REFUSE is set to a
// value other than "" and "0" (read on every call), finalizing an operation graph fails with
// CUDNN_STATUS_NOT_SUPPORTED, as for a graph no engine supports.
//
// Validation (CUDNN_STATUS_BAD_PARAM unless noted):
//  - any function: a null descriptor, or one that is not a live descriptor of this emulator
//    (never created, or destroyed: a destroyed descriptor is caught, not dereferenced, unless
//    a new descriptor took its address);
//  - cudnnBackendCreateDescriptor: a descriptor type outside the subset: NOT_SUPPORTED;
//  - SetAttribute: on a finalized descriptor; an attribute of another descriptor type
//    (one of this descriptor type's own attributes outside the subset: NOT_SUPPORTED); an
//    attribute type other than the expected one; an element count outside the expected
//    range (3..8 tensor dims and strides, spatial-dims-long convolution arrays, one of
//    everything else; more than one operation in a graph: NOT_SUPPORTED); a null array;
//    a value out of its domain (a data type other than FLOAT, HALF, BFLOAT16 for tensors
//    and other than FLOAT for the convolution's compute type: NOT_SUPPORTED; dims,
//    strides, filter strides and dilations < 1, paddings < 0, a byte alignment that is not
//    a power of two, a null handle, an unknown mode, spatial dims < 1 (> 3: NOT_SUPPORTED),
//    an engine index outside 0..4); a BACKEND_DESCRIPTOR value that is not a live,
//    finalized descriptor of the expected type;
//  - Finalize: a descriptor already finalized; a required attribute missing (every
//    settable attribute is required but the variant pack's workspace); a descriptor
//    attribute whose descriptor was destroyed since; then per type: tensor (dims and
//    strides counts equal, byte alignment >= element size, no two dims overlapping in
//    memory), convolution (array counts == spatial dims; post != pre padding:
//    NOT_SUPPORTED), operation (ranks == spatial dims + 2; x, w and y of one data type;
//    groups = C / w dim 1 dividing C and K; y dims [N, K, out...] with out = (in + pre +
//    post - ((k - 1) * dil + 1)) / stride + 1 and a non-negative numerator), operation
//    graph (the op's three tensor unique ids distinct), execution plan (engine 3, a filter
//    stored in an order other than packed KCRS or KRSC, or a dim or stride beyond int:
//    NOT_SUPPORTED), variant pack (as many pointers as ids; no id twice);
//  - GetAttribute: a descriptor not finalized; an attribute type other than the expected
//    one; requested < 0; requested 0 with a null count; requested > 0 with a null array;
//    engine (config) descriptors to fill that are not live descriptors of that type;
//  - Execute: a null handle; a plan or pack not finalized (or of the wrong type); one of the
//    op's tensors' unique ids missing from the pack, or its pointer null; an id in the pack
//    that is not one of the op's tensors; a pointer not a multiple of its tensor's
//    CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT; a null workspace when the plan needs one (a non-null
//    one must be device memory of the plan's workspace size, as every tensor must be:
//    otherwise the emulator aborts with a message, as for the legacy calls).
// Each failure also records a message that cudnnGetLastErrorString returns.
//
// Readable attributes (after Finalize): OPERATIONGRAPH_ENGINE_GLOBAL_COUNT, ENGINEHEUR_RESULTS
// (fills caller-created ENGINECFG descriptors), ENGINECFG_ENGINE (fills a caller-created
// ENGINE descriptor), ENGINECFG_WORKSPACE_SIZE, ENGINE_GLOBAL_INDEX, ENGINE_NUMERICAL_NOTE,
// ENGINE_BEHAVIOR_NOTE, EXECUTION_PLAN_WORKSPACE_SIZE, and every attribute that was set,
// but for descriptor-valued ones. Engines and engine configurations may also be built by
// hand (ENGINE: OPERATION_GRAPH + GLOBAL_INDEX; ENGINECFG: ENGINE).
//
// Finalize copies what it needs out of the descriptors an attribute names, so a plan
// executes however its sources were destroyed since, and destruction in any order is safe.
// 1-D convolutions run as 2-D ones with a trailing spatial extent of 1.

#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"

namespace {

constexpr cudnnStatus_t kOk = CUDNN_STATUS_SUCCESS;
constexpr cudnnStatus_t kBad = CUDNN_STATUS_BAD_PARAM;
constexpr cudnnStatus_t kUnsupported = CUDNN_STATUS_NOT_SUPPORTED;

using DescType = cudnnBackendDescriptorType_t;
using Name = cudnnBackendAttributeName_t;
using AttrType = cudnnBackendAttributeType_t;

// ---------------------------------------------------------------------------
// The engine table (see the header comment).
// ---------------------------------------------------------------------------

constexpr int kNoNote = -1;

struct EngineSpec {
  int note;  // a cudnnBackendNumericalNote_t, or kNoNote
  int64_t workspace;
  bool plan_ok;
  cudnnMathType_t math;
};

constexpr EngineSpec kEngines[] = {
    {kNoNote, 0, true, CUDNN_FMA_MATH},
    {CUDNN_NUMERICAL_NOTE_TENSOR_CORE, int64_t{1} << 20, true, CUDNN_DEFAULT_MATH},
    {CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, 0, true, CUDNN_FMA_MATH},
    {CUDNN_NUMERICAL_NOTE_FFT, 0, false, CUDNN_FMA_MATH},
    {CUDNN_NUMERICAL_NOTE_WINOGRAD, int64_t{4} << 30, true, CUDNN_FMA_MATH},
};
constexpr int64_t kEngineCount = sizeof(kEngines) / sizeof(kEngines[0]);
constexpr int64_t kHeuristicOrder[] = {1, 3, 2, 0, 4};
constexpr int64_t kFallbackOrder[] = {0};

std::vector<int64_t> HeuristicResults(cudnnBackendHeurMode_t mode) {
  if (mode == CUDNN_HEUR_MODE_FALLBACK)
    return std::vector<int64_t>(std::begin(kFallbackOrder), std::end(kFallbackOrder));
  return std::vector<int64_t>(std::begin(kHeuristicOrder), std::end(kHeuristicOrder));
}

bool GraphsRefused() {
  const char* e = std::getenv("CREMA_EMU_CUDNN_BACKEND_REFUSE");
  return e != nullptr && e[0] != '\0' && std::strcmp(e, "0") != 0;
}

// ---------------------------------------------------------------------------
// What finalized descriptors hold.
// ---------------------------------------------------------------------------

constexpr int kMaxDims = CUDNN_DIM_MAX;  // 8
constexpr int kMinTensorDims = 3;
constexpr int kMaxSpatial = 3;

struct TensorInfo {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t uid = 0;
  int64_t alignment = 0;
};

struct ConvInfo {
  int nsp = 0;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  int64_t pre[kMaxSpatial] = {};
  int64_t post[kMaxSpatial] = {};
  int64_t stride[kMaxSpatial] = {};
  int64_t dil[kMaxSpatial] = {};
};

enum class OpKind { kForward, kBackwardData, kBackwardFilter };

// One convolution operation. x, w and y are the data, filter and output-side tensors:
// (x, w, y) forward, (dx, w, dy) backward data, (x, dw, dy) backward filter.
struct ConvOp {
  OpKind kind = OpKind::kForward;
  double alpha = 1.0, beta = 0.0;
  ConvInfo conv;
  TensorInfo x, w, y;
  int64_t groups = 1;
};

// The legacy-API form of a plan's operation, built when the plan is finalized.
struct LegacyTensor {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb = 0;
  int dims[kMaxDims] = {};
  int strides[kMaxDims] = {};
};

struct LegacyConv {
  OpKind kind = OpKind::kForward;
  float alpha = 1.f, beta = 0.f;
  LegacyTensor x, w, y;
  cudnnTensorFormat_t filter_format = CUDNN_TENSOR_NCHW;
  int nsp = 0;
  int pad[kMaxSpatial] = {}, stride[kMaxSpatial] = {}, dil[kMaxSpatial] = {};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  int groups = 1;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct StoredAttr {
  AttrType type;
  int64_t count;
  std::vector<unsigned char> bytes;
};

struct Descriptor {
  explicit Descriptor(DescType t) : type(t) {}
  DescType type;
  bool finalized = false;
  std::map<int, StoredAttr> attrs;  // by attribute name, as set
  // Filled by Finalize (engines and engine configs also by the GetAttribute that fills them).
  TensorInfo tensor;  // TENSOR
  ConvInfo conv;      // CONVOLUTION
  ConvOp op;          // operations, graph, heuristics, engine, engine config, plan
  cudnnBackendHeurMode_t heur_mode = CUDNN_HEUR_MODE_A;  // ENGINEHEUR
  int64_t engine = -1;                                   // ENGINE, ENGINECFG, EXECUTION_PLAN
  LegacyConv legacy;                                     // EXECUTION_PLAN
  std::vector<int64_t> uids;                             // VARIANT_PACK
  std::vector<void*> pointers;                           // VARIANT_PACK
  void* workspace = nullptr;                             // VARIANT_PACK
};

// ---------------------------------------------------------------------------
// Live descriptors, so that a stale or foreign pointer is refused, not dereferenced.
// ---------------------------------------------------------------------------

std::mutex& RegistryMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::unordered_set<const void*>& Registry() {
  static auto* live = new std::unordered_set<const void*>;  // never destroyed (static order)
  return *live;
}

Descriptor* Find(const void* p) {
  if (p == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry().count(p) != 0 ? static_cast<Descriptor*>(const_cast<void*>(p)) : nullptr;
}

// ---------------------------------------------------------------------------
// Error messages (cudnnGetLastErrorString).
// ---------------------------------------------------------------------------

thread_local std::string t_last_error;

const char* TypeName(int t) {
  switch (t) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
      return "TENSOR";
    case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR:
      return "CONVOLUTION";
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
      return "OPERATION_CONVOLUTION_FORWARD";
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
      return "OPERATION_CONVOLUTION_BACKWARD_DATA";
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
      return "OPERATION_CONVOLUTION_BACKWARD_FILTER";
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
      return "OPERATIONGRAPH";
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
      return "ENGINEHEUR";
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      return "ENGINECFG";
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
      return "ENGINE";
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
      return "EXECUTION_PLAN";
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
      return "VARIANT_PACK";
    default:
      return "(unsupported descriptor type)";
  }
}

cudnnStatus_t Fail(cudnnStatus_t status, const char* call, const std::string& why) {
  t_last_error = std::string("crema cuDNN emulator: ") + call + ": " + why;
  return status;
}

std::string Describe(const Descriptor& d, Name name) {
  return std::string(TypeName(d.type)) + " attribute " + std::to_string(static_cast<int>(name));
}

// ---------------------------------------------------------------------------
// Attribute specifications: what SetAttribute accepts.
// ---------------------------------------------------------------------------

constexpr int kNoRef = -1;      // not a BACKEND_DESCRIPTOR attribute
constexpr int kAnyConvOp = -2;  // any of the three convolution operation descriptor types
constexpr int64_t kMaxPackEntries = 64;

struct AttrSpec {
  DescType desc;
  Name name;
  AttrType type;
  AttrType alt_type;  // a second accepted type (== type when there is none)
  int64_t min_count, max_count;
  int ref;  // descriptor type that BACKEND_DESCRIPTOR values must have, kAnyConvOp or kNoRef
  bool required;
};

constexpr DescType kTensor = CUDNN_BACKEND_TENSOR_DESCRIPTOR;
constexpr DescType kConv = CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR;
constexpr DescType kFwd = CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR;
constexpr DescType kBwdData = CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR;
constexpr DescType kBwdFilter = CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR;
constexpr DescType kGraph = CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR;
constexpr DescType kHeur = CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR;
constexpr DescType kCfg = CUDNN_BACKEND_ENGINECFG_DESCRIPTOR;
constexpr DescType kEngine = CUDNN_BACKEND_ENGINE_DESCRIPTOR;
constexpr DescType kPlan = CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR;
constexpr DescType kPack = CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR;

constexpr AttrType kI64 = CUDNN_TYPE_INT64;
constexpr AttrType kDesc = CUDNN_TYPE_BACKEND_DESCRIPTOR;
constexpr AttrType kDataType = CUDNN_TYPE_DATA_TYPE;
constexpr AttrType kHandle = CUDNN_TYPE_HANDLE;
constexpr AttrType kFloat = CUDNN_TYPE_FLOAT;
constexpr AttrType kDouble = CUDNN_TYPE_DOUBLE;
constexpr AttrType kVoidPtr = CUDNN_TYPE_VOID_PTR;

const AttrSpec kSpecs[] = {
    {kTensor, CUDNN_ATTR_TENSOR_DATA_TYPE, kDataType, kDataType, 1, 1, kNoRef, true},
    {kTensor, CUDNN_ATTR_TENSOR_DIMENSIONS, kI64, kI64, kMinTensorDims, kMaxDims, kNoRef, true},
    {kTensor, CUDNN_ATTR_TENSOR_STRIDES, kI64, kI64, kMinTensorDims, kMaxDims, kNoRef, true},
    {kTensor, CUDNN_ATTR_TENSOR_UNIQUE_ID, kI64, kI64, 1, 1, kNoRef, true},
    {kTensor, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, kI64, kI64, 1, 1, kNoRef, true},

    {kConv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, kDataType, kDataType, 1, 1, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE,
     CUDNN_TYPE_CONVOLUTION_MODE, 1, 1, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, kI64, kI64, 1, 1, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_DILATIONS, kI64, kI64, 1, kMaxSpatial, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, kI64, kI64, 1, kMaxSpatial, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, kI64, kI64, 1, kMaxSpatial, kNoRef, true},
    {kConv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, kI64, kI64, 1, kMaxSpatial, kNoRef, true},

    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, kFloat, kDouble, 1, 1, kNoRef, true},
    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, kFloat, kDouble, 1, 1, kNoRef, true},
    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, kDesc, kDesc, 1, 1, kConv, true},
    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, kDesc, kDesc, 1, 1, kTensor, true},
    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, kDesc, kDesc, 1, 1, kTensor, true},
    {kFwd, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, kDesc, kDesc, 1, 1, kTensor, true},

    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, kFloat, kDouble, 1, 1, kNoRef,
     true},
    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, kFloat, kDouble, 1, 1, kNoRef, true},
    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, kDesc, kDesc, 1, 1, kConv,
     true},
    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, kDesc, kDesc, 1, 1, kTensor, true},
    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, kDesc, kDesc, 1, 1, kTensor, true},
    {kBwdData, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, kDesc, kDesc, 1, 1, kTensor, true},

    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, kFloat, kDouble, 1, 1, kNoRef,
     true},
    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, kFloat, kDouble, 1, 1, kNoRef,
     true},
    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, kDesc, kDesc, 1, 1, kConv,
     true},
    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, kDesc, kDesc, 1, 1, kTensor, true},
    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, kDesc, kDesc, 1, 1, kTensor, true},
    {kBwdFilter, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, kDesc, kDesc, 1, 1, kTensor, true},

    {kGraph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, kHandle, kHandle, 1, 1, kNoRef, true},
    {kGraph, CUDNN_ATTR_OPERATIONGRAPH_OPS, kDesc, kDesc, 1, 1, kAnyConvOp, true},

    {kHeur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, kDesc, kDesc, 1, 1, kGraph, true},
    {kHeur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, 1, kNoRef,
     true},

    {kEngine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, kDesc, kDesc, 1, 1, kGraph, true},
    {kEngine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, kI64, kI64, 1, 1, kNoRef, true},

    {kCfg, CUDNN_ATTR_ENGINECFG_ENGINE, kDesc, kDesc, 1, 1, kEngine, true},

    {kPlan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, kHandle, kHandle, 1, 1, kNoRef, true},
    {kPlan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, kDesc, kDesc, 1, 1, kCfg, true},

    {kPack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, kI64, kI64, 1, kMaxPackEntries, kNoRef, true},
    {kPack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, kVoidPtr, kVoidPtr, 1, kMaxPackEntries, kNoRef,
     true},
    {kPack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, kVoidPtr, kVoidPtr, 1, 1, kNoRef, false},
};

const AttrSpec* FindSpec(DescType t, int name) {
  for (const AttrSpec& s : kSpecs)
    if (s.desc == t && s.name == name) return &s;
  return nullptr;
}

bool SupportedType(int t) {
  switch (t) {
    case kTensor:
    case kConv:
    case kFwd:
    case kBwdData:
    case kBwdFilter:
    case kGraph:
    case kHeur:
    case kCfg:
    case kEngine:
    case kPlan:
    case kPack:
      return true;
    default:
      return false;
  }
}

bool IsConvOp(int t) {
  return t == kFwd || t == kBwdData || t == kBwdFilter;
}

// The block of attribute names that belongs to descriptor type t (cudnn_graph.h numbers each
// type's attributes in one range): one of those outside the subset is NOT_SUPPORTED, any
// other name BAD_PARAM.
bool OwnAttribute(DescType t, int name) {
  auto in = [name](int lo, int hi) { return name >= lo && name < hi; };
  switch (t) {
    case kTensor:
      return in(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    case kConv:
      return in(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_ATTR_ENGINEHEUR_MODE);
    case kHeur:
      return in(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_ATTR_ENGINECFG_ENGINE);
    case kCfg:
      return in(CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_ATTR_EXECUTION_PLAN_HANDLE);
    case kPlan:
      return in(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, 500);
    case kFwd:
      return in(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA);
    case kBwdData:
      return in(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA);
    case kBwdFilter:
      return in(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY + 1);
    case kGraph:
      return in(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
    case kPack:
      return in(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, 1100);
    case kEngine:
      return in(CUDNN_ATTR_ENGINE_OPERATION_GRAPH, 1400);
    default:
      return false;
  }
}

// Attribute names of each convolution operation type.
struct OpNames {
  Name alpha, beta, conv, x, w, y;
};

const OpNames& NamesOf(DescType t) {
  static const OpNames kFwdNames = {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y};
  static const OpNames kBwdDataNames = {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                                        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
                                        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                        CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY};
  static const OpNames kBwdFilterNames = {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                                          CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
                                          CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                                          CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                                          CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                                          CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY};
  if (t == kBwdData) return kBwdDataNames;
  if (t == kBwdFilter) return kBwdFilterNames;
  return kFwdNames;
}

// Bytes per element of an attribute type; 0 for the types outside the subset.
size_t ElementSize(AttrType t) {
  switch (t) {
    case CUDNN_TYPE_HANDLE:
      return sizeof(cudnnHandle_t);
    case CUDNN_TYPE_DATA_TYPE:
      return sizeof(cudnnDataType_t);
    case CUDNN_TYPE_INT64:
      return sizeof(int64_t);
    case CUDNN_TYPE_FLOAT:
      return sizeof(float);
    case CUDNN_TYPE_DOUBLE:
      return sizeof(double);
    case CUDNN_TYPE_VOID_PTR:
      return sizeof(void*);
    case CUDNN_TYPE_CONVOLUTION_MODE:
      return sizeof(cudnnConvolutionMode_t);
    case CUDNN_TYPE_HEUR_MODE:
      return sizeof(cudnnBackendHeurMode_t);
    case CUDNN_TYPE_NUMERICAL_NOTE:
      return sizeof(cudnnBackendNumericalNote_t);
    case CUDNN_TYPE_BEHAVIOR_NOTE:
      return sizeof(cudnnBackendBehaviorNote_t);
    case CUDNN_TYPE_BACKEND_DESCRIPTOR:
      return sizeof(cudnnBackendDescriptor_t);
    default:
      return 0;
  }
}

template <class T>
T Element(const void* array, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(array) + i * sizeof(T), sizeof(T));
  return v;
}

template <class T>
T Stored(const Descriptor& d, Name name, int64_t i = 0) {
  return Element<T>(d.attrs.at(name).bytes.data(), i);
}

int64_t StoredCount(const Descriptor& d, Name name) {
  auto it = d.attrs.find(name);
  return it == d.attrs.end() ? -1 : it->second.count;
}

size_t DataTypeSize(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      return 4;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16:
      return 2;
    default:
      return 0;
  }
}

bool KnownDataType(int t) {
  return t >= CUDNN_DATA_FLOAT && t <= CUDNN_DATA_COMPLEX_FP64;
}

// ---------------------------------------------------------------------------
// SetAttribute: the domain of each value.
// ---------------------------------------------------------------------------

constexpr const char* kSet = "cudnnBackendSetAttribute";

cudnnStatus_t CheckValues(const Descriptor& d, const AttrSpec& s, AttrType type, int64_t n,
                          const void* values) {
  const std::string what = Describe(d, s.name);
  auto all_i64 = [&](int64_t lo, const char* rule) -> cudnnStatus_t {
    for (int64_t i = 0; i < n; ++i)
      if (Element<int64_t>(values, i) < lo) return Fail(kBad, kSet, what + ": " + rule);
    return kOk;
  };
  // Arrays whose count must match an attribute already set.
  auto same_count = [&](Name other) -> cudnnStatus_t {
    const int64_t c = StoredCount(d, other);
    if (c >= 0 && c != n)
      return Fail(kBad, kSet,
                  what + ": " + std::to_string(n) + " elements where " + Describe(d, other) +
                      " has " + std::to_string(c));
    return kOk;
  };
  switch (s.name) {
    case CUDNN_ATTR_TENSOR_DATA_TYPE: {
      const int t = Element<cudnnDataType_t>(values, 0);
      if (DataTypeSize(static_cast<cudnnDataType_t>(t)) != 0) return kOk;
      return Fail(KnownDataType(t) ? kUnsupported : kBad, kSet,
                  what + ": data type " + std::to_string(t) + " (FLOAT, HALF or BFLOAT16 only)");
    }
    case CUDNN_ATTR_CONVOLUTION_COMP_TYPE: {
      const int t = Element<cudnnDataType_t>(values, 0);
      if (t == CUDNN_DATA_FLOAT) return kOk;
      return Fail(KnownDataType(t) ? kUnsupported : kBad, kSet,
                  what + ": compute type " + std::to_string(t) + " (FLOAT only)");
    }
    case CUDNN_ATTR_TENSOR_DIMENSIONS:
      if (cudnnStatus_t st = all_i64(1, "dims must be >= 1"); st != kOk) return st;
      return same_count(CUDNN_ATTR_TENSOR_STRIDES);
    case CUDNN_ATTR_TENSOR_STRIDES:
      if (cudnnStatus_t st = all_i64(1, "strides must be >= 1"); st != kOk) return st;
      return same_count(CUDNN_ATTR_TENSOR_DIMENSIONS);
    case CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT: {
      const int64_t a = Element<int64_t>(values, 0);
      if (a <= 0 || (a & (a - 1)) != 0)
        return Fail(kBad, kSet, what + ": alignment " + std::to_string(a) + " not a power of two");
      return kOk;
    }
    case CUDNN_ATTR_CONVOLUTION_CONV_MODE: {
      const int m = Element<cudnnConvolutionMode_t>(values, 0);
      if (m == CUDNN_CONVOLUTION || m == CUDNN_CROSS_CORRELATION) return kOk;
      return Fail(kBad, kSet, what + ": unknown convolution mode " + std::to_string(m));
    }
    case CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS: {
      const int64_t nsp = Element<int64_t>(values, 0);
      if (nsp < 1) return Fail(kBad, kSet, what + ": spatial dims must be >= 1");
      if (nsp > kMaxSpatial) return Fail(kUnsupported, kSet, what + ": more than 3 spatial dims");
      for (Name a : {CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
                     CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS}) {
        const int64_t c = StoredCount(d, a);
        if (c >= 0 && c != nsp)
          return Fail(kBad, kSet,
                      what + ": " + std::to_string(nsp) + " spatial dims, but " + Describe(d, a) +
                          " has " + std::to_string(c));
      }
      return kOk;
    }
    case CUDNN_ATTR_CONVOLUTION_DILATIONS:
    case CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES:
    case CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS:
    case CUDNN_ATTR_CONVOLUTION_POST_PADDINGS: {
      const bool padding = s.name == CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS ||
                           s.name == CUDNN_ATTR_CONVOLUTION_POST_PADDINGS;
      if (cudnnStatus_t st = padding ? all_i64(0, "paddings must be >= 0")
                                     : all_i64(1, "strides and dilations must be >= 1");
          st != kOk)
        return st;
      if (d.attrs.count(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS) != 0 &&
          Stored<int64_t>(d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS) != n)
        return Fail(kBad, kSet, what + ": element count differs from the spatial dims");
      return kOk;
    }
    case CUDNN_ATTR_OPERATIONGRAPH_HANDLE:
    case CUDNN_ATTR_EXECUTION_PLAN_HANDLE:
      if (Element<cudnnHandle_t>(values, 0) == nullptr)
        return Fail(kBad, kSet, what + ": null handle");
      return kOk;
    case CUDNN_ATTR_ENGINEHEUR_MODE: {
      const int m = Element<cudnnBackendHeurMode_t>(values, 0);
      if (m == CUDNN_HEUR_MODE_A || m == CUDNN_HEUR_MODE_B || m == CUDNN_HEUR_MODE_FALLBACK ||
          m == CUDNN_HEUR_MODE_INSTANT)
        return kOk;
      return Fail(kBad, kSet, what + ": unknown heuristic mode " + std::to_string(m));
    }
    case CUDNN_ATTR_ENGINE_GLOBAL_INDEX: {
      const int64_t e = Element<int64_t>(values, 0);
      if (e < 0 || e >= kEngineCount)
        return Fail(kBad, kSet, what + ": no engine " + std::to_string(e));
      return kOk;
    }
    case CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS:
      return same_count(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
    case CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS:
      return same_count(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    default:
      break;
  }
  if (type == kDesc) {
    for (int64_t i = 0; i < n; ++i) {
      const Descriptor* r = Find(Element<cudnnBackendDescriptor_t>(values, i));
      if (r == nullptr)
        return Fail(kBad, kSet, what + ": not a live backend descriptor (null or destroyed)");
      const bool type_ok = s.ref == kAnyConvOp ? IsConvOp(r->type) : r->type == s.ref;
      if (!type_ok)
        return Fail(kBad, kSet,
                    what + ": a " + TypeName(r->type) + " descriptor where " +
                        (s.ref == kAnyConvOp ? "a convolution operation" : TypeName(s.ref)) +
                        " is expected");
      if (!r->finalized)
        return Fail(kBad, kSet,
                    what + ": the " + TypeName(r->type) + " descriptor is not finalized");
    }
  }
  return kOk;
}

// ---------------------------------------------------------------------------
// Finalize.
// ---------------------------------------------------------------------------

constexpr const char* kFinalize = "cudnnBackendFinalize";

// The live, finalized descriptor that attribute `name` of d names (its element i).
cudnnStatus_t Referenced(const Descriptor& d, Name name, const Descriptor** out, int64_t i = 0) {
  const Descriptor* r = Find(Stored<cudnnBackendDescriptor_t>(d, name, i));
  if (r == nullptr || !r->finalized)
    return Fail(kBad, kFinalize, Describe(d, name) + ": its descriptor was destroyed since");
  *out = r;
  return kOk;
}

double StoredScalar(const Descriptor& d, Name name) {
  const StoredAttr& a = d.attrs.at(name);
  return a.type == kDouble ? Element<double>(a.bytes.data(), 0)
                           : static_cast<double>(Element<float>(a.bytes.data(), 0));
}

cudnnStatus_t FinalizeTensor(Descriptor* d) {
  TensorInfo& t = d->tensor;
  const int64_t nb = StoredCount(*d, CUDNN_ATTR_TENSOR_DIMENSIONS);
  if (StoredCount(*d, CUDNN_ATTR_TENSOR_STRIDES) != nb)
    return Fail(kBad, kFinalize, "TENSOR: dimensions and strides differ in count");
  t.type = Stored<cudnnDataType_t>(*d, CUDNN_ATTR_TENSOR_DATA_TYPE);
  t.nb = static_cast<int>(nb);
  for (int i = 0; i < t.nb; ++i) {
    t.dims[i] = Stored<int64_t>(*d, CUDNN_ATTR_TENSOR_DIMENSIONS, i);
    t.strides[i] = Stored<int64_t>(*d, CUDNN_ATTR_TENSOR_STRIDES, i);
  }
  t.uid = Stored<int64_t>(*d, CUDNN_ATTR_TENSOR_UNIQUE_ID);
  t.alignment = Stored<int64_t>(*d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT);
  if (t.alignment < static_cast<int64_t>(DataTypeSize(t.type)))
    return Fail(kBad, kFinalize, "TENSOR: byte alignment below the element size");
  // No two dims may overlap in memory: sorted by stride, each stride reaches past the
  // extent of the smaller ones (dims of extent 1 take no room).
  std::vector<std::pair<int64_t, int64_t>> sd;
  for (int i = 0; i < t.nb; ++i)
    if (t.dims[i] > 1) sd.emplace_back(t.strides[i], t.dims[i]);
  std::sort(sd.begin(), sd.end());
  int64_t need = 1;
  for (const auto& [stride, dim] : sd) {
    if (stride < need) return Fail(kBad, kFinalize, "TENSOR: dims overlap in memory");
    if (dim > INT64_MAX / stride) return Fail(kBad, kFinalize, "TENSOR: extent overflows");
    need = stride * dim;
  }
  return kOk;
}

cudnnStatus_t FinalizeConv(Descriptor* d) {
  ConvInfo& c = d->conv;
  c.nsp = static_cast<int>(Stored<int64_t>(*d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS));
  c.mode = Stored<cudnnConvolutionMode_t>(*d, CUDNN_ATTR_CONVOLUTION_CONV_MODE);
  for (Name a : {CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
                 CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS})
    if (StoredCount(*d, a) != c.nsp)
      return Fail(kBad, kFinalize, Describe(*d, a) + ": count differs from the spatial dims");
  for (int i = 0; i < c.nsp; ++i) {
    c.dil[i] = Stored<int64_t>(*d, CUDNN_ATTR_CONVOLUTION_DILATIONS, i);
    c.stride[i] = Stored<int64_t>(*d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, i);
    c.pre[i] = Stored<int64_t>(*d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, i);
    c.post[i] = Stored<int64_t>(*d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, i);
    if (c.post[i] != c.pre[i])
      return Fail(kUnsupported, kFinalize, "CONVOLUTION: post padding != pre padding");
  }
  return kOk;
}

std::string DimsText(const TensorInfo& t) {
  std::string s = "[";
  for (int i = 0; i < t.nb; ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

// Geometry of a convolution operation: see the header comment.
cudnnStatus_t CheckGeometry(const char* op, ConvOp* o) {
  const ConvInfo& c = o->conv;
  const TensorInfo &x = o->x, &w = o->w, &y = o->y;
  const std::string where = std::string(op) + ": ";
  const int nb = c.nsp + 2;
  if (x.nb != nb || w.nb != nb || y.nb != nb)
    return Fail(kBad, kFinalize,
                where + "tensor ranks " + std::to_string(x.nb) + ", " + std::to_string(w.nb) +
                    ", " + std::to_string(y.nb) + " for " + std::to_string(c.nsp) +
                    " spatial dims");
  if (x.type != w.type || x.type != y.type)
    return Fail(kBad, kFinalize, where + "x, w and y differ in data type");
  const int64_t n = x.dims[0], ch = x.dims[1], k = w.dims[0], cg = w.dims[1];
  if (ch % cg != 0)
    return Fail(kBad, kFinalize, where + "filter dim 1 does not divide the channels");
  o->groups = ch / cg;
  if (k % o->groups != 0)
    return Fail(kBad, kFinalize, where + "the groups do not divide the filter count");
  bool ok = y.dims[0] == n && y.dims[1] == k;
  for (int i = 0; i < c.nsp && ok; ++i) {
    const int64_t span = (w.dims[i + 2] - 1) * c.dil[i] + 1;
    const int64_t num = x.dims[i + 2] + c.pre[i] + c.post[i] - span;
    ok = num >= 0 && y.dims[i + 2] == num / c.stride[i] + 1;
  }
  if (!ok)
    return Fail(kBad, kFinalize,
                where + "y dims " + DimsText(y) + " do not match x " + DimsText(x) + " and w " +
                    DimsText(w) + " under the convolution");
  return kOk;
}

cudnnStatus_t FinalizeOp(Descriptor* d) {
  const OpNames& names = NamesOf(d->type);
  const Descriptor *conv, *x, *w, *y;
  if (cudnnStatus_t s = Referenced(*d, names.conv, &conv); s != kOk) return s;
  if (cudnnStatus_t s = Referenced(*d, names.x, &x); s != kOk) return s;
  if (cudnnStatus_t s = Referenced(*d, names.w, &w); s != kOk) return s;
  if (cudnnStatus_t s = Referenced(*d, names.y, &y); s != kOk) return s;
  ConvOp o;
  o.kind = d->type == kFwd       ? OpKind::kForward
           : d->type == kBwdData ? OpKind::kBackwardData
                                 : OpKind::kBackwardFilter;
  o.alpha = StoredScalar(*d, names.alpha);
  o.beta = StoredScalar(*d, names.beta);
  o.conv = conv->conv;
  o.x = x->tensor;
  o.w = w->tensor;
  o.y = y->tensor;
  if (cudnnStatus_t s = CheckGeometry(TypeName(d->type), &o); s != kOk) return s;
  d->op = o;
  return kOk;
}

cudnnStatus_t FinalizeGraph(Descriptor* d) {
  const Descriptor* op;
  if (cudnnStatus_t s = Referenced(*d, CUDNN_ATTR_OPERATIONGRAPH_OPS, &op); s != kOk) return s;
  const ConvOp& o = op->op;
  if (o.x.uid == o.w.uid || o.x.uid == o.y.uid || o.w.uid == o.y.uid)
    return Fail(kBad, kFinalize, "OPERATIONGRAPH: two tensors share a unique id");
  if (GraphsRefused())
    return Fail(kUnsupported, kFinalize,
                "OPERATIONGRAPH: refused (CREMA_EMU_CUDNN_BACKEND_REFUSE is set)");
  d->op = o;
  return kOk;
}

cudnnStatus_t FinalizeHeur(Descriptor* d) {
  const Descriptor* graph;
  if (cudnnStatus_t s = Referenced(*d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, &graph); s != kOk)
    return s;
  d->op = graph->op;
  d->heur_mode = Stored<cudnnBackendHeurMode_t>(*d, CUDNN_ATTR_ENGINEHEUR_MODE);
  return kOk;
}

cudnnStatus_t FinalizeEngine(Descriptor* d) {
  const Descriptor* graph;
  if (cudnnStatus_t s = Referenced(*d, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, &graph); s != kOk)
    return s;
  d->op = graph->op;
  d->engine = Stored<int64_t>(*d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
  return kOk;
}

cudnnStatus_t FinalizeCfg(Descriptor* d) {
  const Descriptor* engine;
  if (cudnnStatus_t s = Referenced(*d, CUDNN_ATTR_ENGINECFG_ENGINE, &engine); s != kOk) return s;
  d->op = engine->op;
  d->engine = engine->engine;
  return kOk;
}

// Packed row-major in the dim order `order` (outermost first); dims of extent 1 may have any
// stride, as they address nothing else.
bool PackedInOrder(const TensorInfo& t, const int* order) {
  int64_t s = 1;
  for (int i = t.nb - 1; i >= 0; --i) {
    const int d = order[i];
    if (t.dims[d] != 1 && t.strides[d] != s) return false;
    s *= t.dims[d];
  }
  return true;
}

cudnnStatus_t ToLegacyTensor(const TensorInfo& t, bool widen, LegacyTensor* out) {
  out->type = t.type;
  out->nb = t.nb;
  for (int i = 0; i < t.nb; ++i) {
    if (t.dims[i] > INT_MAX || t.strides[i] > INT_MAX)
      return Fail(kUnsupported, kFinalize, "EXECUTION_PLAN: a dim or stride beyond int");
    out->dims[i] = static_cast<int>(t.dims[i]);
    out->strides[i] = static_cast<int>(t.strides[i]);
  }
  if (widen) {  // 1-D as 2-D: a trailing spatial dim of extent 1
    out->dims[out->nb] = 1;
    out->strides[out->nb] = 1;
    ++out->nb;
  }
  return kOk;
}

cudnnStatus_t BuildLegacy(const ConvOp& o, const EngineSpec& e, LegacyConv* l) {
  const bool widen = o.conv.nsp == 1;
  l->kind = o.kind;
  l->alpha = static_cast<float>(o.alpha);
  l->beta = static_cast<float>(o.beta);
  if (cudnnStatus_t s = ToLegacyTensor(o.x, widen, &l->x); s != kOk) return s;
  if (cudnnStatus_t s = ToLegacyTensor(o.w, widen, &l->w); s != kOk) return s;
  if (cudnnStatus_t s = ToLegacyTensor(o.y, widen, &l->y); s != kOk) return s;
  // The legacy filter descriptor knows packed KC<spatial> (NCHW) and K<spatial>C (NHWC).
  int nchw[kMaxDims], nhwc[kMaxDims];
  for (int i = 0; i < o.w.nb; ++i) nchw[i] = i;
  nhwc[0] = 0;
  for (int i = 1; i < o.w.nb - 1; ++i) nhwc[i] = i + 1;
  nhwc[o.w.nb - 1] = 1;
  if (PackedInOrder(o.w, nchw)) {
    l->filter_format = CUDNN_TENSOR_NCHW;
  } else if (PackedInOrder(o.w, nhwc)) {
    l->filter_format = CUDNN_TENSOR_NHWC;
  } else {
    return Fail(kUnsupported, kFinalize,
                "EXECUTION_PLAN: the filter is not packed in KCRS or KRSC order");
  }
  l->nsp = widen ? 2 : o.conv.nsp;
  for (int i = 0; i < l->nsp; ++i) {
    const bool extra = i >= o.conv.nsp;
    const int64_t pad = extra ? 0 : o.conv.pre[i], stride = extra ? 1 : o.conv.stride[i],
                  dil = extra ? 1 : o.conv.dil[i];
    if (pad > INT_MAX || stride > INT_MAX || dil > INT_MAX)
      return Fail(kUnsupported, kFinalize, "EXECUTION_PLAN: a convolution parameter beyond int");
    l->pad[i] = static_cast<int>(pad);
    l->stride[i] = static_cast<int>(stride);
    l->dil[i] = static_cast<int>(dil);
  }
  l->mode = o.conv.mode;
  l->groups = static_cast<int>(o.groups);
  l->math = e.math;
  return kOk;
}

cudnnStatus_t FinalizePlan(Descriptor* d) {
  const Descriptor* cfg;
  if (cudnnStatus_t s = Referenced(*d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, &cfg); s != kOk)
    return s;
  const EngineSpec& e = kEngines[cfg->engine];
  if (!e.plan_ok)
    return Fail(
        kUnsupported, kFinalize,
        "EXECUTION_PLAN: engine " + std::to_string(cfg->engine) + " does not support this graph");
  if (cudnnStatus_t s = BuildLegacy(cfg->op, e, &d->legacy); s != kOk) return s;
  d->op = cfg->op;
  d->engine = cfg->engine;
  return kOk;
}

cudnnStatus_t FinalizePack(Descriptor* d) {
  const int64_t n = StoredCount(*d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
  if (StoredCount(*d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS) != n)
    return Fail(kBad, kFinalize, "VARIANT_PACK: unique ids and data pointers differ in count");
  d->uids.clear();
  d->pointers.clear();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t uid = Stored<int64_t>(*d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, i);
    if (std::find(d->uids.begin(), d->uids.end(), uid) != d->uids.end())
      return Fail(kBad, kFinalize, "VARIANT_PACK: unique id " + std::to_string(uid) + " twice");
    d->uids.push_back(uid);
    d->pointers.push_back(Stored<void*>(*d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, i));
  }
  d->workspace = d->attrs.count(CUDNN_ATTR_VARIANT_PACK_WORKSPACE) != 0
                     ? Stored<void*>(*d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE)
                     : nullptr;
  return kOk;
}

// ---------------------------------------------------------------------------
// GetAttribute.
// ---------------------------------------------------------------------------

constexpr const char* kGet = "cudnnBackendGetAttribute";

// Copies min(requested, n) values out; requested 0 only reports n.
cudnnStatus_t ReturnValues(const void* values, int64_t n, size_t elem, int64_t requested,
                           int64_t* count, void* array) {
  if (requested < 0) return Fail(kBad, kGet, "negative requested element count");
  if (requested == 0) {
    if (count == nullptr) return Fail(kBad, kGet, "requested 0 elements with a null count");
    *count = n;
    return kOk;
  }
  if (array == nullptr) return Fail(kBad, kGet, "null array");
  const int64_t m = std::min(requested, n);
  if (m > 0) std::memcpy(array, values, static_cast<size_t>(m) * elem);
  if (count != nullptr) *count = m;
  return kOk;
}

template <class T>
cudnnStatus_t ReturnList(const std::vector<T>& v, int64_t requested, int64_t* count, void* array) {
  return ReturnValues(v.data(), static_cast<int64_t>(v.size()), sizeof(T), requested, count, array);
}

// Makes `target` (a live descriptor of type `type`) a finalized engine or engine config of
// `engine` for `op`.
void Fill(Descriptor* target, const ConvOp& op, int64_t engine) {
  target->attrs.clear();
  target->op = op;
  target->engine = engine;
  target->finalized = true;
}

// Fills caller-created descriptors of type `type` (array of `requested` of them) with
// `engines`.
cudnnStatus_t FillDescriptors(DescType type, const ConvOp& op, const std::vector<int64_t>& engines,
                              int64_t requested, int64_t* count, void* array) {
  if (requested < 0) return Fail(kBad, kGet, "negative requested element count");
  const int64_t n = static_cast<int64_t>(engines.size());
  if (requested == 0) {
    if (count == nullptr) return Fail(kBad, kGet, "requested 0 elements with a null count");
    *count = n;
    return kOk;
  }
  if (array == nullptr) return Fail(kBad, kGet, "null array");
  const int64_t m = std::min(requested, n);
  std::vector<Descriptor*> targets;
  for (int64_t i = 0; i < m; ++i) {
    Descriptor* t = Find(Element<cudnnBackendDescriptor_t>(array, i));
    if (t == nullptr || t->type != type)
      return Fail(kBad, kGet,
                  "element " + std::to_string(i) + " is not a live " + TypeName(type) +
                      " descriptor to fill");
    targets.push_back(t);
  }
  for (int64_t i = 0; i < m; ++i) Fill(targets[i], op, engines[i]);
  if (count != nullptr) *count = m;
  return kOk;
}

std::vector<cudnnBackendNumericalNote_t> NotesOf(int64_t engine) {
  std::vector<cudnnBackendNumericalNote_t> notes;
  if (kEngines[engine].note != kNoNote)
    notes.push_back(static_cast<cudnnBackendNumericalNote_t>(kEngines[engine].note));
  return notes;
}

cudnnStatus_t GetAttribute(const Descriptor& d, Name name, AttrType type, int64_t requested,
                           int64_t* count, void* array) {
  const std::string what = Describe(d, name);
  auto expect = [&](AttrType want) -> bool { return type == want; };
  auto wrong_type = [&]() { return Fail(kBad, kGet, what + ": wrong attribute type"); };
  auto i64 = [&](int64_t v) {
    return expect(kI64) ? ReturnValues(&v, 1, sizeof v, requested, count, array) : wrong_type();
  };
  switch (d.type) {
    case kGraph:
      if (name == CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT) return i64(kEngineCount);
      break;
    case kHeur:
      if (name == CUDNN_ATTR_ENGINEHEUR_RESULTS) {
        if (!expect(kDesc)) return wrong_type();
        return FillDescriptors(kCfg, d.op, HeuristicResults(d.heur_mode), requested, count, array);
      }
      break;
    case kCfg:
      if (name == CUDNN_ATTR_ENGINECFG_ENGINE) {
        if (!expect(kDesc)) return wrong_type();
        return FillDescriptors(kEngine, d.op, {d.engine}, requested, count, array);
      }
      if (name == CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE) return i64(kEngines[d.engine].workspace);
      break;
    case kEngine:
      if (name == CUDNN_ATTR_ENGINE_GLOBAL_INDEX) return i64(d.engine);
      if (name == CUDNN_ATTR_ENGINE_NUMERICAL_NOTE) {
        if (!expect(CUDNN_TYPE_NUMERICAL_NOTE)) return wrong_type();
        return ReturnList(NotesOf(d.engine), requested, count, array);
      }
      if (name == CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE) {
        if (!expect(CUDNN_TYPE_BEHAVIOR_NOTE)) return wrong_type();
        return ReturnList(std::vector<cudnnBackendBehaviorNote_t>(), requested, count, array);
      }
      break;
    case kPlan:
      if (name == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE)
        return i64(kEngines[d.engine].workspace);
      break;
    default:
      break;
  }
  // Attributes that were set read back as set (descriptor-valued ones excepted).
  auto it = d.attrs.find(name);
  if (it != d.attrs.end()) {
    if (it->second.type == kDesc)
      return Fail(kUnsupported, kGet, what + ": descriptor-valued attributes do not read back");
    if (type != it->second.type) return wrong_type();
    return ReturnValues(it->second.bytes.data(), it->second.count, ElementSize(type), requested,
                        count, array);
  }
  if (FindSpec(d.type, name) != nullptr)
    return Fail(kBad, kGet, what + ": not set");  // optional and unset (the workspace)
  return Fail(OwnAttribute(d.type, name) ? kUnsupported : kBad, kGet,
              what + ": not readable in the emulator's subset");
}

// ---------------------------------------------------------------------------
// Execute: the legacy call.
// ---------------------------------------------------------------------------

struct LegacyDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~LegacyDescriptors() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

constexpr const char* kExecute = "cudnnBackendExecute";

cudnnStatus_t RunLegacy(cudnnHandle_t handle, const LegacyConv& l, void* x, void* w, void* y) {
  LegacyDescriptors d;
  cudnnStatus_t s = kOk;
  auto step = [&s](cudnnStatus_t r) {
    if (s == kOk) s = r;
  };
  step(cudnnCreateTensorDescriptor(&d.x));
  step(cudnnCreateTensorDescriptor(&d.y));
  step(cudnnCreateFilterDescriptor(&d.w));
  step(cudnnCreateConvolutionDescriptor(&d.conv));
  if (s != kOk) return Fail(s, kExecute, "creating legacy descriptors failed");
  step(cudnnSetTensorNdDescriptor(d.x, l.x.type, l.x.nb, l.x.dims, l.x.strides));
  step(cudnnSetTensorNdDescriptor(d.y, l.y.type, l.y.nb, l.y.dims, l.y.strides));
  step(cudnnSetFilterNdDescriptor(d.w, l.w.type, l.filter_format, l.w.nb, l.w.dims));
  step(cudnnSetConvolutionNdDescriptor(d.conv, l.nsp, l.pad, l.stride, l.dil, l.mode,
                                       CUDNN_DATA_FLOAT));
  step(cudnnSetConvolutionGroupCount(d.conv, l.groups));
  step(cudnnSetConvolutionMathType(d.conv, l.math));
  if (s != kOk) return Fail(s, kExecute, "the legacy descriptors refused the plan's operation");
  switch (l.kind) {
    case OpKind::kForward:
      s = cudnnConvolutionForward(handle, &l.alpha, d.x, x, d.w, w, d.conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &l.beta,
                                  d.y, y);
      break;
    case OpKind::kBackwardData:
      s = cudnnConvolutionBackwardData(handle, &l.alpha, d.w, w, d.y, y, d.conv,
                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, nullptr, 0, &l.beta, d.x,
                                       x);
      break;
    case OpKind::kBackwardFilter:
      s = cudnnConvolutionBackwardFilter(handle, &l.alpha, d.x, x, d.y, y, d.conv,
                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, nullptr, 0, &l.beta,
                                         d.w, w);
      break;
  }
  if (s != kOk) return Fail(s, kExecute, "the legacy convolution call failed");
  return kOk;
}

}  // namespace

// ===========================================================================
// Exported API.
// ===========================================================================
extern "C" {

cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t descriptorType,
                                           cudnnBackendDescriptor_t* descriptor) {
  constexpr const char* kCall = "cudnnBackendCreateDescriptor";
  if (descriptor == nullptr) return Fail(kBad, kCall, "null output pointer");
  if (!SupportedType(descriptorType)) {
    const int t = descriptorType;
    const bool known =
        t >= CUDNN_BACKEND_POINTWISE_DESCRIPTOR && t <= CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR;
    return Fail(known ? kUnsupported : kBad, kCall,
                "descriptor type " + std::to_string(t) + " is outside the emulator's subset");
  }
  auto* d = new Descriptor(descriptorType);
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().insert(d);
  }
  *descriptor = d;
  return kOk;
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t descriptor) {
  Descriptor* d = nullptr;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    if (descriptor != nullptr && Registry().erase(descriptor) != 0)
      d = static_cast<Descriptor*>(descriptor);
  }
  if (d == nullptr)
    return Fail(kBad, "cudnnBackendDestroyDescriptor", "not a live descriptor (null or destroyed)");
  delete d;
  return kOk;
}

cudnnStatus_t cudnnBackendInitialize(cudnnBackendDescriptor_t descriptor) {
  if (Find(descriptor) == nullptr)
    return Fail(kBad, "cudnnBackendInitialize", "not a live descriptor (null or destroyed)");
  return kOk;
}

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t descriptor,
                                       cudnnBackendAttributeName_t attributeName,
                                       cudnnBackendAttributeType_t attributeType,
                                       int64_t elementCount, const void* arrayOfElements) {
  Descriptor* d = Find(descriptor);
  if (d == nullptr) return Fail(kBad, kSet, "not a live descriptor (null or destroyed)");
  const std::string what = Describe(*d, attributeName);
  if (d->finalized) return Fail(kBad, kSet, what + ": the descriptor is finalized");
  const AttrSpec* s = FindSpec(d->type, attributeName);
  if (s == nullptr)
    return Fail(OwnAttribute(d->type, attributeName) ? kUnsupported : kBad, kSet,
                what + ": not settable in the emulator's subset");
  if (attributeType != s->type && attributeType != s->alt_type)
    return Fail(kBad, kSet,
                what + ": attribute type " + std::to_string(static_cast<int>(attributeType)) +
                    ", expected " + std::to_string(static_cast<int>(s->type)));
  if (attributeName == CUDNN_ATTR_OPERATIONGRAPH_OPS && elementCount > 1)
    return Fail(kUnsupported, kSet, what + ": more than one operation per graph");
  if (elementCount < s->min_count || elementCount > s->max_count)
    return Fail(kBad, kSet, what + ": " + std::to_string(elementCount) + " elements");
  if (arrayOfElements == nullptr) return Fail(kBad, kSet, what + ": null array");
  if (cudnnStatus_t st = CheckValues(*d, *s, attributeType, elementCount, arrayOfElements);
      st != kOk)
    return st;
  StoredAttr a;
  a.type = attributeType;
  a.count = elementCount;
  const auto* bytes = static_cast<const unsigned char*>(arrayOfElements);
  a.bytes.assign(bytes, bytes + elementCount * ElementSize(attributeType));
  d->attrs[attributeName] = std::move(a);
  return kOk;
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t descriptor) {
  Descriptor* d = Find(descriptor);
  if (d == nullptr) return Fail(kBad, kFinalize, "not a live descriptor (null or destroyed)");
  if (d->finalized)
    return Fail(kBad, kFinalize, std::string(TypeName(d->type)) + ": already finalized");
  for (const AttrSpec& s : kSpecs)
    if (s.desc == d->type && s.required && d->attrs.count(s.name) == 0)
      return Fail(kBad, kFinalize, Describe(*d, s.name) + ": required attribute not set");
  cudnnStatus_t s = kOk;
  switch (d->type) {
    case kTensor:
      s = FinalizeTensor(d);
      break;
    case kConv:
      s = FinalizeConv(d);
      break;
    case kFwd:
    case kBwdData:
    case kBwdFilter:
      s = FinalizeOp(d);
      break;
    case kGraph:
      s = FinalizeGraph(d);
      break;
    case kHeur:
      s = FinalizeHeur(d);
      break;
    case kEngine:
      s = FinalizeEngine(d);
      break;
    case kCfg:
      s = FinalizeCfg(d);
      break;
    case kPlan:
      s = FinalizePlan(d);
      break;
    case kPack:
      s = FinalizePack(d);
      break;
    default:
      s = Fail(kUnsupported, kFinalize, "descriptor type outside the subset");
      break;
  }
  if (s == kOk) d->finalized = true;
  return s;
}

cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const descriptor,
                                       cudnnBackendAttributeName_t attributeName,
                                       cudnnBackendAttributeType_t attributeType,
                                       int64_t requestedElementCount, int64_t* elementCount,
                                       void* arrayOfElements) {
  const Descriptor* d = Find(descriptor);
  if (d == nullptr) return Fail(kBad, kGet, "not a live descriptor (null or destroyed)");
  if (!d->finalized)
    return Fail(kBad, kGet, Describe(*d, attributeName) + ": the descriptor is not finalized");
  return GetAttribute(*d, attributeName, attributeType, requestedElementCount, elementCount,
                      arrayOfElements);
}

cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t executionPlan,
                                  cudnnBackendDescriptor_t variantPack) {
  if (handle == nullptr) return Fail(kBad, kExecute, "null handle");
  const Descriptor* plan = Find(executionPlan);
  if (plan == nullptr || plan->type != kPlan || !plan->finalized)
    return Fail(kBad, kExecute, "not a live, finalized execution plan");
  const Descriptor* pack = Find(variantPack);
  if (pack == nullptr || pack->type != kPack || !pack->finalized)
    return Fail(kBad, kExecute, "not a live, finalized variant pack");
  const ConvOp& o = plan->op;
  const TensorInfo* tensors[3] = {&o.x, &o.w, &o.y};
  static const char* const kRoles[3][3] = {{"x", "w", "y"}, {"dx", "w", "dy"}, {"x", "dw", "dy"}};
  const char* const* roles = kRoles[static_cast<int>(o.kind)];
  void* pointers[3] = {};
  for (int i = 0; i < 3; ++i) {
    const std::string role =
        std::string(roles[i]) + " (unique id " + std::to_string(tensors[i]->uid) + ")";
    auto at = std::find(pack->uids.begin(), pack->uids.end(), tensors[i]->uid);
    if (at == pack->uids.end()) return Fail(kBad, kExecute, role + " is not in the variant pack");
    pointers[i] = pack->pointers[at - pack->uids.begin()];
    if (pointers[i] == nullptr) return Fail(kBad, kExecute, role + ": null data pointer");
    if (reinterpret_cast<std::uintptr_t>(pointers[i]) %
            static_cast<std::uintptr_t>(tensors[i]->alignment) !=
        0)
      return Fail(kBad, kExecute,
                  role + ": pointer not aligned to the tensor's byte alignment " +
                      std::to_string(tensors[i]->alignment));
  }
  for (int64_t uid : pack->uids)
    if (uid != o.x.uid && uid != o.w.uid && uid != o.y.uid)
      return Fail(kBad, kExecute,
                  "unique id " + std::to_string(uid) + " in the pack names no tensor of the plan");
  const int64_t workspace = kEngines[plan->engine].workspace;
  if (workspace > 0) {
    if (pack->workspace == nullptr)
      return Fail(kBad, kExecute,
                  "the plan needs " + std::to_string(workspace) +
                      " bytes of workspace and the pack has none");
    crema_emu::RequireDevice(pack->workspace, static_cast<size_t>(workspace),
                             "cudnnBackendExecute workspace");
  }
  return RunLegacy(handle, plan->legacy, pointers[0], pointers[1], pointers[2]);
}

cudnnStatus_t cudnnBackendPopulateCudaGraph(cudnnHandle_t, cudnnBackendDescriptor_t,
                                            cudnnBackendDescriptor_t, cudaGraph_t) {
  return Fail(kUnsupported, "cudnnBackendPopulateCudaGraph",
              "no emulated engine has CUDNN_BEHAVIOR_NOTE_SUPPORTS_CUDA_GRAPH_NATIVE_API");
}

cudnnStatus_t cudnnBackendUpdateCudaGraph(cudnnHandle_t, cudnnBackendDescriptor_t,
                                          cudnnBackendDescriptor_t, cudaGraph_t) {
  return Fail(kUnsupported, "cudnnBackendUpdateCudaGraph",
              "no emulated engine has CUDNN_BEHAVIOR_NOTE_SUPPORTS_CUDA_GRAPH_NATIVE_API");
}

// The message of this thread's latest failure in the backend functions above (empty if
// none); truncated to max_size - 1 characters.
void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (message == nullptr || max_size == 0) return;
  const size_t n = std::min(max_size - 1, t_last_error.size());
  std::memcpy(message, t_last_error.data(), n);
  message[n] = '\0';
}

}  // extern "C"
