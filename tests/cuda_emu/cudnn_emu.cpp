// Host-side reference implementation of the cuDNN 9 legacy-API subset used by
// crema, for the CUDA emulator (tests/cuda_emu).  "Device memory" is host
// memory, every call is synchronous (or, when the handle's stream is being
// captured, recorded with copies of its scalars and descriptor contents, see
// Execute), and every result is computed by plain
// loops in double precision from an independent reading of NVIDIA's cuDNN API
// documentation (not from crema's adapter).
//
// Conventions shared by every operation (cuDNN "Scaling Parameters" section,
// https://docs.nvidia.com/deeplearning/sdk/cudnn-developer-guide/index.html#scaling-parameters):
//   dst = alpha * result + beta * priorDst
//   alpha/beta are host pointers: double for DOUBLE tensors, float otherwise.
//   When beta == 0 the prior destination is not read (it may hold NaN).
//
// Implementation scheme: every operand is gathered through its descriptor
// (dims + strides + data type) into a packed row-major std::vector<double>,
// the math runs on packed arrays, and the result is blended back through the
// destination descriptor.  In-place calls therefore work naturally.
//
// Fast path: float, fully packed convolutions (forward, backward data,
// backward filter; 2 or 3 spatial dims, any groups/pad/stride/dilation, both
// modes) run as im2col/col2im + OpenBLAS cblas_sgemm with float accumulation,
// and float packed cudnnConvolutionBackwardBias / cudnnAddTensor (common
// broadcasts) run as direct loops; see "Float fast path" below.  16-bit
// convolutions packed in NCHW or channels-last (NHWC) order are widened to
// float and take the same fast path (UseWidenedConv).  Setting the
// environment variable CREMA_EMU_CUDNN_REFERENCE=1 (any value but "" or "0";
// read on every call) forces the double reference path everywhere.
// FLOAT convolutions whose math type permits TF32 (all but CUDNN_FMA_MATH) read their
// operands rounded to TF32, as tensor cores do (see "TF32" below).
//
// cudnnConvolutionBiasActivationForward computes the convolution as
// cudnnConvolutionForward does (same paths) into a packed buffer, then adds
// alpha2 * z and the bias and applies the activation in double.

#include <cblas.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <vector>

#include "tests/cuda_emu/emu_memory.hpp"
#include "tests/cuda_emu/emu_numeric.hpp"

// ---------------------------------------------------------------------------
// Opaque descriptor types (the header only forward-declares them).
// ---------------------------------------------------------------------------
namespace {

constexpr int kMaxDims = CUDNN_DIM_MAX;  // 8
constexpr int kMaxSpatial = kMaxDims - 2;
using Index = long long;

// Logical dims and element strides of one tensor or filter.
struct Layout {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb = 0;
  int dims[kMaxDims] = {};
  Index strides[kMaxDims] = {};
};

}  // namespace

struct cudnnContext {
  cudaStream_t stream = nullptr;  // work runs at the call, unless this stream is captured
};

struct cudnnTensorStruct {
  bool set = false;
  Layout layout;
};

// Filter dims are always K, C/groups, spatial... ; the format only changes
// the memory order, which Set folds into Layout::strides.
struct cudnnFilterStruct {
  bool set = false;
  Layout layout;
};

struct cudnnConvolutionStruct {
  bool set = false;
  int nsp = 0;  // number of spatial dims
  int pad[kMaxSpatial] = {};
  int stride[kMaxSpatial] = {};
  int dilation[kMaxSpatial] = {};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;  // accepted; we accumulate in double
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

struct cudnnPoolingStruct {
  bool set = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int window[2] = {};
  int pad[2] = {};
  int stride[2] = {};
};

struct cudnnActivationStruct {
  bool set = false;
  cudnnActivationMode_t mode = CUDNN_ACTIVATION_RELU;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  double coef = 0.0;
  double swish_beta = 1.0;
};

// Defaults documented for cudnnCreateLRNDescriptor (cudnn_ops.h comment):
// lrnN=5, lrnAlpha=1e-4, lrnBeta=0.75, lrnK=2.0.
struct cudnnLRNStruct {
  unsigned n = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 2.0;
};

namespace {

constexpr cudnnStatus_t kOk = CUDNN_STATUS_SUCCESS;
constexpr cudnnStatus_t kBad = CUDNN_STATUS_BAD_PARAM;
constexpr cudnnStatus_t kUnsupported = CUDNN_STATUS_NOT_SUPPORTED;

// ---------------------------------------------------------------------------
// Element access.
// ---------------------------------------------------------------------------

// Bytes per element for the data types we compute with; 0 = unsupported.
size_t ElemSize(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      return sizeof(float);
    case CUDNN_DATA_DOUBLE:
      return sizeof(double);
    case CUDNN_DATA_HALF:
      return sizeof(__half);
    case CUDNN_DATA_BFLOAT16:
      return sizeof(__nv_bfloat16);
    default:
      return 0;
  }
}

double LoadElem(cudnnDataType_t t, const void* base, Index i) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      return static_cast<const float*>(base)[i];
    case CUDNN_DATA_DOUBLE:
      return static_cast<const double*>(base)[i];
    case CUDNN_DATA_HALF:
      return __half2float(static_cast<const __half*>(base)[i]);
    case CUDNN_DATA_BFLOAT16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    default:
      return 0.0;
  }
}

// 16-bit types are rounded double -> float -> 16 bit (round to nearest even).
void StoreElem(cudnnDataType_t t, void* base, Index i, double v) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      static_cast<float*>(base)[i] = static_cast<float>(v);
      break;
    case CUDNN_DATA_DOUBLE:
      static_cast<double*>(base)[i] = v;
      break;
    case CUDNN_DATA_HALF:
      static_cast<__half*>(base)[i] = __float2half_rn(static_cast<float>(v));
      break;
    case CUDNN_DATA_BFLOAT16:
      static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(static_cast<float>(v));
      break;
    default:
      break;
  }
}

// alpha/beta storage type: double for DOUBLE tensors, float otherwise.
double ReadScalar(const void* s, cudnnDataType_t tensor_type) {
  if (tensor_type == CUDNN_DATA_DOUBLE) return *static_cast<const double*>(s);
  return *static_cast<const float*>(s);
}

// ---------------------------------------------------------------------------
// Layout helpers.
// ---------------------------------------------------------------------------

Index Count(const Layout& l) {
  Index n = 1;
  for (int d = 0; d < l.nb; ++d) n *= l.dims[d];
  return n;
}

// Memory extent in bytes: (1 + sum((dim_i - 1) * stride_i)) elements.
size_t ExtentBytes(const Layout& l) {
  Index last = 0;
  for (int d = 0; d < l.nb; ++d) last += static_cast<Index>(l.dims[d] - 1) * l.strides[d];
  return static_cast<size_t>(last + 1) * ElemSize(l.type);
}

bool SameDims(const Layout& a, const Layout& b) {
  if (a.nb != b.nb) return false;
  for (int d = 0; d < a.nb; ++d)
    if (a.dims[d] != b.dims[d]) return false;
  return true;
}

// Packed row-major strides for dims given in the order of `order` (outermost first).
void PackStrides(Layout* l, const int* order) {
  Index s = 1;
  for (int i = l->nb - 1; i >= 0; --i) {
    l->strides[order[i]] = s;
    s *= l->dims[order[i]];
  }
}

// Output tensors must not have overlapping dimensions (cuDNN "Tensor
// Descriptor" section): sorted by stride, each stride >= previous extent.
bool NonOverlapping(const Layout& l) {
  std::vector<std::pair<Index, int>> sd;
  for (int d = 0; d < l.nb; ++d)
    if (l.dims[d] > 1) sd.emplace_back(l.strides[d], l.dims[d]);
  std::sort(sd.begin(), sd.end());
  Index need = 1;
  for (const auto& [stride, dim] : sd) {
    if (stride < need) return false;
    need = stride * dim;
  }
  return true;
}

// Calls f(packed_index, memory_offset) for every element in row-major order.
template <class F>
void ForEachElement(const Layout& l, F f) {
  int idx[kMaxDims] = {};
  const Index n = Count(l);
  Index off = 0;
  for (Index p = 0; p < n; ++p) {
    f(p, off);
    for (int d = l.nb - 1; d >= 0; --d) {
      off += l.strides[d];
      if (++idx[d] < l.dims[d]) break;
      off -= l.strides[d] * l.dims[d];
      idx[d] = 0;
    }
  }
}

std::vector<double> Gather(const Layout& l, const void* p) {
  crema_emu::DeviceScope device_access;
  std::vector<double> v(static_cast<size_t>(Count(l)));
  ForEachElement(l, [&](Index i, Index off) { v[i] = LoadElem(l.type, p, off); });
  return v;
}

// dst = alpha * v + beta * dst; dst is not read when beta == 0.
void Blend(const Layout& l, void* p, const std::vector<double>& v, double alpha, double beta) {
  crema_emu::DeviceScope device_access;
  ForEachElement(l, [&](Index i, Index off) {
    double r = alpha * v[i];
    if (beta != 0.0) r += beta * LoadElem(l.type, p, off);
    StoreElem(l.type, p, off, r);
  });
}

void RequireTensor(const Layout& l, const void* p, const char* what) {
  crema_emu::RequireDevice(p, ExtentBytes(l), what);
}

// ---------------------------------------------------------------------------
// Argument validation.
// ---------------------------------------------------------------------------

cudnnStatus_t CheckTensor(cudnnTensorDescriptor_t d) {
  if (d == nullptr || !d->set) return kBad;
  return ElemSize(d->layout.type) != 0 ? kOk : kUnsupported;
}

cudnnStatus_t CheckFilter(cudnnFilterDescriptor_t d) {
  if (d == nullptr || !d->set) return kBad;
  return ElemSize(d->layout.type) != 0 ? kOk : kUnsupported;
}

// Enum range check done on int (enums may have an unsigned underlying type).
bool InRange(int v, int lo, int hi_exclusive) {
  return v >= lo && v < hi_exclusive;
}

bool AllNonNull(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (p == nullptr) return false;
  return true;
}

// First non-success status among several checks (evaluated eagerly).
cudnnStatus_t FirstError(std::initializer_list<cudnnStatus_t> statuses) {
  for (cudnnStatus_t s : statuses)
    if (s != kOk) return s;
  return kOk;
}

// Two same-shaped, same-typed tensors (e.g. x and y of an elementwise op).
cudnnStatus_t CheckPair(cudnnTensorDescriptor_t a, cudnnTensorDescriptor_t b) {
  if (cudnnStatus_t s = FirstError({CheckTensor(a), CheckTensor(b)}); s != kOk) return s;
  if (!SameDims(a->layout, b->layout) || a->layout.type != b->layout.type) return kBad;
  return kOk;
}

// ---------------------------------------------------------------------------
// Convolution geometry (cuDNN "Convolution Formulas" section,
// https://docs.nvidia.com/deeplearning/sdk/cudnn-developer-guide/index.html#convolution-formulas):
//   y[n,k,o] = sum_{c<C/G} sum_{t} x[n, (C/G)*floor(k/(K/G)) + c, o*u + t*dil - pad]
//                                  * w[k, c, CONVOLUTION ? T-1-t : t]
// with x = 0 outside [0, in), and per spatial dim
//   out = 1 + (in + 2*pad - ((ker-1)*dil + 1)) / stride.
// ---------------------------------------------------------------------------

struct ConvGeom {
  int n = 0, c = 0, k = 0, groups = 1, nsp = 0;
  int in[kMaxSpatial] = {}, out[kMaxSpatial] = {}, ker[kMaxSpatial] = {};
  int pad[kMaxSpatial] = {}, stride[kMaxSpatial] = {}, dil[kMaxSpatial] = {};
  bool flip = false;
  // FLOAT operands under a math type that permits TF32 (every one but CUDNN_FMA_MATH): the
  // tensor cores read them rounded to TF32, so the emulator rounds them too (see TF32 below).
  bool tf32 = false;
};

Index Volume(const int* d, int nsp) {
  Index v = 1;
  for (int i = 0; i < nsp; ++i) v *= d[i];
  return v;
}

// Output dims of convolving x with w under cd; BAD_PARAM on any mismatch.
cudnnStatus_t ConvOutputDims(const cudnnConvolutionStruct& cd, const Layout& x, const Layout& w,
                             int* out_dims) {
  const int nb = cd.nsp + 2;
  if (x.nb != nb || w.nb != nb) return kBad;
  if (w.dims[0] % cd.groups != 0 || x.dims[1] != w.dims[1] * cd.groups) return kBad;
  out_dims[0] = x.dims[0];
  out_dims[1] = w.dims[0];
  for (int i = 0; i < cd.nsp; ++i) {
    const int span = (w.dims[i + 2] - 1) * cd.dilation[i] + 1;
    const int num = x.dims[i + 2] + 2 * cd.pad[i] - span;
    if (num < 0) return kBad;
    out_dims[i + 2] = 1 + num / cd.stride[i];
  }
  return kOk;
}

// Validates x/w/y against each other and the convolution descriptor.
cudnnStatus_t MakeConvGeom(cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                           cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd,
                           ConvGeom* g) {
  if (cudnnStatus_t s = FirstError({CheckTensor(xd), CheckFilter(wd), CheckTensor(yd)}); s != kOk)
    return s;
  if (cd == nullptr || !cd->set) return kBad;
  const Layout& x = xd->layout;
  const Layout& w = wd->layout;
  const Layout& y = yd->layout;
  if (x.type != w.type || x.type != y.type) return kBad;
  int out[kMaxDims] = {};
  if (cudnnStatus_t s = ConvOutputDims(*cd, x, w, out); s != kOk) return s;
  if (y.nb != x.nb) return kBad;
  for (int d = 0; d < y.nb; ++d)
    if (y.dims[d] != out[d]) return kBad;
  g->n = x.dims[0];
  g->c = x.dims[1];
  g->k = w.dims[0];
  g->groups = cd->groups;
  g->nsp = cd->nsp;
  g->flip = cd->mode == CUDNN_CONVOLUTION;
  g->tf32 = x.type == CUDNN_DATA_FLOAT && cd->math != CUDNN_FMA_MATH;
  for (int i = 0; i < cd->nsp; ++i) {
    g->in[i] = x.dims[i + 2];
    g->out[i] = y.dims[i + 2];
    g->ker[i] = w.dims[i + 2];
    g->pad[i] = cd->pad[i];
    g->stride[i] = cd->stride[i];
    g->dil[i] = cd->dilation[i];
  }
  return kOk;
}

// Row-major coordinates of every flat index of a volume, nsp ints each.
std::vector<int> Coordinates(const int* dims, int nsp) {
  const Index vol = Volume(dims, nsp);
  std::vector<int> coords(static_cast<size_t>(vol * nsp));
  for (Index f = 0; f < vol; ++f) {
    Index rest = f;
    for (int d = nsp - 1; d >= 0; --d) {
      coords[f * nsp + d] = static_cast<int>(rest % dims[d]);
      rest /= dims[d];
    }
  }
  return coords;
}

// Calls f(x_index, w_index, y_index) for every multiply-accumulate term of
// the convolution formula above (packed NC<spatial> / KC<spatial> indices).
// Forward, backward-data and backward-filter all use this one enumeration,
// so they are exact adjoints of each other.
template <class F>
void ForEachTap(const ConvGeom& g, F f) {
  const Index in_vol = Volume(g.in, g.nsp);
  const Index out_vol = Volume(g.out, g.nsp);
  const Index ker_vol = Volume(g.ker, g.nsp);
  const std::vector<int> oc = Coordinates(g.out, g.nsp);
  const std::vector<int> kc = Coordinates(g.ker, g.nsp);
  const int cg = g.c / g.groups;
  const int kg = g.k / g.groups;
  for (int n = 0; n < g.n; ++n) {
    for (int k = 0; k < g.k; ++k) {
      const Index y_base = (static_cast<Index>(n) * g.k + k) * out_vol;
      for (int c = 0; c < cg; ++c) {
        const int xc = (k / kg) * cg + c;
        const Index x_base = (static_cast<Index>(n) * g.c + xc) * in_vol;
        const Index w_base = (static_cast<Index>(k) * cg + c) * ker_vol;
        for (Index o = 0; o < out_vol; ++o) {
          for (Index t = 0; t < ker_vol; ++t) {
            Index xi = 0;
            bool inside = true;
            for (int d = 0; d < g.nsp && inside; ++d) {
              const int pos =
                  oc[o * g.nsp + d] * g.stride[d] - g.pad[d] + kc[t * g.nsp + d] * g.dil[d];
              inside = pos >= 0 && pos < g.in[d];
              xi = xi * g.in[d] + pos;
            }
            if (!inside) continue;
            // Flipping every spatial axis reverses the row-major flat index.
            const Index wt = g.flip ? ker_vol - 1 - t : t;
            f(x_base + xi, w_base + wt, y_base + o);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Float fast path: im2col / col2im + cblas_sgemm.
//
// Taken when x, w and y are all CUDNN_DATA_FLOAT and fully packed NC<spatial>
// / KC<spatial> (a dim of extent 1 may have any stride), there are 2 or 3
// spatial dims, the destination does not overlap a source, and
// CREMA_EMU_CUDNN_REFERENCE is not set; every other call takes the double
// reference path above.  2-D geometry runs as 3-D with a leading extent of 1.
//
// im2col layout, for one image n and one group g (Cg = C/groups, Kg =
// K/groups, KV = kernel volume, OV = output volume, R = Cg*KV): a row-major
// R x OV float matrix
//   col[c*KV + t][o] = x[n, g*Cg + c, pos(o, t)]      (0 where pos is padding)
// where t is the row-major flat kernel index, o the row-major flat output
// index and, per spatial dim d, pos_d = o_d*stride_d - pad_d + tap_d*dil_d,
// with tap_d = t_d (CROSS_CORRELATION) or ker_d-1-t_d (CONVOLUTION: the flip
// lives in im2col, so the filter is used as stored).  The filter block of
// group g is then the row-major Kg x R matrix at w + g*Kg*R, and
//   forward:         Y_ng (Kg x OV) += alpha * W_g * col
//   backward data:   col = alpha * W_g^T * dY_ng;  dx_ng += col2im(col)
//   backward filter: dW_g (Kg x R)  += alpha * dY_ng * col^T   (summed over n)
// (several images share one GEMM: see kMaxChunkFloats)
// each after the destination was set to beta * dst (to 0, unread, when
// beta == 0).  Sums run in float, as a GPU kernel's would.
// ---------------------------------------------------------------------------

// Any value other than "" and "0" selects the reference path.  Read on every
// call so that tests can toggle it.
bool ForceReference() {
  const char* e = std::getenv("CREMA_EMU_CUDNN_REFERENCE");
  return e != nullptr && e[0] != '\0' && std::strcmp(e, "0") != 0;
}

bool Packed(const Layout& l) {
  Index s = 1;
  for (int d = l.nb - 1; d >= 0; --d) {
    if (l.dims[d] != 1 && l.strides[d] != s) return false;
    s *= l.dims[d];
  }
  return true;
}

bool PackedFloat(const Layout& l) {
  return l.type == CUDNN_DATA_FLOAT && Packed(l);
}

// True when the byte ranges of (a, la) and (b, lb) do not intersect.
bool Disjoint(const Layout& la, const void* a, const Layout& lb, const void* b) {
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa + ExtentBytes(la) <= pb || pb + ExtentBytes(lb) <= pa;
}

// Fast-path eligibility of a convolution writing `dst` from sources a and b.
bool UseFastConv(const ConvGeom& g, const Layout& ld, const void* dst, const Layout& la,
                 const void* a, const Layout& lb, const void* b) {
  if (g.nsp < 2 || g.nsp > 3 || ForceReference()) return false;
  if (!PackedFloat(ld) || !PackedFloat(la) || !PackedFloat(lb)) return false;
  return Disjoint(ld, dst, la, a) && Disjoint(ld, dst, lb, b);
}

// Packed in channels-last order: dims [N, C, spatial...] stored as [N][spatial...][C], an
// NHWC tensor, or an NHWC filter (dims [K, C/groups, spatial...] stored as
// [K][spatial...][C/groups]). A dim of extent 1 may have any stride.
bool PackedChannelsLast(const Layout& l) {
  if (l.nb < 3) return false;
  Index s = 1;
  bool ok = true;
  auto next = [&](int d) {
    ok = ok && (l.dims[d] == 1 || l.strides[d] == s);
    s *= l.dims[d];
  };
  next(1);
  for (int d = l.nb - 1; d >= 2; --d) next(d);
  next(0);
  return ok;
}

// 16-bit convolutions (HALF or BFLOAT16, all operands of one type, each packed in NCHW or
// in channels-last (NHWC) order) take the fast path too: the sources are gathered (through
// their strides, so in logical NCHW order) and widened to float, the float fast path
// computes into a float buffer (alpha 1, beta 0), and the result is blended through the
// destination's strides into the 16-bit destination, which rounds once, as a GPU kernel
// accumulating in fp32 does. The layouts therefore change no result.
bool UseWidenedConv(const ConvGeom& g, const Layout& ld, const Layout& la, const Layout& lb) {
  if (g.nsp < 2 || g.nsp > 3 || ForceReference()) return false;
  const bool half = ld.type == CUDNN_DATA_HALF || ld.type == CUDNN_DATA_BFLOAT16;
  auto dense = [](const Layout& l) { return Packed(l) || PackedChannelsLast(l); };
  return half && la.type == ld.type && lb.type == ld.type && dense(ld) && dense(la) && dense(lb);
}

// TF32: since cuDNN 8, FLOAT convolutions under CUDNN_DEFAULT_MATH (like the tensor-op math
// types) may run on TF32 tensor cores where the GPU has them, which read both operands
// rounded to a 10-bit mantissa and accumulate in fp32; CUDNN_FMA_MATH restricts cuDNN to FMA
// kernels, full fp32 (the switch frameworks use to turn TF32 convolutions off).
// A real GPU's result then lies anywhere between the two, depending on the algorithm; the
// emulator takes the rounded end, so a test's tolerance for TF32 covers every algorithm.
// Such passes gather and round both sources (in packed logical order, any strides) and run
// the float fast path on the copies, or the double reference on the rounded values.
bool UseTf32Conv(const ConvGeom& g) {
  return g.tf32 && g.nsp >= 2 && g.nsp <= 3 && !ForceReference();
}

void RoundAllToTf32(std::vector<double>* values) {
  for (double& v : *values) v = crema_emu::RoundToTf32(static_cast<float>(v));
}

std::vector<float> WidenToFloat(const Layout& l, const void* p, bool tf32 = false) {
  std::vector<double> wide = Gather(l, p);
  if (tf32) RoundAllToTf32(&wide);
  return std::vector<float>(wide.begin(), wide.end());
}

// fast(a, b, out) runs a float fast-path function with alpha 1 and beta 0.
template <typename FastFn>
void WidenedConv(const Layout& ld, void* dst, const Layout& la, const void* a, const Layout& lb,
                 const void* b, double alpha, double beta, bool tf32, FastFn fast) {
  const std::vector<float> af = WidenToFloat(la, a, tf32), bf = WidenToFloat(lb, b, tf32);
  std::vector<float> out(static_cast<size_t>(Count(ld)));
  fast(af.data(), bf.data(), out.data());
  Blend(ld, dst, std::vector<double>(out.begin(), out.end()), alpha, beta);
}

// Spatial geometry padded to 3 dims (leading extents 1 for 2-D).
struct Geom3 {
  int in[3], out[3], ker[3], pad[3], stride[3], dil[3];
  Index in_vol, out_vol, ker_vol;
};

Geom3 ToGeom3(const ConvGeom& g) {
  Geom3 r{};
  const int lead = 3 - g.nsp;
  for (int d = 0; d < 3; ++d) {
    const int s = d - lead;
    r.in[d] = s < 0 ? 1 : g.in[s];
    r.out[d] = s < 0 ? 1 : g.out[s];
    r.ker[d] = s < 0 ? 1 : g.ker[s];
    r.pad[d] = s < 0 ? 0 : g.pad[s];
    r.stride[d] = s < 0 ? 1 : g.stride[s];
    r.dil[d] = s < 0 ? 1 : g.dil[s];
  }
  r.in_vol = Volume(r.in, 3);
  r.out_vol = Volume(r.out, 3);
  r.ker_vol = Volume(r.ker, 3);
  return r;
}

// Output columns [lo, hi) whose input column ow*stride + shift is inside [0, in).
struct Span {
  int lo, hi;
};

Span ValidColumns(int shift, int stride, int in, int out) {
  const int lo = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
  const int last = in - 1 - shift;  // ow*stride <= last
  const int hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  return {std::min(lo, hi), hi};
}

// Calls f(col_run, x_row, shift) for every output row (od, oh) of one im2col
// row (channel c, kernel tap (kd, kh, kw) already flipped if needed):
// col_run is the offset of the OW-long run col[row][(od*OH + oh)*OW ...],
// x_row the offset of x[c, id, ih, 0] or -1 when (id, ih) lies in padding,
// and input column = ow*stride_w + shift.
template <class F>
void ForEachRowRun(const Geom3& g, int c, const int* tap, Index col_row, F f) {
  const int shift = tap[2] * g.dil[2] - g.pad[2];
  Index run = col_row;
  for (int od = 0; od < g.out[0]; ++od) {
    const int id = od * g.stride[0] - g.pad[0] + tap[0] * g.dil[0];
    for (int oh = 0; oh < g.out[1]; ++oh, run += g.out[2]) {
      const int ih = oh * g.stride[1] - g.pad[1] + tap[1] * g.dil[1];
      const bool inside = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1];
      f(run, inside ? ((static_cast<Index>(c) * g.in[0] + id) * g.in[1] + ih) * g.in[2] : -1,
        shift);
    }
  }
}

// Visits every im2col row (c, t) of `channels` channels in row order; rows
// are `ld` floats apart.
template <class F>
void ForEachColRun(const Geom3& g, int channels, bool flip, Index ld, F f) {
  Index col_row = 0;
  for (int c = 0; c < channels; ++c) {
    for (Index t = 0; t < g.ker_vol; ++t, col_row += ld) {
      const Index tf = flip ? g.ker_vol - 1 - t : t;  // reversed flat index = flipped axes
      const int tap[3] = {static_cast<int>(tf / (g.ker[1] * g.ker[2])),
                          static_cast<int>(tf / g.ker[2] % g.ker[1]),
                          static_cast<int>(tf % g.ker[2])};
      ForEachRowRun(g, c, tap, col_row, f);
    }
  }
}

// col (channels*KV rows of OV, `ld` apart) <- x (channels x in_vol), layout above.
void Im2Col(const Geom3& g, int channels, bool flip, const float* x, float* col, Index ld) {
  const int ow_n = g.out[2], s = g.stride[2];
  ForEachColRun(g, channels, flip, ld, [&](Index run, Index x_row, int shift) {
    float* dst = col + run;
    std::fill(dst, dst + ow_n, 0.0f);
    if (x_row < 0) return;
    const Span v = ValidColumns(shift, s, g.in[2], ow_n);
    for (int ow = v.lo; ow < v.hi; ++ow) dst[ow] = x[x_row + static_cast<Index>(ow) * s + shift];
  });
}

// x (channels x in_vol) += col2im(col): the adjoint of Im2Col.
void Col2ImAdd(const Geom3& g, int channels, bool flip, const float* col, Index ld, float* x) {
  const int ow_n = g.out[2], s = g.stride[2];
  ForEachColRun(g, channels, flip, ld, [&](Index run, Index x_row, int shift) {
    if (x_row < 0) return;
    const float* src = col + run;
    const Span v = ValidColumns(shift, s, g.in[2], ow_n);
    for (int ow = v.lo; ow < v.hi; ++ow) x[x_row + static_cast<Index>(ow) * s + shift] += src[ow];
  });
}

// dst <- beta * dst; dst is not read when beta == 0.
void ScaleDestination(float* dst, Index n, double beta) {
  if (beta == 0.0) {
    std::fill(dst, dst + n, 0.0f);
  } else if (beta != 1.0) {
    for (Index i = 0; i < n; ++i) dst[i] = static_cast<float>(beta * dst[i]);
  }
}

// Images are processed in chunks of `nb` so that each GEMM covers nb images
// (few large calls instead of many small ones): the chunk's im2col matrix is
// R x (nb*OV) with image j in columns [j*OV, (j+1)*OV), and the matching
// output-side matrix ("ymat") is Kg x (nb*OV) in the same column order.
constexpr Index kMaxChunkFloats = Index{1} << 22;  // 16 MiB per buffer

// Per-call constants of the fast path.
struct FastConv {
  Geom3 g;
  int cg, kg, rows;  // C/groups, K/groups, R = Cg*KV
  int ov, nb;        // output volume, images per chunk
  Index ld;          // nb * OV: row length of col and ymat
};

FastConv MakeFastConv(const ConvGeom& cg) {
  FastConv f;
  f.g = ToGeom3(cg);
  f.cg = cg.c / cg.groups;
  f.kg = cg.k / cg.groups;
  f.rows = static_cast<int>(f.cg * f.g.ker_vol);
  f.ov = static_cast<int>(f.g.out_vol);
  const Index per_image = static_cast<Index>(std::max(f.rows, f.kg)) * f.ov;
  f.nb = static_cast<int>(std::clamp<Index>(kMaxChunkFloats / per_image, 1, cg.n));
  f.ld = static_cast<Index>(f.nb) * f.ov;
  return f;
}

// Offsets of image n, group gr in x (channel block) and y (output block).
Index XBlock(const ConvGeom& cg, const FastConv& f, int n, int gr) {
  return (static_cast<Index>(n) * cg.c + static_cast<Index>(gr) * f.cg) * f.g.in_vol;
}
Index YBlock(const ConvGeom& cg, const FastConv& f, int n, int gr) {
  return (static_cast<Index>(n) * cg.k + static_cast<Index>(gr) * f.kg) * f.ov;
}

// Calls f(y_offset, ymat_offset) for each OV-long run of images [n0, n0+nb) of group gr.
template <class F>
void ForEachYRun(const ConvGeom& cg, const FastConv& f, int n0, int nb, int gr, F fn) {
  for (int j = 0; j < nb; ++j)
    for (int k = 0; k < f.kg; ++k)
      fn(YBlock(cg, f, n0 + j, gr) + static_cast<Index>(k) * f.ov,
         static_cast<Index>(k) * f.ld + static_cast<Index>(j) * f.ov);
}

// col <- im2col of images [n0, n0+nb) of group gr.
void Im2ColChunk(const ConvGeom& cg, const FastConv& f, const float* x, int n0, int nb, int gr,
                 float* col) {
  for (int j = 0; j < nb; ++j)
    Im2Col(f.g, f.cg, cg.flip, x + XBlock(cg, f, n0 + j, gr), col + static_cast<Index>(j) * f.ov,
           f.ld);
}

// Row-major C (m x n, ldc) = alpha * op(A) * op(B) + beta * C.
void Sgemm(bool ta, bool tb, int m, int n, int k, double alpha, const float* a, Index lda,
           const float* b, Index ldb, float beta, float* c, Index ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, static_cast<float>(alpha), a, static_cast<int>(lda), b, static_cast<int>(ldb),
              beta, c, static_cast<int>(ldc));
}

void FastForward(const ConvGeom& cg, const void* xp, const void* wp, void* yp, double alpha,
                 double beta) {
  crema_emu::DeviceScope device_access("cudnnConvolutionForward (float fast path)");
  const float* x = static_cast<const float*>(xp);
  const float* w = static_cast<const float*>(wp);
  float* y = static_cast<float*>(yp);
  const FastConv f = MakeFastConv(cg);
  ScaleDestination(y, static_cast<Index>(cg.n) * cg.k * f.ov, beta);
  std::vector<float> col(static_cast<size_t>(f.rows * f.ld)),
      ymat(static_cast<size_t>(f.kg * f.ld));
  for (int n0 = 0; n0 < cg.n; n0 += f.nb) {
    const int nb = std::min(f.nb, cg.n - n0);
    for (int gr = 0; gr < cg.groups; ++gr) {
      Im2ColChunk(cg, f, x, n0, nb, gr, col.data());
      Sgemm(false, false, f.kg, nb * f.ov, f.rows, alpha,
            w + static_cast<Index>(gr) * f.kg * f.rows, f.rows, col.data(), f.ld, 0.0f, ymat.data(),
            f.ld);
      ForEachYRun(cg, f, n0, nb, gr, [&](Index yo, Index mo) {
        for (int o = 0; o < f.ov; ++o) y[yo + o] += ymat[mo + o];
      });
    }
  }
}

void FastBackwardData(const ConvGeom& cg, const void* wp, const void* dyp, void* dxp, double alpha,
                      double beta) {
  crema_emu::DeviceScope device_access("cudnnConvolutionBackwardData (float fast path)");
  const float* w = static_cast<const float*>(wp);
  const float* dy = static_cast<const float*>(dyp);
  float* dx = static_cast<float*>(dxp);
  const FastConv f = MakeFastConv(cg);
  ScaleDestination(dx, static_cast<Index>(cg.n) * cg.c * f.g.in_vol, beta);
  std::vector<float> col(static_cast<size_t>(f.rows * f.ld)),
      ymat(static_cast<size_t>(f.kg * f.ld));
  for (int n0 = 0; n0 < cg.n; n0 += f.nb) {
    const int nb = std::min(f.nb, cg.n - n0);
    for (int gr = 0; gr < cg.groups; ++gr) {
      ForEachYRun(cg, f, n0, nb, gr, [&](Index yo, Index mo) {
        std::copy(dy + yo, dy + yo + f.ov, ymat.data() + mo);
      });
      Sgemm(true, false, f.rows, nb * f.ov, f.kg, alpha, w + static_cast<Index>(gr) * f.kg * f.rows,
            f.rows, ymat.data(), f.ld, 0.0f, col.data(), f.ld);
      for (int j = 0; j < nb; ++j)
        Col2ImAdd(f.g, f.cg, cg.flip, col.data() + static_cast<Index>(j) * f.ov, f.ld,
                  dx + XBlock(cg, f, n0 + j, gr));
    }
  }
}

void FastBackwardFilter(const ConvGeom& cg, const void* xp, const void* dyp, void* dwp,
                        double alpha, double beta) {
  crema_emu::DeviceScope device_access("cudnnConvolutionBackwardFilter (float fast path)");
  const float* x = static_cast<const float*>(xp);
  const float* dy = static_cast<const float*>(dyp);
  float* dw = static_cast<float*>(dwp);
  const FastConv f = MakeFastConv(cg);
  ScaleDestination(dw, static_cast<Index>(cg.k) * f.rows, beta);
  std::vector<float> col(static_cast<size_t>(f.rows * f.ld)),
      ymat(static_cast<size_t>(f.kg * f.ld));
  for (int n0 = 0; n0 < cg.n; n0 += f.nb) {
    const int nb = std::min(f.nb, cg.n - n0);
    for (int gr = 0; gr < cg.groups; ++gr) {
      Im2ColChunk(cg, f, x, n0, nb, gr, col.data());
      ForEachYRun(cg, f, n0, nb, gr, [&](Index yo, Index mo) {
        std::copy(dy + yo, dy + yo + f.ov, ymat.data() + mo);
      });
      Sgemm(false, true, f.kg, f.rows, nb * f.ov, alpha, ymat.data(), f.ld, col.data(), f.ld, 1.0f,
            dw + static_cast<Index>(gr) * f.kg * f.rows, f.rows);
    }
  }
}

// db[k] = alpha * sum(dy[:, k, ...]) + beta * db[k] over packed float memory;
// sums in double, like the reference.
void FastBackwardBias(const Layout& dyl, const void* dyp, void* dbp, double alpha, double beta) {
  crema_emu::DeviceScope device_access("cudnnConvolutionBackwardBias (float fast path)");
  const float* dy = static_cast<const float*>(dyp);
  float* db = static_cast<float*>(dbp);
  const Index k_n = dyl.dims[1];
  const Index s_n = Count(dyl) / (dyl.dims[0] * k_n);
  std::vector<double> sum(static_cast<size_t>(k_n), 0.0);
  for (Index nk = 0; nk < dyl.dims[0] * k_n; ++nk) {
    const float* run = dy + nk * s_n;
    double s = 0.0;
    for (Index i = 0; i < s_n; ++i) s += run[i];
    sum[nk % k_n] += s;
  }
  for (Index k = 0; k < k_n; ++k) {
    double r = alpha * sum[k];
    if (beta != 0.0) r += beta * db[k];
    db[k] = static_cast<float>(r);
  }
}

// C viewed as [outer, mid, inner] where A's non-1 dims are exactly the
// contiguous dims spanning mid (and equal C's there); false otherwise.
bool BroadcastShape(const Layout& a, const Layout& c, Index* mid, Index* inner) {
  int first = -1, last = -2;
  for (int d = 0; d < a.nb; ++d) {
    if (a.dims[d] == 1) continue;
    if (first < 0) first = d;
    last = d;
  }
  *mid = 1;
  *inner = 1;
  if (first < 0) return true;  // A is a single element
  for (int d = first; d <= last; ++d) {
    if (a.dims[d] != c.dims[d]) return false;
    *mid *= c.dims[d];
  }
  for (int d = last + 1; d < c.nb; ++d) *inner *= c.dims[d];
  return true;
}

// C = alpha * broadcast(A) + beta * C over packed float memory, in double.
void FastAddTensor(const Layout& cl, const void* ap, void* cp, Index mid, Index inner, double alpha,
                   double beta) {
  crema_emu::DeviceScope device_access("cudnnAddTensor (float fast path)");
  const float* a = static_cast<const float*>(ap);
  float* c = static_cast<float*>(cp);
  const Index n = Count(cl);
  for (Index i = 0; i < n; ++i) {
    double r = alpha * a[(i / inner) % mid];
    if (beta != 0.0) r += beta * c[i];
    c[i] = static_cast<float>(r);
  }
}

// Workspace: we never need one; a non-null one must still be device memory.
cudnnStatus_t CheckWorkspace(const void* ws, size_t bytes) {
  if (bytes == 0) return kOk;
  if (ws == nullptr) return kBad;
  crema_emu::RequireDevice(ws, bytes, "cudnn workspace");
  return kOk;
}

// Fills Find* results: status SUCCESS, memory 0, deterministic, the math type
// of the descriptor, times increasing (results are sorted fastest first).
template <class Perf, class Algo, size_t N>
cudnnStatus_t FillPerf(const Algo (&algos)[N], int requested, int* returned, Perf* perf,
                       cudnnMathType_t math) {
  if (requested < 1 || returned == nullptr || perf == nullptr) return kBad;
  const int count = std::min(requested, static_cast<int>(N));
  for (int i = 0; i < count; ++i) {
    perf[i] = Perf{};
    perf[i].algo = algos[i];
    perf[i].status = kOk;
    perf[i].time = 0.25f * static_cast<float>(i + 1);
    perf[i].memory = 0;
    perf[i].determinism = CUDNN_DETERMINISTIC;
    perf[i].mathType = math;
  }
  *returned = count;
  return kOk;
}

// ---------------------------------------------------------------------------
// Pooling (2-D, NCHW logical order).
// ---------------------------------------------------------------------------

// Clipped window [begin, end) of output position o along one axis, and the
// unclipped window size.
struct Window {
  int begin, end;
};

Window PoolWindow(const cudnnPoolingStruct& p, int axis, int o, int in) {
  const int start = o * p.stride[axis] - p.pad[axis];
  return {std::max(start, 0), std::min(start + p.window[axis], in)};
}

bool IsMaxMode(cudnnPoolingMode_t m) {
  return m == CUDNN_POOLING_MAX || m == CUDNN_POOLING_MAX_DETERMINISTIC;
}

// Average divisor: full window (INCLUDE_PADDING) or in-bounds count (EXCLUDE).
double PoolDivisor(const cudnnPoolingStruct& p, Window wh, Window ww) {
  if (p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING)
    return static_cast<double>(p.window[0]) * p.window[1];
  return static_cast<double>(wh.end - wh.begin) * (ww.end - ww.begin);
}

// Calls f(out_index, in_plane_base, window_h, window_w) for every output.
template <class F>
void ForEachPoolOutput(const cudnnPoolingStruct& p, const Layout& x, const Layout& y, F f) {
  const int H = x.dims[2], W = x.dims[3], OH = y.dims[2], OW = y.dims[3];
  const Index planes = static_cast<Index>(x.dims[0]) * x.dims[1];
  for (Index plane = 0; plane < planes; ++plane) {
    for (int oh = 0; oh < OH; ++oh) {
      for (int ow = 0; ow < OW; ++ow) {
        const Index out = (plane * OH + oh) * OW + ow;
        f(out, plane * H * W, PoolWindow(p, 0, oh, H), PoolWindow(p, 1, ow, W));
      }
    }
  }
}

// Packed index of the max of the in-bounds window: the first maximum in
// row-major scan order (strict '>' keeps the earliest on ties).  Padded
// positions never take part.  With PROPAGATE_NAN the first NaN wins.
// Returns -1 for an empty window.
Index ArgMax(const std::vector<double>& x, Index base, int W, Window wh, Window ww,
             cudnnNanPropagation_t nan) {
  Index best = -1;
  for (int h = wh.begin; h < wh.end; ++h) {
    for (int w = ww.begin; w < ww.end; ++w) {
      const Index i = base + static_cast<Index>(h) * W + w;
      if (std::isnan(x[i])) {
        if (nan == CUDNN_PROPAGATE_NAN) return i;
        continue;
      }
      if (best < 0 || x[i] > x[best]) best = i;
    }
  }
  return best;
}

cudnnStatus_t CheckPooling(cudnnPoolingDescriptor_t pd, cudnnTensorDescriptor_t xd,
                           cudnnTensorDescriptor_t yd) {
  if (cudnnStatus_t s = FirstError({CheckTensor(xd), CheckTensor(yd)}); s != kOk) return s;
  if (pd == nullptr || !pd->set) return kBad;
  const Layout& x = xd->layout;
  const Layout& y = yd->layout;
  if (x.nb != 4 || y.nb != 4 || x.type != y.type) return kBad;
  if (x.dims[0] != y.dims[0] || x.dims[1] != y.dims[1]) return kBad;
  return kOk;
}

// ---------------------------------------------------------------------------
// Activations.  f(x) and f'(x) written with y = f(x) where convenient.
// ---------------------------------------------------------------------------

double Sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

// RELU / CLIPPED_RELU honour the NaN option: NOT_PROPAGATE maps NaN to 0
// (max(NaN, 0) taken as 0), PROPAGATE keeps NaN.
double ActForward(const cudnnActivationStruct& a, double x) {
  const bool keep_nan = a.nan == CUDNN_PROPAGATE_NAN && std::isnan(x);
  switch (a.mode) {
    case CUDNN_ACTIVATION_SIGMOID:
      return Sigmoid(x);  // 1/(1+e^-x)
    case CUDNN_ACTIVATION_RELU:
      return keep_nan ? x : (x > 0.0 ? x : 0.0);  // max(x,0)
    case CUDNN_ACTIVATION_TANH:
      return std::tanh(x);
    case CUDNN_ACTIVATION_CLIPPED_RELU:  // min(max(x,0),coef)
      return keep_nan ? x : std::min(x > 0.0 ? x : 0.0, a.coef);
    case CUDNN_ACTIVATION_ELU:  // x>0 ? x : coef*(e^x-1)
      return x > 0.0 ? x : a.coef * std::expm1(x);
    case CUDNN_ACTIVATION_SWISH:
      return x * Sigmoid(a.swish_beta * x);  // x*sigmoid(b*x)
    case CUDNN_ACTIVATION_IDENTITY:
      return x;
    default:
      return x;
  }
}

// dx = dy * f'(x).  SIGMOID/TANH use y (f' = y(1-y), 1-y^2), ELU uses
// y > 0 ? 1 : y + coef (= coef*e^x), SWISH uses x; RELU-like use x with
// derivative 0 at the kinks (x == 0, x == coef).  ELU's test is on y, as the
// real library was seen to do on an H100: with coef < 0 (y > 0 for x < 0) it
// passes dy unchanged where f'(x) = coef*e^x.
double ActBackward(const cudnnActivationStruct& a, double y, double dy, double x) {
  switch (a.mode) {
    case CUDNN_ACTIVATION_SIGMOID:
      return dy * y * (1.0 - y);
    case CUDNN_ACTIVATION_RELU:
      return x > 0.0 ? dy : 0.0;
    case CUDNN_ACTIVATION_TANH:
      return dy * (1.0 - y * y);
    case CUDNN_ACTIVATION_CLIPPED_RELU:
      return (x > 0.0 && x < a.coef) ? dy : 0.0;
    case CUDNN_ACTIVATION_ELU:
      return y > 0.0 ? dy : dy * (y + a.coef);
    case CUDNN_ACTIVATION_SWISH: {
      // d/dx x*s(bx) = s + b*x*s*(1-s)
      const double s = Sigmoid(a.swish_beta * x);
      return dy * (s + a.swish_beta * x * s * (1.0 - s));
    }
    case CUDNN_ACTIVATION_IDENTITY:
      return dy;
    default:
      return dy;
  }
}

bool ValidActivationMode(cudnnActivationMode_t m) {
  return m == CUDNN_ACTIVATION_SIGMOID || m == CUDNN_ACTIVATION_RELU ||
         m == CUDNN_ACTIVATION_TANH || m == CUDNN_ACTIVATION_CLIPPED_RELU ||
         m == CUDNN_ACTIVATION_ELU || m == CUDNN_ACTIVATION_IDENTITY || m == CUDNN_ACTIVATION_SWISH;
}

bool ValidNanOpt(cudnnNanPropagation_t n) {
  return n == CUDNN_NOT_PROPAGATE_NAN || n == CUDNN_PROPAGATE_NAN;
}

// ---------------------------------------------------------------------------
// Softmax.  Elements of one softmax group are (o*len + j)*inner + i:
//   INSTANCE: per n over C*H*W   -> outer=N, len=C*S, inner=1
//   CHANNEL:  per (n, spatial) over C -> outer=N, len=C, inner=S
// ---------------------------------------------------------------------------

struct SoftmaxShape {
  Index outer, len, inner;
};

SoftmaxShape SoftmaxGroups(const Layout& l, cudnnSoftmaxMode_t mode) {
  Index spatial = 1;
  for (int d = 2; d < l.nb; ++d) spatial *= l.dims[d];
  const Index c = l.nb > 1 ? l.dims[1] : 1;
  if (mode == CUDNN_SOFTMAX_MODE_INSTANCE) return {l.dims[0], c * spatial, 1};
  return {l.dims[0], c, spatial};
}

template <class F>
void ForEachSoftmaxGroup(const SoftmaxShape& s, F f) {
  for (Index o = 0; o < s.outer; ++o)
    for (Index i = 0; i < s.inner; ++i) f(o * s.len * s.inner + i, s.inner);
}

// One group: FAST = e^x / sum e^x without max shift, with e^x evaluated in
// float for non-DOUBLE tensors (so it overflows past x ~ 88 as a float
// kernel of the documented "straightforward" algorithm would);
// ACCURATE = shifted by the max; LOG = x - max - log(sum e^(x-max)).
void SoftmaxGroup(cudnnSoftmaxAlgorithm_t algo, bool single, const std::vector<double>& x,
                  std::vector<double>* y, Index first, Index step, Index len) {
  double shift = 0.0;
  if (algo != CUDNN_SOFTMAX_FAST) {
    shift = -std::numeric_limits<double>::infinity();
    for (Index j = 0; j < len; ++j) shift = std::max(shift, x[first + j * step]);
  }
  double sum = 0.0;
  for (Index j = 0; j < len; ++j) {
    const Index i = first + j * step;
    double e = std::exp(x[i] - shift);
    if (algo == CUDNN_SOFTMAX_FAST && single) e = std::exp(static_cast<float>(x[i]));
    (*y)[i] = e;
    sum += e;
  }
  for (Index j = 0; j < len; ++j) {
    const Index i = first + j * step;
    (*y)[i] = algo == CUDNN_SOFTMAX_LOG ? x[i] - shift - std::log(sum) : (*y)[i] / sum;
  }
}

// Backward of one group: non-log dx = y*(dy - sum(dy*y)); LOG dx = dy - e^y * sum(dy).
void SoftmaxGroupBackward(cudnnSoftmaxAlgorithm_t algo, const std::vector<double>& y,
                          const std::vector<double>& dy, std::vector<double>* dx, Index first,
                          Index step, Index len) {
  double dot = 0.0;
  for (Index j = 0; j < len; ++j) {
    const Index i = first + j * step;
    dot += algo == CUDNN_SOFTMAX_LOG ? dy[i] : dy[i] * y[i];
  }
  for (Index j = 0; j < len; ++j) {
    const Index i = first + j * step;
    (*dx)[i] = algo == CUDNN_SOFTMAX_LOG ? dy[i] - std::exp(y[i]) * dot : y[i] * (dy[i] - dot);
  }
}

bool ValidSoftmax(cudnnSoftmaxAlgorithm_t algo, cudnnSoftmaxMode_t mode) {
  return (algo == CUDNN_SOFTMAX_FAST || algo == CUDNN_SOFTMAX_ACCURATE ||
          algo == CUDNN_SOFTMAX_LOG) &&
         (mode == CUDNN_SOFTMAX_MODE_INSTANCE || mode == CUDNN_SOFTMAX_MODE_CHANNEL);
}

// ---------------------------------------------------------------------------
// LRN cross-channel (CUDNN_LRN_CROSS_CHANNEL_DIM1).
//
// Documented formula, taken from the cudnnSetLRNDescriptor parameter text of
// the cuDNN API reference (section cudnnSetLRNDescriptor of
// https://docs.nvidia.com/deeplearning/cudnn/archives/cudnn-892/api/index.html
// and of https://docs.nvidia.com/deeplearning/sdk/cudnn-developer-guide/index.html;
// the window and the cast also appear in the cudnn_ops.h comment above
// cudnnSetLRNDescriptor / cudnnLRNCrossChannelForward):
//   "LRN layer uses a window [center-lookBehind, center+lookAhead], where
//    lookBehind = floor((lrnN-1)/2), lookAhead = lrnN-lookBehind-1"
//   "lrnAlpha ... Inside the library code this value is divided by the
//    window width for LRN"
//   "Values of double parameters cast to tensor data type"
// giving, along dim 1 (channels), with x = 0 outside [0, C):
//   d_c = lrnK + (lrnAlpha / lrnN) * sum_{j=c-lookBehind}^{c+lookAhead} x_j^2
//   y_c = x_c * d_c^(-lrnBeta)
// Exact gradient (computed in double):
//   dx_i = dy_i * d_i^(-beta)
//        - 2 * beta * (alpha/n) * x_i * sum_{c: i in window(c)} dy_c * x_c * d_c^(-beta-1)
// where i in window(c)  <=>  i - lookAhead <= c <= i + lookBehind.
// ---------------------------------------------------------------------------

struct LrnParams {
  int behind, ahead;
  double scale, beta, k;  // scale = lrnAlpha / lrnN
};

LrnParams MakeLrnParams(const cudnnLRNStruct& d, cudnnDataType_t type) {
  // Cast the double parameters to the tensor type, as documented.
  auto cast = [type](double v) { return type == CUDNN_DATA_DOUBLE ? v : static_cast<float>(v); };
  const int n = static_cast<int>(d.n);
  const int behind = (n - 1) / 2;
  return {behind, n - behind - 1, cast(d.alpha) / n, cast(d.beta), cast(d.k)};
}

// d_c for every element (packed NC<spatial> order).
std::vector<double> LrnDenominators(const LrnParams& p, const std::vector<double>& x, Index N,
                                    int C, Index S) {
  std::vector<double> d(x.size());
  for (Index n = 0; n < N; ++n) {
    for (Index s = 0; s < S; ++s) {
      const Index base = n * C * S + s;
      for (int c = 0; c < C; ++c) {
        double sum = 0.0;
        for (int j = std::max(0, c - p.behind); j <= std::min(C - 1, c + p.ahead); ++j)
          sum += x[base + j * S] * x[base + j * S];
        d[base + c * S] = p.k + p.scale * sum;
      }
    }
  }
  return d;
}

void LrnShape(const Layout& l, Index* N, int* C, Index* S) {
  *N = l.dims[0];
  *C = l.dims[1];
  *S = 1;
  for (int d = 2; d < l.nb; ++d) *S *= l.dims[d];
}

std::vector<double> LrnGradient(const LrnParams& p, const std::vector<double>& x,
                                const std::vector<double>& dy, Index N, int C, Index S) {
  const std::vector<double> d = LrnDenominators(p, x, N, C, S);
  std::vector<double> dx(x.size());
  for (Index n = 0; n < N; ++n) {
    for (Index s = 0; s < S; ++s) {
      const Index base = n * C * S + s;
      for (int i = 0; i < C; ++i) {
        double cross = 0.0;
        for (int c = std::max(0, i - p.ahead); c <= std::min(C - 1, i + p.behind); ++c) {
          const Index ci = base + c * S;
          cross += dy[ci] * x[ci] * std::pow(d[ci], -p.beta - 1.0);
        }
        const Index ii = base + i * S;
        dx[ii] = dy[ii] * std::pow(d[ii], -p.beta) - 2.0 * p.beta * p.scale * x[ii] * cross;
      }
    }
  }
  return dx;
}

const char* StatusName(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
      return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER:
      return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED_CUDART:
      return "CUDNN_STATUS_EXECUTION_FAILED_CUDART";
    case CUDNN_STATUS_ALLOC_FAILED:
      return "CUDNN_STATUS_ALLOC_FAILED";
    case CUDNN_STATUS_ARCH_MISMATCH:
      return "CUDNN_STATUS_ARCH_MISMATCH";
    case CUDNN_STATUS_VERSION_MISMATCH:
      return "CUDNN_STATUS_VERSION_MISMATCH";
    default:
      return "CUDNN_STATUS_UNKNOWN (emulator)";
  }
}

template <class T>
cudnnStatus_t CreateObject(T** out) {
  if (out == nullptr) return kBad;
  *out = new T();
  return kOk;
}

template <class T>
cudnnStatus_t DestroyObject(T* p) {
  delete p;  // destroying a null descriptor is a no-op
  return kOk;
}

// One convolution pass writing dst = alpha * op(a, b) + beta * dst: the float fast path,
// the widened 16-bit path, or the double reference, where tap(av, bv, dv, xi, wi, yi)
// accumulates one tap of the (x, w, y) index triple into the gathered destination.
template <typename Fast, typename Tap>
void RunConvPass(const ConvGeom& g, const Layout& ld, void* dst, const Layout& la, const void* a,
                 const Layout& lb, const void* b, double alpha, double beta, Fast fast, Tap tap) {
  if (!g.tf32 && UseFastConv(g, ld, dst, la, a, lb, b)) {
    fast(a, b, dst, alpha, beta);
    return;
  }
  if (UseWidenedConv(g, ld, la, lb) || UseTf32Conv(g)) {
    WidenedConv(
        ld, dst, la, a, lb, b, alpha, beta, g.tf32,
        [&fast](const float* af, const float* bf, float* out) { fast(af, bf, out, 1.0, 0.0); });
    return;
  }
  std::vector<double> av = Gather(la, a), bv = Gather(lb, b);
  if (g.tf32) {
    RoundAllToTf32(&av);
    RoundAllToTf32(&bv);
  }
  std::vector<double> dv(static_cast<size_t>(Count(ld)), 0.0);
  ForEachTap(g, [&](Index xi, Index wi, Index yi) { tap(av, bv, dv, xi, wi, yi); });
  Blend(ld, dst, dv, alpha, beta);
}

// y = alpha * conv(x, w) + beta * y (the pass of cudnnConvolutionForward; arguments checked).
void RunForward(const ConvGeom& g, const Layout& yl, void* y, const Layout& xl, const void* x,
                const Layout& wl, const void* w, double alpha, double beta) {
  RunConvPass(
      g, yl, y, xl, x, wl, w, alpha, beta,
      [&g](const void* xp, const void* wp, void* yp, double a, double b) {
        FastForward(g, xp, wp, yp, a, b);
      },
      [](const std::vector<double>& xv, const std::vector<double>& wv, std::vector<double>& yv,
         Index xi, Index wi, Index yi) { yv[yi] += xv[xi] * wv[wi]; });
}

// ---------------------------------------------------------------------------
// Fused convolution + bias + activation (cudnnConvolutionBiasActivationForward):
//   y = act(alpha1 * conv(x, w) + alpha2 * z + bias)
// with bias [1, K, 1, ...] broadcast over n and the spatial dims, z shaped like y
// (it may be y itself). z is not read when alpha2 == 0. Per the cuDNN API
// reference only CUDNN_ACTIVATION_RELU and CUDNN_ACTIVATION_IDENTITY are
// accepted, and the identity only with CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM
// (cudnnActivationMode_t: "The cudnnConvolutionBiasActivationForward() function
// must use CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM"); ReLU runs with any
// algorithm. Other modes and the identity with another algorithm: NOT_SUPPORTED.
// ---------------------------------------------------------------------------

// The bias: set, y's data type and rank, dims [1, K, 1, ...].
cudnnStatus_t CheckBias(cudnnTensorDescriptor_t bd, const Layout& y) {
  if (cudnnStatus_t s = CheckTensor(bd); s != kOk) return s;
  const Layout& b = bd->layout;
  if (b.nb != y.nb || b.type != y.type || b.dims[1] != y.dims[1]) return kBad;
  for (int d = 0; d < b.nb; ++d)
    if (d != 1 && b.dims[d] != 1) return kBad;
  return kOk;
}

cudnnStatus_t CheckFusedActivation(cudnnActivationDescriptor_t a, cudnnConvolutionFwdAlgo_t algo) {
  if (a == nullptr || !a->set) return kBad;
  if (a->mode != CUDNN_ACTIVATION_RELU && a->mode != CUDNN_ACTIVATION_IDENTITY) return kUnsupported;
  if (a->mode == CUDNN_ACTIVATION_IDENTITY &&
      algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
    return kUnsupported;
  return kOk;
}

// conv(x, w) in packed logical [N, K, spatial...] order, computed by RunForward into a packed
// buffer: float (the fast path for packed float x and w) or, for DOUBLE y, double.
std::vector<double> ForwardPacked(const ConvGeom& g, const Layout& yl, const Layout& xl,
                                  const void* x, const Layout& wl, const void* w) {
  Layout packed = yl;
  packed.type = yl.type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  int order[kMaxDims];
  for (int d = 0; d < packed.nb; ++d) order[d] = d;
  PackStrides(&packed, order);
  const size_t n = static_cast<size_t>(Count(packed));
  if (packed.type == CUDNN_DATA_DOUBLE) {
    std::vector<double> out(n);
    RunForward(g, packed, out.data(), xl, x, wl, w, 1.0, 0.0);
    return out;
  }
  std::vector<float> out(n);
  RunForward(g, packed, out.data(), xl, x, wl, w, 1.0, 0.0);
  return std::vector<double>(out.begin(), out.end());
}

// act(alpha1 * conv + alpha2 * z + bias[k]) over packed [N, K, S] arrays (z unread and
// possibly empty when alpha2 == 0).
std::vector<double> BiasActivation(const cudnnActivationStruct& act, const Layout& yl,
                                   const std::vector<double>& conv, double alpha1,
                                   const std::vector<double>& z, double alpha2,
                                   const std::vector<double>& bias) {
  const Index K = yl.dims[1];
  const Index S = Count(yl) / (static_cast<Index>(yl.dims[0]) * K);
  std::vector<double> out(conv.size());
  for (size_t i = 0; i < out.size(); ++i) {
    double v = alpha1 * conv[i] + bias[(static_cast<Index>(i) / S) % K];
    if (alpha2 != 0.0) v += alpha2 * z[i];
    out[i] = ActForward(act, v);
  }
  return out;
}

// A checked call's work `op` runs now, or is recorded when the handle's stream
// is being captured (emu_memory.hpp); `op` then owns copies of the scalars and
// descriptor contents it reads, since the caller may change or destroy them
// before the graph runs.  A refused launch (invalidated capture, or the legacy
// stream while the thread captures) fails with EXECUTION_FAILED_CUDART.
cudnnStatus_t Execute(cudnnHandle_t handle, const char* what, const std::function<void()>& op) {
  switch (crema_emu::RecordIfCapturing(handle->stream, op, what)) {
    case crema_emu::CaptureOutcome::kNotCapturing:
      op();
      return kOk;
    case crema_emu::CaptureOutcome::kRecorded:
      return kOk;
    default:
      return CUDNN_STATUS_EXECUTION_FAILED_CUDART;
  }
}

// cudnnFind* times the algorithms with allocations and synchronisations of its
// own, which a stream capture forbids: refused while the calling thread
// captures (in a mode that forbids unsafe calls) or the handle's stream is
// captured.
bool FindRefused(cudnnHandle_t handle, const char* what) {
  return crema_emu::RefuseUnsafeCall(what) || crema_emu::RefuseIfCapturing(handle->stream, what);
}

}  // namespace

// ===========================================================================
// Exported API.
// ===========================================================================
extern "C" {

// ---- Handle ---------------------------------------------------------------

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  return CreateObject(handle);
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  if (handle == nullptr) return kBad;
  delete handle;
  return kOk;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  if (handle == nullptr) return kBad;
  handle->stream = streamId;
  return kOk;
}

const char* cudnnGetErrorString(cudnnStatus_t status) {
  return StatusName(status);
}

size_t cudnnGetVersion(void) {
  return CUDNN_VERSION;
}

// ---- Tensor descriptors ---------------------------------------------------

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  return DestroyObject(d);
}

// Documented: BAD_PARAM for a dim <= 0; NOT_SUPPORTED for nbDims outside
// [4, CUDNN_DIM_MAX].  Negative strides are rejected (cuDNN routines do not
// support them).
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t d, cudnnDataType_t dataType,
                                         int nbDims, const int dimA[], const int strideA[]) {
  if (d == nullptr || dimA == nullptr || strideA == nullptr) return kBad;
  if (nbDims < 4 || nbDims > kMaxDims) return kUnsupported;
  Layout l;
  l.type = dataType;
  l.nb = nbDims;
  for (int i = 0; i < nbDims; ++i) {
    if (dimA[i] <= 0 || strideA[i] < 0) return kBad;
    l.dims[i] = dimA[i];
    l.strides[i] = strideA[i];
  }
  d->layout = l;
  d->set = true;
  return kOk;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w) {
  if (d == nullptr) return kBad;
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return kBad;
  static const int kNchw[] = {0, 1, 2, 3};
  static const int kNhwc[] = {0, 2, 3, 1};
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) return kUnsupported;
  Layout l;
  l.type = dataType;
  l.nb = 4;
  l.dims[0] = n;
  l.dims[1] = c;
  l.dims[2] = h;
  l.dims[3] = w;
  PackStrides(&l, format == CUDNN_TENSOR_NCHW ? kNchw : kNhwc);
  d->layout = l;
  d->set = true;
  return kOk;
}

// ---- Filter descriptors ---------------------------------------------------

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  return DestroyObject(d);
}

// filterDimA is always (K, C/groups, spatial...); NCHW stores it in that
// order, NHWC as (K, spatial..., C).  Minimum nbDims is 3 per the docs.
cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int nbDims,
                                         const int filterDimA[]) {
  if (d == nullptr || filterDimA == nullptr) return kBad;
  if (nbDims < 3 || nbDims > kMaxDims) return kUnsupported;
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) return kUnsupported;
  Layout l;
  l.type = dataType;
  l.nb = nbDims;
  int order[kMaxDims];
  for (int i = 0; i < nbDims; ++i) {
    if (filterDimA[i] <= 0) return kBad;
    l.dims[i] = filterDimA[i];
    order[i] = i;
  }
  if (format == CUDNN_TENSOR_NHWC) {  // K, spatial..., C
    for (int i = 1; i < nbDims - 1; ++i) order[i] = i + 1;
    order[nbDims - 1] = 1;
  }
  PackStrides(&l, order);
  d->layout = l;
  d->set = true;
  return kOk;
}

// ---- Convolution descriptors ----------------------------------------------

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  return DestroyObject(d);
}

cudnnStatus_t cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t d, int arrayLength,
                                              const int padA[], const int filterStrideA[],
                                              const int dilationA[], cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  if (!AllNonNull({d, padA, filterStrideA, dilationA})) return kBad;
  if (arrayLength < 1 || arrayLength > kMaxSpatial) return kBad;
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return kBad;
  for (int i = 0; i < arrayLength; ++i)
    if (padA[i] < 0 || filterStrideA[i] <= 0 || dilationA[i] <= 0) return kBad;
  d->nsp = arrayLength;
  for (int i = 0; i < arrayLength; ++i) {
    d->pad[i] = padA[i];
    d->stride[i] = filterStrideA[i];
    d->dilation[i] = dilationA[i];
  }
  d->mode = mode;
  d->compute = computeType;
  d->set = true;
  return kOk;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groupCount) {
  if (d == nullptr || groupCount < 1) return kBad;
  d->groups = groupCount;
  return kOk;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  if (d == nullptr) return kBad;
  if (!InRange(m, CUDNN_DEFAULT_MATH, CUDNN_FMA_MATH + 1)) return kBad;
  d->math = m;
  return kOk;
}

cudnnStatus_t cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc,
                                                    int nbDims, int tensorOuputDimA[]) {
  if (cudnnStatus_t s = FirstError({CheckTensor(inputTensorDesc), CheckFilter(filterDesc)});
      s != kOk)
    return s;
  if (convDesc == nullptr || !convDesc->set || tensorOuputDimA == nullptr) return kBad;
  if (nbDims != inputTensorDesc->layout.nb) return kBad;
  int out[kMaxDims] = {};
  if (cudnnStatus_t s = ConvOutputDims(*convDesc, inputTensorDesc->layout, filterDesc->layout, out);
      s != kOk)
    return s;
  std::copy(out, out + nbDims, tensorOuputDimA);
  return kOk;
}

// ---- Algorithm search and workspaces ----------------------------------------
// Every algorithm computes the same (exact) result here; the lists just give
// callers several candidates, fastest first.

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perf) {
  if (handle == nullptr) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, wDesc, convDesc, yDesc, &g); s != kOk) return s;
  if (FindRefused(handle, "cudnnFindConvolutionForwardAlgorithm"))
    return CUDNN_STATUS_EXECUTION_FAILED_CUDART;
  static const cudnnConvolutionFwdAlgo_t kAlgos[] = {
      CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
      CUDNN_CONVOLUTION_FWD_ALGO_GEMM};
  return FillPerf(kAlgos, requestedAlgoCount, returnedAlgoCount, perf, convDesc->math);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  if (handle == nullptr) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(dxDesc, wDesc, convDesc, dyDesc, &g); s != kOk) return s;
  if (FindRefused(handle, "cudnnFindConvolutionBackwardDataAlgorithm"))
    return CUDNN_STATUS_EXECUTION_FAILED_CUDART;
  static const cudnnConvolutionBwdDataAlgo_t kAlgos[] = {
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING};
  return FillPerf(kAlgos, requestedAlgoCount, returnedAlgoCount, perf, convDesc->math);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc,
    const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  if (handle == nullptr) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, dwDesc, convDesc, dyDesc, &g); s != kOk) return s;
  if (FindRefused(handle, "cudnnFindConvolutionBackwardFilterAlgorithm"))
    return CUDNN_STATUS_EXECUTION_FAILED_CUDART;
  static const cudnnConvolutionBwdFilterAlgo_t kAlgos[] = {
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING};
  return FillPerf(kAlgos, requestedAlgoCount, returnedAlgoCount, perf, convDesc->math);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  if (handle == nullptr || sizeInBytes == nullptr) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_FWD_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, wDesc, convDesc, yDesc, &g); s != kOk) return s;
  *sizeInBytes = 0;
  return kOk;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  if (handle == nullptr || sizeInBytes == nullptr) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(dxDesc, wDesc, convDesc, dyDesc, &g); s != kOk) return s;
  *sizeInBytes = 0;
  return kOk;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  if (handle == nullptr || sizeInBytes == nullptr) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, gradDesc, convDesc, dyDesc, &g); s != kOk) return s;
  *sizeInBytes = 0;
  return kOk;
}

// ---- Convolution ------------------------------------------------------------

// y = alpha * conv(x, w) + beta * y
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                      size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  if (!AllNonNull({handle, alpha, x, w, beta, y})) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_FWD_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, wDesc, convDesc, yDesc, &g); s != kOk) return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  if (cudnnStatus_t s = CheckWorkspace(workSpace, workSpaceSizeInBytes); s != kOk) return s;
  RequireTensor(xDesc->layout, x, "cudnnConvolutionForward x");
  RequireTensor(wDesc->layout, w, "cudnnConvolutionForward w");
  RequireTensor(yDesc->layout, y, "cudnnConvolutionForward y");
  const Layout xl = xDesc->layout, wl = wDesc->layout, yl = yDesc->layout;
  const double a = ReadScalar(alpha, yl.type), b = ReadScalar(beta, yl.type);
  return Execute(handle, "cudnnConvolutionForward",
                 [=] { RunForward(g, yl, y, xl, x, wl, w, a, b); });
}

// y = act(alpha1 * conv(x, w) + alpha2 * z + bias); see "Fused convolution + bias +
// activation" above. Validation as cudnnConvolutionForward's, plus z (y's dims and type),
// the bias and the activation.
cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void* alpha1, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void* workSpace, size_t workSpaceSizeInBytes,
    const void* alpha2, const cudnnTensorDescriptor_t zDesc, const void* z,
    const cudnnTensorDescriptor_t biasDesc, const void* bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc,
    void* y) {
  if (!AllNonNull({handle, alpha1, x, w, alpha2, z, bias, y})) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_FWD_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, wDesc, convDesc, yDesc, &g); s != kOk) return s;
  if (cudnnStatus_t s = FirstError({CheckPair(zDesc, yDesc), CheckBias(biasDesc, yDesc->layout),
                                    CheckFusedActivation(activationDesc, algo)});
      s != kOk)
    return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  if (cudnnStatus_t s = CheckWorkspace(workSpace, workSpaceSizeInBytes); s != kOk) return s;
  const Layout xl = xDesc->layout, wl = wDesc->layout, zl = zDesc->layout, bl = biasDesc->layout,
               yl = yDesc->layout;
  RequireTensor(xl, x, "cudnnConvolutionBiasActivationForward x");
  RequireTensor(wl, w, "cudnnConvolutionBiasActivationForward w");
  RequireTensor(zl, z, "cudnnConvolutionBiasActivationForward z");
  RequireTensor(bl, bias, "cudnnConvolutionBiasActivationForward bias");
  RequireTensor(yl, y, "cudnnConvolutionBiasActivationForward y");
  const double a1 = ReadScalar(alpha1, yl.type), a2 = ReadScalar(alpha2, yl.type);
  const cudnnActivationStruct act = *activationDesc;
  return Execute(handle, "cudnnConvolutionBiasActivationForward", [=] {
    const std::vector<double> conv = ForwardPacked(g, yl, xl, x, wl, w);
    // z is gathered before y is written: it may be y.
    const std::vector<double> zv = a2 != 0.0 ? Gather(zl, z) : std::vector<double>();
    const std::vector<double> bv = Gather(bl, bias);
    Blend(yl, y, BiasActivation(act, yl, conv, a1, zv, a2, bv), 1.0, 0.0);
  });
}

// dx = alpha * conv^T(w, dy) + beta * dx  (adjoint of the forward map in x)
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void* w,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  if (!AllNonNull({handle, alpha, w, dy, beta, dx})) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(dxDesc, wDesc, convDesc, dyDesc, &g); s != kOk) return s;
  if (!NonOverlapping(dxDesc->layout)) return kBad;
  if (cudnnStatus_t s = CheckWorkspace(workSpace, workSpaceSizeInBytes); s != kOk) return s;
  RequireTensor(wDesc->layout, w, "cudnnConvolutionBackwardData w");
  RequireTensor(dyDesc->layout, dy, "cudnnConvolutionBackwardData dy");
  RequireTensor(dxDesc->layout, dx, "cudnnConvolutionBackwardData dx");
  const Layout wl = wDesc->layout, dyl = dyDesc->layout, dxl = dxDesc->layout;
  const double a = ReadScalar(alpha, dxl.type), b = ReadScalar(beta, dxl.type);
  return Execute(handle, "cudnnConvolutionBackwardData", [=] {
    RunConvPass(
        g, dxl, dx, wl, w, dyl, dy, a, b,
        [&g](const void* wp, const void* dyp, void* dxp, double a, double b) {
          FastBackwardData(g, wp, dyp, dxp, a, b);
        },
        [](const std::vector<double>& wv, const std::vector<double>& dyv, std::vector<double>& dxv,
           Index xi, Index wi, Index yi) { dxv[xi] += wv[wi] * dyv[yi]; });
  });
}

// dw = alpha * d<dy, conv(x, w)>/dw + beta * dw
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  if (!AllNonNull({handle, alpha, x, dy, beta, dw})) return kBad;
  if (!InRange(algo, 0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT)) return kBad;
  ConvGeom g;
  if (cudnnStatus_t s = MakeConvGeom(xDesc, dwDesc, convDesc, dyDesc, &g); s != kOk) return s;
  if (cudnnStatus_t s = CheckWorkspace(workSpace, workSpaceSizeInBytes); s != kOk) return s;
  RequireTensor(xDesc->layout, x, "cudnnConvolutionBackwardFilter x");
  RequireTensor(dyDesc->layout, dy, "cudnnConvolutionBackwardFilter dy");
  RequireTensor(dwDesc->layout, dw, "cudnnConvolutionBackwardFilter dw");
  const Layout xl = xDesc->layout, dyl = dyDesc->layout, dwl = dwDesc->layout;
  const double a = ReadScalar(alpha, dwl.type), b = ReadScalar(beta, dwl.type);
  return Execute(handle, "cudnnConvolutionBackwardFilter", [=] {
    RunConvPass(
        g, dwl, dw, xl, x, dyl, dy, a, b,
        [&g](const void* xp, const void* dyp, void* dwp, double a, double b) {
          FastBackwardFilter(g, xp, dyp, dwp, a, b);
        },
        [](const std::vector<double>& xv, const std::vector<double>& dyv, std::vector<double>& dwv,
           Index xi, Index wi, Index yi) { dwv[wi] += xv[xi] * dyv[yi]; });
  });
}

// db[k] = alpha * sum_{n, spatial} dy[n, k, ...] + beta * db[k]; db is 1xKx1x1(...).
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                           void* db) {
  if (!AllNonNull({handle, alpha, dy, beta, db})) return kBad;
  if (cudnnStatus_t s = FirstError({CheckTensor(dyDesc), CheckTensor(dbDesc)}); s != kOk) return s;
  const Layout dyl = dyDesc->layout, dbl = dbDesc->layout;
  if (dbl.nb != dyl.nb || dbl.dims[1] != dyl.dims[1] || dbl.type != dyl.type) return kBad;
  for (int d = 0; d < dbl.nb; ++d)
    if (d != 1 && dbl.dims[d] != 1) return kBad;
  RequireTensor(dyl, dy, "cudnnConvolutionBackwardBias dy");
  RequireTensor(dbl, db, "cudnnConvolutionBackwardBias db");
  const double a = ReadScalar(alpha, dbl.type), b = ReadScalar(beta, dbl.type);
  return Execute(handle, "cudnnConvolutionBackwardBias", [=] {
    if (!ForceReference() && PackedFloat(dyl) && PackedFloat(dbl) && Disjoint(dyl, dy, dbl, db)) {
      FastBackwardBias(dyl, dy, db, a, b);
      return;
    }
    const std::vector<double> dyv = Gather(dyl, dy);
    const Index K = dyl.dims[1];
    const Index S = Count(dyl) / (dyl.dims[0] * K);
    std::vector<double> dbv(static_cast<size_t>(K), 0.0);
    for (Index i = 0; i < static_cast<Index>(dyv.size()); ++i) dbv[(i / S) % K] += dyv[i];
    Blend(dbl, db, dbv, a, b);
  });
}

// C = alpha * A + beta * C; every dim of A equals C's or is 1 (broadcast).
cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha,
                             const cudnnTensorDescriptor_t aDesc, const void* A, const void* beta,
                             const cudnnTensorDescriptor_t cDesc, void* C) {
  if (!AllNonNull({handle, alpha, A, beta, C})) return kBad;
  if (cudnnStatus_t s = FirstError({CheckTensor(aDesc), CheckTensor(cDesc)}); s != kOk) return s;
  const Layout al = aDesc->layout, cl = cDesc->layout;
  if (al.nb != cl.nb || al.type != cl.type) return kBad;
  for (int d = 0; d < cl.nb; ++d)
    if (al.dims[d] != cl.dims[d] && al.dims[d] != 1) return kBad;
  RequireTensor(al, A, "cudnnAddTensor A");
  RequireTensor(cl, C, "cudnnAddTensor C");
  const double a = ReadScalar(alpha, cl.type), b = ReadScalar(beta, cl.type);
  return Execute(handle, "cudnnAddTensor", [=] {
    Index mid = 0, inner = 0;
    if (!ForceReference() && PackedFloat(al) && PackedFloat(cl) && Disjoint(al, A, cl, C) &&
        BroadcastShape(al, cl, &mid, &inner)) {
      FastAddTensor(cl, A, C, mid, inner, a, b);
      return;
    }
    const std::vector<double> av = Gather(al, A);
    std::vector<double> cv(static_cast<size_t>(Count(cl)));
    for (Index i = 0; i < static_cast<Index>(cv.size()); ++i) {
      Index rest = i, ai = 0, a_stride = 1;
      for (int d = cl.nb - 1; d >= 0; --d) {  // broadcast index into packed A
        const Index coord = rest % cl.dims[d];
        rest /= cl.dims[d];
        if (al.dims[d] != 1) ai += coord * a_stride;
        a_stride *= al.dims[d];
      }
      cv[i] = av[ai];
    }
    Blend(cl, C, cv, a, b);
  });
}

// ---- Pooling ------------------------------------------------------------------

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t d) {
  return DestroyObject(d);
}

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight,
                                          int windowWidth, int verticalPadding,
                                          int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  if (d == nullptr || !ValidNanOpt(maxpoolingNanOpt)) return kBad;
  if (!InRange(mode, CUDNN_POOLING_MAX, CUDNN_POOLING_MAX_DETERMINISTIC + 1)) return kBad;
  if (windowHeight <= 0 || windowWidth <= 0 || verticalStride <= 0 || horizontalStride <= 0 ||
      verticalPadding < 0 || horizontalPadding < 0)
    return kBad;
  d->mode = mode;
  d->nan = maxpoolingNanOpt;
  d->window[0] = windowHeight;
  d->window[1] = windowWidth;
  d->pad[0] = verticalPadding;
  d->pad[1] = horizontalPadding;
  d->stride[0] = verticalStride;
  d->stride[1] = horizontalStride;
  d->set = true;
  return kOk;
}

// out = 1 + (in + 2*pad - window) / stride  (floor)
cudnnStatus_t cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t poolingDesc,
                                                const cudnnTensorDescriptor_t inputTensorDesc,
                                                int* n, int* c, int* h, int* w) {
  if (!AllNonNull({n, c, h, w})) return kBad;
  if (cudnnStatus_t s = CheckTensor(inputTensorDesc); s != kOk) return s;
  if (poolingDesc == nullptr || !poolingDesc->set) return kBad;
  const Layout& x = inputTensorDesc->layout;
  if (x.nb != 4) return kBad;
  int out[2];
  for (int a = 0; a < 2; ++a) {
    const int num = x.dims[2 + a] + 2 * poolingDesc->pad[a] - poolingDesc->window[a];
    if (num < 0) return kBad;
    out[a] = 1 + num / poolingDesc->stride[a];
  }
  *n = x.dims[0];
  *c = x.dims[1];
  *h = out[0];
  *w = out[1];
  return kOk;
}

// Output windows are placed at o*stride - pad for every output position of y
// (y's h, w are taken from yDesc).  MAX: max over the in-bounds part of the
// window; AVERAGE: in-bounds sum / divisor (PoolDivisor).  An output whose
// window has no in-bounds element yields 0.
cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                  const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                  const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  if (!AllNonNull({handle, alpha, x, beta, y})) return kBad;
  if (cudnnStatus_t s = CheckPooling(poolingDesc, xDesc, yDesc); s != kOk) return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  RequireTensor(xDesc->layout, x, "cudnnPoolingForward x");
  RequireTensor(yDesc->layout, y, "cudnnPoolingForward y");
  const cudnnPoolingStruct p = *poolingDesc;
  const Layout xl = xDesc->layout, yl = yDesc->layout;
  const double a = ReadScalar(alpha, yl.type), b = ReadScalar(beta, yl.type);
  return Execute(handle, "cudnnPoolingForward", [=] {
    const std::vector<double> xv = Gather(xl, x);
    std::vector<double> yv(static_cast<size_t>(Count(yl)), 0.0);
    const int W = xl.dims[3];
    ForEachPoolOutput(p, xl, yl, [&](Index o, Index base, Window wh, Window ww) {
      if (IsMaxMode(p.mode)) {
        const Index best = ArgMax(xv, base, W, wh, ww, p.nan);
        yv[o] = best < 0 ? 0.0 : xv[best];
        return;
      }
      double sum = 0.0;
      for (int h = wh.begin; h < wh.end; ++h)
        for (int w = ww.begin; w < ww.end; ++w) sum += xv[base + static_cast<Index>(h) * W + w];
      const double div = PoolDivisor(p, wh, ww);
      yv[o] = div > 0.0 ? sum / div : 0.0;
    });
    Blend(yl, y, yv, a, b);
  });
}

// MAX: dy goes to the first maximum of x in the window (row-major scan, same
// rule as the forward); AVERAGE: dy / divisor to every in-bounds position.
// y is validated and device-checked but the argmax is recomputed from x.
cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                   const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                   const void* y, const cudnnTensorDescriptor_t dyDesc,
                                   const void* dy, const cudnnTensorDescriptor_t xDesc,
                                   const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  if (!AllNonNull({handle, alpha, y, dy, x, beta, dx})) return kBad;
  if (cudnnStatus_t s = FirstError({CheckPooling(poolingDesc, xDesc, yDesc),
                                    CheckPair(yDesc, dyDesc), CheckPair(xDesc, dxDesc)});
      s != kOk)
    return s;
  if (!NonOverlapping(dxDesc->layout)) return kBad;
  RequireTensor(yDesc->layout, y, "cudnnPoolingBackward y");
  RequireTensor(dyDesc->layout, dy, "cudnnPoolingBackward dy");
  RequireTensor(xDesc->layout, x, "cudnnPoolingBackward x");
  RequireTensor(dxDesc->layout, dx, "cudnnPoolingBackward dx");
  const cudnnPoolingStruct p = *poolingDesc;
  const Layout xl = xDesc->layout, yl = yDesc->layout, dyl = dyDesc->layout, dxl = dxDesc->layout;
  const double a = ReadScalar(alpha, dxl.type), b = ReadScalar(beta, dxl.type);
  return Execute(handle, "cudnnPoolingBackward", [=] {
    const std::vector<double> xv = Gather(xl, x);
    const std::vector<double> dyv = Gather(dyl, dy);
    std::vector<double> dxv(xv.size(), 0.0);
    const int W = xl.dims[3];
    ForEachPoolOutput(p, xl, yl, [&](Index o, Index base, Window wh, Window ww) {
      if (IsMaxMode(p.mode)) {
        const Index best = ArgMax(xv, base, W, wh, ww, p.nan);
        if (best >= 0) dxv[best] += dyv[o];
        return;
      }
      const double div = PoolDivisor(p, wh, ww);
      if (div <= 0.0) return;
      for (int h = wh.begin; h < wh.end; ++h)
        for (int w = ww.begin; w < ww.end; ++w)
          dxv[base + static_cast<Index>(h) * W + w] += dyv[o] / div;
    });
    Blend(dxl, dx, dxv, a, b);
  });
}

// ---- Activation -----------------------------------------------------------------

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t d) {
  return DestroyObject(d);
}

// coef: CLIPPED_RELU ceiling, ELU alpha; ignored otherwise.
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double coef) {
  if (d == nullptr || !ValidActivationMode(mode) || !ValidNanOpt(reluNanOpt)) return kBad;
  d->mode = mode;
  d->nan = reluNanOpt;
  d->coef = coef;
  d->set = true;
  return kOk;
}

cudnnStatus_t cudnnSetActivationDescriptorSwishBeta(cudnnActivationDescriptor_t d,
                                                    double swish_beta) {
  if (d == nullptr) return kBad;
  d->swish_beta = swish_beta;
  return kOk;
}

// y = alpha * f(x) + beta * y
cudnnStatus_t cudnnActivationForward(cudnnHandle_t handle,
                                     cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                     const cudnnTensorDescriptor_t xDesc, const void* x,
                                     const void* beta, const cudnnTensorDescriptor_t yDesc,
                                     void* y) {
  if (!AllNonNull({handle, activationDesc, alpha, x, beta, y})) return kBad;
  if (!activationDesc->set) return kBad;
  if (cudnnStatus_t s = CheckPair(xDesc, yDesc); s != kOk) return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  RequireTensor(xDesc->layout, x, "cudnnActivationForward x");
  RequireTensor(yDesc->layout, y, "cudnnActivationForward y");
  const cudnnActivationStruct act = *activationDesc;
  const Layout xl = xDesc->layout, yl = yDesc->layout;
  const double a = ReadScalar(alpha, yl.type), b = ReadScalar(beta, yl.type);
  return Execute(handle, "cudnnActivationForward", [=] {
    std::vector<double> v = Gather(xl, x);
    for (double& e : v) e = ActForward(act, e);
    Blend(yl, y, v, a, b);
  });
}

// dx = alpha * dy * f'(x) + beta * dx
cudnnStatus_t cudnnActivationBackward(cudnnHandle_t handle,
                                      cudnnActivationDescriptor_t activationDesc, const void* alpha,
                                      const cudnnTensorDescriptor_t yDesc, const void* y,
                                      const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                      void* dx) {
  if (!AllNonNull({handle, activationDesc, alpha, y, dy, x, beta, dx})) return kBad;
  if (!activationDesc->set) return kBad;
  if (cudnnStatus_t s =
          FirstError({CheckPair(yDesc, dyDesc), CheckPair(yDesc, xDesc), CheckPair(xDesc, dxDesc)});
      s != kOk)
    return s;
  if (!NonOverlapping(dxDesc->layout)) return kBad;
  RequireTensor(yDesc->layout, y, "cudnnActivationBackward y");
  RequireTensor(dyDesc->layout, dy, "cudnnActivationBackward dy");
  RequireTensor(xDesc->layout, x, "cudnnActivationBackward x");
  RequireTensor(dxDesc->layout, dx, "cudnnActivationBackward dx");
  const cudnnActivationStruct act = *activationDesc;
  const Layout yl = yDesc->layout, dyl = dyDesc->layout, xl = xDesc->layout, dxl = dxDesc->layout;
  const double a = ReadScalar(alpha, dxl.type), b = ReadScalar(beta, dxl.type);
  return Execute(handle, "cudnnActivationBackward", [=] {
    const std::vector<double> yv = Gather(yl, y);
    const std::vector<double> dyv = Gather(dyl, dy);
    const std::vector<double> xv = Gather(xl, x);
    std::vector<double> dxv(xv.size());
    for (size_t i = 0; i < dxv.size(); ++i) dxv[i] = ActBackward(act, yv[i], dyv[i], xv[i]);
    Blend(dxl, dx, dxv, a, b);
  });
}

// ---- LRN --------------------------------------------------------------------------

cudnnStatus_t cudnnCreateLRNDescriptor(cudnnLRNDescriptor_t* d) {
  return CreateObject(d);
}
cudnnStatus_t cudnnDestroyLRNDescriptor(cudnnLRNDescriptor_t d) {
  return DestroyObject(d);
}

// Documented ranges: CUDNN_LRN_MIN_N <= lrnN <= CUDNN_LRN_MAX_N,
// lrnK >= CUDNN_LRN_MIN_K, lrnBeta >= CUDNN_LRN_MIN_BETA.
cudnnStatus_t cudnnSetLRNDescriptor(cudnnLRNDescriptor_t d, unsigned lrnN, double lrnAlpha,
                                    double lrnBeta, double lrnK) {
  if (d == nullptr) return kBad;
  if (lrnN < CUDNN_LRN_MIN_N || lrnN > CUDNN_LRN_MAX_N || lrnK < CUDNN_LRN_MIN_K ||
      lrnBeta < CUDNN_LRN_MIN_BETA)
    return kBad;
  d->n = lrnN;
  d->alpha = lrnAlpha;
  d->beta = lrnBeta;
  d->k = lrnK;
  return kOk;
}

// y = alpha * lrn(x) + beta * y  (formula above MakeLrnParams)
cudnnStatus_t cudnnLRNCrossChannelForward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc,
                                          cudnnLRNMode_t lrnMode, const void* alpha,
                                          const cudnnTensorDescriptor_t xDesc, const void* x,
                                          const void* beta, const cudnnTensorDescriptor_t yDesc,
                                          void* y) {
  if (!AllNonNull({handle, normDesc, alpha, x, beta, y})) return kBad;
  if (lrnMode != CUDNN_LRN_CROSS_CHANNEL_DIM1) return kUnsupported;
  if (cudnnStatus_t s = CheckPair(xDesc, yDesc); s != kOk) return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  RequireTensor(xDesc->layout, x, "cudnnLRNCrossChannelForward x");
  RequireTensor(yDesc->layout, y, "cudnnLRNCrossChannelForward y");
  const LrnParams p = MakeLrnParams(*normDesc, xDesc->layout.type);
  const Layout xl = xDesc->layout, yl = yDesc->layout;
  const double a = ReadScalar(alpha, yl.type), b = ReadScalar(beta, yl.type);
  return Execute(handle, "cudnnLRNCrossChannelForward", [=] {
    Index N, S;
    int C;
    LrnShape(xl, &N, &C, &S);
    const std::vector<double> xv = Gather(xl, x);
    const std::vector<double> d = LrnDenominators(p, xv, N, C, S);
    std::vector<double> yv(xv.size());
    for (size_t i = 0; i < yv.size(); ++i) yv[i] = xv[i] * std::pow(d[i], -p.beta);
    Blend(yl, y, yv, a, b);
  });
}

// dx = alpha * dLRN/dx^T dy + beta * dx; recomputed from x (y is only checked).
cudnnStatus_t cudnnLRNCrossChannelBackward(cudnnHandle_t handle, cudnnLRNDescriptor_t normDesc,
                                           cudnnLRNMode_t lrnMode, const void* alpha,
                                           const cudnnTensorDescriptor_t yDesc, const void* y,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnTensorDescriptor_t xDesc, const void* x,
                                           const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                           void* dx) {
  if (!AllNonNull({handle, normDesc, alpha, y, dy, x, beta, dx})) return kBad;
  if (lrnMode != CUDNN_LRN_CROSS_CHANNEL_DIM1) return kUnsupported;
  if (cudnnStatus_t s =
          FirstError({CheckPair(yDesc, dyDesc), CheckPair(yDesc, xDesc), CheckPair(xDesc, dxDesc)});
      s != kOk)
    return s;
  if (!NonOverlapping(dxDesc->layout)) return kBad;
  RequireTensor(yDesc->layout, y, "cudnnLRNCrossChannelBackward y");
  RequireTensor(dyDesc->layout, dy, "cudnnLRNCrossChannelBackward dy");
  RequireTensor(xDesc->layout, x, "cudnnLRNCrossChannelBackward x");
  RequireTensor(dxDesc->layout, dx, "cudnnLRNCrossChannelBackward dx");
  const LrnParams p = MakeLrnParams(*normDesc, xDesc->layout.type);
  const Layout xl = xDesc->layout, dyl = dyDesc->layout, dxl = dxDesc->layout;
  const double a = ReadScalar(alpha, dxl.type), b = ReadScalar(beta, dxl.type);
  return Execute(handle, "cudnnLRNCrossChannelBackward", [=] {
    Index N, S;
    int C;
    LrnShape(xl, &N, &C, &S);
    const std::vector<double> dxv = LrnGradient(p, Gather(xl, x), Gather(dyl, dy), N, C, S);
    Blend(dxl, dx, dxv, a, b);
  });
}

// ---- Softmax --------------------------------------------------------------------

cudnnStatus_t cudnnSoftmaxForward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                  cudnnSoftmaxMode_t mode, const void* alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                  const void* beta, const cudnnTensorDescriptor_t yDesc, void* y) {
  if (!AllNonNull({handle, alpha, x, beta, y})) return kBad;
  if (!ValidSoftmax(algo, mode)) return kBad;
  if (cudnnStatus_t s = CheckPair(xDesc, yDesc); s != kOk) return s;
  if (!NonOverlapping(yDesc->layout)) return kBad;
  RequireTensor(xDesc->layout, x, "cudnnSoftmaxForward x");
  RequireTensor(yDesc->layout, y, "cudnnSoftmaxForward y");
  const Layout xl = xDesc->layout, yl = yDesc->layout;
  const double a = ReadScalar(alpha, yl.type), b = ReadScalar(beta, yl.type);
  return Execute(handle, "cudnnSoftmaxForward", [=] {
    const std::vector<double> xv = Gather(xl, x);
    std::vector<double> yv(xv.size());
    const SoftmaxShape sh = SoftmaxGroups(xl, mode);
    ForEachSoftmaxGroup(sh, [&](Index first, Index step) {
      SoftmaxGroup(algo, xl.type != CUDNN_DATA_DOUBLE, xv, &yv, first, step, sh.len);
    });
    Blend(yl, y, yv, a, b);
  });
}

cudnnStatus_t cudnnSoftmaxBackward(cudnnHandle_t handle, cudnnSoftmaxAlgorithm_t algo,
                                   cudnnSoftmaxMode_t mode, const void* alpha,
                                   const cudnnTensorDescriptor_t yDesc, const void* y,
                                   const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                   const void* beta, const cudnnTensorDescriptor_t dxDesc,
                                   void* dx) {
  if (!AllNonNull({handle, alpha, y, dy, beta, dx})) return kBad;
  if (!ValidSoftmax(algo, mode)) return kBad;
  if (cudnnStatus_t s = FirstError({CheckPair(yDesc, dyDesc), CheckPair(yDesc, dxDesc)}); s != kOk)
    return s;
  if (!NonOverlapping(dxDesc->layout)) return kBad;
  RequireTensor(yDesc->layout, y, "cudnnSoftmaxBackward y");
  RequireTensor(dyDesc->layout, dy, "cudnnSoftmaxBackward dy");
  RequireTensor(dxDesc->layout, dx, "cudnnSoftmaxBackward dx");
  const Layout yl = yDesc->layout, dyl = dyDesc->layout, dxl = dxDesc->layout;
  const double a = ReadScalar(alpha, dxl.type), b = ReadScalar(beta, dxl.type);
  return Execute(handle, "cudnnSoftmaxBackward", [=] {
    const std::vector<double> yv = Gather(yl, y);
    const std::vector<double> dyv = Gather(dyl, dy);
    std::vector<double> dxv(yv.size());
    const SoftmaxShape sh = SoftmaxGroups(yl, mode);
    ForEachSoftmaxGroup(sh, [&](Index first, Index step) {
      SoftmaxGroupBackward(algo, yv, dyv, &dxv, first, step, sh.len);
    });
    Blend(dxl, dx, dxv, a, b);
  });
}

}  // extern "C"
