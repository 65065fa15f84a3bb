// ConvolutionLayer on the GPU (formulas in convolution.hpp): cuDNN through
// src/cudnn_adapter (algorithm search, caching, precision; see that header). Grouped
// convolutions (including the depthwise case, whose layer derives from this one) use
// cuDNN's group count. Every bottom/top pair shares one configured operation.
//
// FP16/BF16 with 1 or 2 spatial axes run cuDNN channels last (cudnn::ConvLayout::NHWC),
// where its 16-bit tensor-core kernels are fastest; the blobs stay NCHW (Caffe's layout).
// The 16-bit copies change layout as they change precision (src/mixed_precision.cuh):
//   x [num][C][S]      -> x16 [num][S][C]           (gpu_round_16_nhwc)
//   W [O][C/g][K]      -> w16 [O][K][C/g]           (cuDNN's NHWC filter format)
//   y16 [num][So][O]   -> y [num][O][So] + b[o]     (gpu_widen_16_nchw, the bias fused)
//   dy [num][O][So]    -> dy16 = round16(S dy), NHWC
//   dx16, dW16 (NHWC)  -> dx = dx16 / S, dW += dW16 / S  (NCHW / [O][C/g][K])
// with S the loss scale. 3 spatial axes keep the 16-bit copies NCHW (elementwise rounding).
//
// A 1x1 convolution with stride 1, no padding and one group is a matrix product per image on
// the NCHW blobs, in every precision (16-bit: on rounded copies, NCHW, fp32 results):
//   y_n [O][S] = W [O][C] x_n [C][S]       (one strided-batched cuBLAS call, + bias)
//   dx_n = W^T dy_n,   dW += sum_n dy_n x_n^T
// which needs no layout change and no widening pass. Whether such a layer runs these GEMMs
// or cuDNN is decided per shape: both forwards are timed on the first forward of each shape
// and the faster is kept (logged with GLOG_v=1). CREMA_CONV_1X1_GEMM=1 or =0 forces the
// GEMMs or cuDNN (read when a layer's shape or precision changes).
//
// At test time a convolution may run with an epilogue (src/inference_fusion.hpp): the
// BatchNorm, Scale, ReLU and residual sum that follow it in the net, applied where its
// output is written: by the widening pass of the 16-bit NHWC route, else by one pass over y
// in place of the bias (gpu_channel_epilogue). In FP32 and TF32 an epilogue without a
// residual sum can instead run inside cuDNN's fused convolution + bias + ReLU (its
// per-channel scale folded into a copy of W: conv(x, a W) + b); which of the two is faster
// is timed once per shape (logged with GLOG_v=1); CREMA_CONV_FUSED_CUDNN=1 or =0 forces it.
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <string>

#include "layers/convolution.hpp"
#include "src/channel_epilogue.hpp"
#include "src/cuda_kernel.cuh"
#include "src/cuda_util.hpp"
#include "src/cudnn_adapter.hpp"
#include "src/mixed_precision.cuh"

namespace crema {

namespace {

cudnn::ConvShape conv_shape(int num, int channels, int num_output, int groups,
                            const std::vector<int>& input, const std::vector<int>& output,
                            const std::vector<int>& kernel, const std::vector<int>& pad,
                            const std::vector<int>& stride, const std::vector<int>& dilation,
                            Precision precision, cudnn::ConvLayout layout) {
  cudnn::ConvShape s;
  s.num = num;
  s.channels = channels;
  s.num_output = num_output;
  s.groups = groups;
  s.input = input;
  s.output = output;
  s.kernel = kernel;
  s.pad = pad;
  s.stride = stride;
  s.dilation = dilation;
  s.precision = precision;
  s.layout = layout;
  return s;
}

// S of `blob` seen as [num][channels][S], the view of the layout conversions: the spatial
// volume of a bottom or top, or the kernel volume of W ([O][C/g][K]).
int64_t spatial_volume(const Blob& blob, int num, int channels) {
  return blob.count() / (static_cast<int64_t>(num) * channels);
}

// The 16-bit array p advanced by n values.
const void* offset_16(const void* p, int64_t n) {
  return static_cast<const uint16_t*>(p) + n;
}

// A route switch in the environment: "1" always the route, "0" never, unset or "auto":
// timed. Any other value is timed too, with a warning (`what`: what is timed).
//   CREMA_CONV_1X1_GEMM     1x1 convolutions as cuBLAS GEMMs (else cuDNN)
//   CREMA_CONV_FUSED_CUDNN  epilogues inside cuDNN's fused convolution (else a pass of their own)
enum class Route { kTimed, kAlways, kNever };
Route route_setting(const char* variable, const char* what) {
  const char* v = std::getenv(variable);
  const std::string value = v ? v : "";
  if (value == "1") return Route::kAlways;
  if (value == "0") return Route::kNever;
  if (!value.empty() && value != "auto")
    LOG(WARNING) << variable << "=" << value << " is not 1, 0 or auto: " << what
                 << " time both routes";
  return Route::kTimed;
}

// The timed decisions, per device and shape (ConvShape::ToString), for the whole process.
std::mutex& route_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, bool>& route_cache() {
  static std::map<std::string, bool> c;
  return c;
}
std::map<std::string, bool>& fused_cache() {
  static std::map<std::string, bool> c;
  return c;
}

}  // namespace

bool ConvolutionLayer::nhwc_16(Precision math) const {
  return IsHalfPrecision(math) && num_spatial_axes_ <= 2;
}

cudnn::ConvShape ConvolutionLayer::CudnnShape(Precision math) const {
  return conv_shape(num_, channels_, num_output_, group_, bottom_spatial_, output_shape_,
                    kernel_shape_, pad_, stride_, dilation_, math,
                    nhwc_16(math) ? cudnn::ConvLayout::NHWC : cudnn::ConvLayout::NCHW);
}

void ConvolutionLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (num_ == 0) return;  // an empty batch
  const void* w16 = prepare_forward(*bottom[0], top[0]);
  for (size_t i = 0; i < bottom.size(); ++i)
    forward_pair(*bottom[i], top[i], w16, nullptr, nullptr);
}

void ConvolutionLayer::ForwardWithEpilogue(const Blob& bottom, Blob* top,
                                           const ChannelEpilogue& epilogue, Blob* visible) {
  if (num_ == 0) return;
  const void* w16 = prepare_forward(bottom, top);
  if (!fused_cudnn_possible(epilogue)) {
    forward_pair(bottom, top, w16, &epilogue, visible);
    return;
  }
  if (bottom.shape() != fused_shape_ || precision() != fused_precision_ ||
      epilogue.relu != fused_relu_ || use_gemm_ != fused_gemm_) {
    use_fused_cudnn_ = choose_fused_cudnn(bottom, top, w16, epilogue);
    fused_shape_ = bottom.shape();
    fused_precision_ = precision();
    fused_relu_ = epilogue.relu;
    fused_gemm_ = use_gemm_;
  }
  if (use_fused_cudnn_)
    forward_fused_cudnn(bottom, top, epilogue);
  else
    forward_pair(bottom, top, w16, &epilogue, visible);
}

void ConvolutionLayer::forward_pair(const Blob& bottom, Blob* top, const void* w16,
                                    const ChannelEpilogue* epilogue, Blob* visible) {
  // The input's 16-bit copy in the route's layout, if its producer wrote one.
  const void* x16 = nullptr;
  if (IsHalfPrecision(precision()) && channel_axis_ == 1) {
    const bool nhwc = !use_gemm_ && nhwc_16(precision());
    x16 = mixed_precision()->copies->Find(bottom.data(), copy_view(bottom, channels_, nhwc));
  }
  if (use_gemm_)
    forward_gemm_1x1(bottom, top, w16, epilogue, x16, visible);
  else
    forward_cudnn(bottom, top, w16, epilogue, x16, visible);
}

ActivationCopies::View ConvolutionLayer::copy_view(const Blob& blob, int channels,
                                                   bool nhwc) const {
  ActivationCopies::View view;
  view.precision = precision();
  view.nhwc = nhwc;
  view.num = num_;
  view.channels = channels;
  view.spatial = spatial_volume(blob, num_, channels);
  return view;
}

ChannelEpilogue ConvolutionLayer::with_copy(const ChannelEpilogue& epilogue, Blob* visible) {
  ChannelEpilogue out = epilogue;
  if (!visible || !IsHalfPrecision(precision()) || channel_axis_ != 1) return out;
  const ActivationCopies::Target target =
      mixed_precision()->copies->Produce(visible->data(), copy_view(*visible, num_output_, false));
  if (!target.data) return out;
  out.copy16 = target.data;
  out.copy_nhwc = target.view.nhwc;
  out.copy_bf16 = precision() == Precision::BF16;
  out.copy_overflow = mixed_precision()->overflow.mutable_gpu_data();
  return out;
}

const void* ConvolutionLayer::prepare_forward(const Blob& bottom, Blob* top) {
  LAYER_REQUIRE(num_spatial_axes_ >= 1 && num_spatial_axes_ <= 3,
                "GPU convolution supports 1 to 3 spatial axes, got " << num_spatial_axes_);
  const Precision math = precision();
  const bool nhwc = nhwc_16(math);
  if (!cudnn_) cudnn_ = std::make_shared<cudnn::ConvolutionOp>();
  const cudnn::ConvShape shape = CudnnShape(math);
  cudnn_->Setup(shape);
  const void* w16 = nullptr;
  if (IsHalfPrecision(math)) {  // round W once for every bottom (and the backward pass)
    const float* weight = blobs_[0]->gpu_data();
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    void* w = gpu_buffer_16(&w16_, blobs_[0]->count());
    const int group_channels = channels_ / group_;
    if (nhwc)
      gpu_round_16_nhwc(math, num_output_, group_channels,
                        spatial_volume(*blobs_[0], num_output_, group_channels), weight, 1.f, w,
                        overflow);
    else
      gpu_round_16(math, blobs_[0]->count(), weight, 1.f, w, overflow);
    w16 = w;
  }
  // The route is chosen again only when the bottom's shape or the precision changes (the
  // choice builds a key string and may time both routes: not work for every forward).
  if (!is_1x1_ || group_ != 1) {
    use_gemm_ = false;
  } else if (bottom.shape() != routed_shape_ || math != routed_precision_) {
    use_gemm_ = choose_gemm_1x1(shape, bottom, top, w16);
    routed_shape_ = bottom.shape();
    routed_precision_ = math;
  }
  return w16;
}

// The bias, or the epilogue in its place (with the copy of `visible` a reader asked for), on
// fp32 NCHW y that holds the raw convolution.
void ConvolutionLayer::finish_output(const ChannelEpilogue* epilogue, Blob* visible, float* y) {
  if (!epilogue) {
    if (bias_term_) cudnn_->AddBias(blobs_[1]->gpu_data(), y);
    return;
  }
  const ChannelEpilogue copying = with_copy(*epilogue, visible);
  if (copying.copy16 && copying.copy_nhwc)
    gpu_channel_epilogue_nhwc_copy(precision(), num_, num_output_, out_spatial_dim_, copying, y);
  else
    gpu_channel_epilogue(num_, num_output_, out_spatial_dim_, copying, y);
}

void ConvolutionLayer::forward_cudnn(const Blob& bottom, Blob* top, const void* w16,
                                     const ChannelEpilogue* epilogue, const void* x16,
                                     Blob* visible) {
  const Precision math = precision();
  float* y = top->mutable_gpu_data();
  if (!IsHalfPrecision(math)) {
    cudnn_->Forward(bottom.gpu_data(), blobs_[0]->gpu_data(), y);
    finish_output(epilogue, visible, y);
    return;
  }
  // 16 bits: x -> x16 (unless given) -> y16 -> widened y (+ fp32 bias, or the epilogue).
  float* overflow = mixed_precision()->overflow.mutable_gpu_data();
  const bool nhwc = nhwc_16(math);
  if (!x16) {
    void* rounded = gpu_buffer_16(&x16_, bottom.count());
    if (nhwc)
      gpu_round_16_nhwc(math, num_, channels_, spatial_volume(bottom, num_, channels_),
                        bottom.gpu_data(), 1.f, rounded, overflow);
    else
      gpu_round_16(math, bottom.count(), bottom.gpu_data(), 1.f, rounded, overflow);
    x16 = rounded;
  }
  void* y16 = gpu_buffer_16(&y16_, top->count());
  cudnn_->Forward(x16, w16, y16);
  if (!nhwc) {
    gpu_widen_16(math, top->count(), y16, 1.f, false, y, overflow);
    finish_output(epilogue, visible, y);
    return;
  }
  const int64_t S = spatial_volume(*top, num_, num_output_);
  if (epilogue) {
    const ChannelEpilogue copying = with_copy(*epilogue, visible);
    gpu_widen_16_nchw_epilogue(math, num_, num_output_, S, y16, copying, y, overflow);
  } else {
    gpu_widen_16_nchw(math, num_, num_output_, S, y16, 1.f, false,
                      bias_term_ ? blobs_[1]->gpu_data() : nullptr, y, overflow);
  }
}

void ConvolutionLayer::forward_gemm_1x1(const Blob& bottom, Blob* top, const void* w16,
                                        const ChannelEpilogue* epilogue, const void* x16,
                                        Blob* visible) {
  const Precision math = precision();
  const int64_t S = out_spatial_dim_;
  const void* x = bottom.gpu_data();
  const void* w = blobs_[0]->gpu_data();
  if (IsHalfPrecision(math)) {
    if (!x16) {
      void* rounded = gpu_buffer_16(&x16_, bottom.count());
      gpu_round_16(math, bottom.count(), bottom.gpu_data(), 1.f, rounded,
                   mixed_precision()->overflow.mutable_gpu_data());
      x16 = rounded;
    }
    x = x16;
    w = w16;
  }
  float* y = top->mutable_gpu_data();
  gpu_gemm_batched(math, Trans::No, Trans::No, num_output_, S, channels_, 1.f, w, 0, x,
                   channels_ * S, 0.f, y, num_output_ * S, num_);
  finish_output(epilogue, visible, y);
}

bool ConvolutionLayer::fused_cudnn_possible(const ChannelEpilogue& epilogue) const {
  return !IsHalfPrecision(precision()) && !epilogue.residual &&
         (!epilogue.relu || epilogue.slope == 0.f);
}

void ConvolutionLayer::forward_fused_cudnn(const Blob& bottom, Blob* top,
                                           const ChannelEpilogue& epilogue) {
  const float* w = blobs_[0]->gpu_data();
  if (epilogue.scale) {  // W'[o] = scale[o] W[o]: conv(x, W') = scale * conv(x, W)
    if (folded_w_.count() != blobs_[0]->count()) folded_w_.ReshapeLike(*blobs_[0]);
    float* folded = folded_w_.mutable_gpu_data();
    gpu_scale_rows(num_output_, blobs_[0]->count() / num_output_, epilogue.scale, w, folded);
    w = folded;
  }
  const float* bias = epilogue.shift;
  if (!bias) {  // cuDNN's fused call always adds a bias
    if (zero_bias_.count() != num_output_) {
      zero_bias_.Reshape(std::vector<int>{num_output_});
      gpu_set(num_output_, 0.f, zero_bias_.mutable_gpu_data());
    }
    bias = zero_bias_.gpu_data();
  }
  cudnn_->ForwardBiasActivation(bottom.gpu_data(), w, bias, epilogue.relu, top->mutable_gpu_data());
}

// Whether cuDNN's fused call gives what the other route gives, to relative L1 1e-2 (loose
// enough for TF32 with different algorithms, tight enough for a missing bias or ReLU). The
// top is filled with NaN first, so a cuDNN that read it as z despite alpha2 = 0 would show.
bool ConvolutionLayer::fused_cudnn_agrees(const Blob& bottom, Blob* top, const void* w16,
                                          const ChannelEpilogue& epilogue) {
  const int n = top->count();
  Blob reference(top->shape());
  forward_pair(bottom, top, w16, &epilogue, nullptr);
  gpu_copy(n, top->gpu_data(), reference.mutable_gpu_data());
  float* y = top->mutable_gpu_data();
  gpu_set(n, std::numeric_limits<float>::quiet_NaN(), y);
  forward_fused_cudnn(bottom, top, epilogue);
  const float size = gpu_asum(n, reference.gpu_data());
  float* difference = reference.mutable_gpu_data();
  gpu_sub(n, y, difference, difference);
  const float distance = gpu_asum(n, difference);
  return distance <= 1e-2f * size;  // false for NaN
}

bool ConvolutionLayer::choose_fused_cudnn(const Blob& bottom, Blob* top, const void* w16,
                                          const ChannelEpilogue& epilogue) {
  const Route setting = route_setting("CREMA_CONV_FUSED_CUDNN", "fused convolutions");
  if (setting != Route::kTimed) return setting == Route::kAlways;
  const std::string key = "dev " + std::to_string(CudaCurrentDevice()) +
                          (epilogue.relu ? " relu " : " identity ") +
                          (use_gemm_ ? "gemm " : "cudnn ") + cudnn_->shape().ToString();
  {
    std::lock_guard<std::mutex> lock(route_mutex());
    auto it = fused_cache().find(key);
    if (it != fused_cache().end()) return it->second;
  }
  // Both on this bottom and top (each writes what the other would). cuDNN may refuse the
  // fused call for a geometry, or (checked once here) compute something else: then the
  // epilogue pass, and the log says why.
  bool fused = false;
  try {
    if (fused_cudnn_agrees(bottom, top, w16, epilogue)) {
      const float fused_ms = CudaTimeMs([&] { forward_fused_cudnn(bottom, top, epilogue); }, 3);
      const float apart_ms =
          CudaTimeMs([&] { forward_pair(bottom, top, w16, &epilogue, nullptr); }, 3);
      fused = fused_ms < apart_ms;
      VLOG(1) << "convolution " << key << ": cuDNN fused with bias and activation " << fused_ms
              << " ms, " << (use_gemm_ ? "GEMMs" : "cuDNN") << " + epilogue pass " << apart_ms
              << " ms: " << (fused ? "fused" : "apart");
    } else {
      LOG(WARNING) << "layer '" << name() << "': convolution " << cudnn_->shape().ToString()
                   << " applies its epilogue in a pass of its own: cuDNN's fused call differs "
                      "from it by more than 1% (relative L1)";
    }
  } catch (const Error& error) {
    LOG(WARNING) << "layer '" << name() << "': convolution " << cudnn_->shape().ToString()
                 << " applies its epilogue in a pass of its own, cuDNN's fused call failed: "
                 << error.what();
  }
  std::lock_guard<std::mutex> lock(route_mutex());
  fused_cache()[key] = fused;
  return fused;
}

bool ConvolutionLayer::choose_gemm_1x1(const cudnn::ConvShape& shape, const Blob& bottom, Blob* top,
                                       const void* w16) {
  const Route route = route_setting("CREMA_CONV_1X1_GEMM", "1x1 convolutions");
  if (route != Route::kTimed) return route == Route::kAlways;
  const std::string key = "dev " + std::to_string(CudaCurrentDevice()) + " " + shape.ToString();
  {
    std::lock_guard<std::mutex> lock(route_mutex());
    auto it = route_cache().find(key);
    if (it != route_cache().end()) return it->second;
  }
  // Both forwards on this layer's first bottom (each also writes the top it would write).
  // cuBLAS may not offer this precision's GEMM on every GPU: then cuDNN, and the log says why.
  bool gemm = false;
  try {
    const float gemm_ms = CudaTimeMs([&] { forward_gemm_1x1(bottom, top, w16); }, 3);
    const float cudnn_ms = CudaTimeMs([&] { forward_cudnn(bottom, top, w16); }, 3);
    gemm = gemm_ms < cudnn_ms;
    VLOG(1) << "1x1 convolution " << shape.ToString() << ": cuBLAS GEMMs " << gemm_ms
            << " ms, cuDNN " << cudnn_ms << " ms: " << (gemm ? "GEMMs" : "cuDNN");
  } catch (const Error& error) {
    LOG(WARNING) << "layer '" << name() << "': 1x1 convolution " << shape.ToString()
                 << " runs through cuDNN, the GEMM route failed: " << error.what();
  }
  std::lock_guard<std::mutex> lock(route_mutex());
  route_cache()[key] = gemm;
  return gemm;
}

void ConvolutionLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                    const BlobVec& bottom) {
  if (num_ == 0) return;
  CHECK(cudnn_) << "Backward_gpu before Forward_gpu";
  const Precision math = precision();
  const bool weight_grad = param_propagate_down(0);
  const bool bias_grad = bias_term_ && param_propagate_down(1);
  for (size_t i = 0; i < top.size(); ++i) {
    const float* top_diff = top[i]->gpu_diff();
    if (bias_grad) cudnn_->BackwardBias(top_diff, blobs_[1]->mutable_gpu_diff());
    if (use_gemm_) {
      backward_gemm_1x1(*top[i], weight_grad, propagate_down[i], bottom[i]);
      continue;
    }
    if (!IsHalfPrecision(math)) {
      if (weight_grad)
        cudnn_->BackwardFilter(bottom[i]->gpu_data(), top_diff, blobs_[0]->mutable_gpu_diff());
      if (propagate_down[i])
        cudnn_->BackwardData(blobs_[0]->gpu_data(), top_diff, bottom[i]->mutable_gpu_diff());
      continue;
    }
    // 16 bits: dy16 = round16(S dy); dW += dW16 / S; dx = dx16 / S. w16 still holds this
    // iteration's rounded W (Forward_gpu); x is rounded again for each bottom.
    // In NHWC (nhwc_16) every 16-bit array is channels last and the conversions transpose.
    if (!weight_grad && !propagate_down[i]) continue;
    const bool nhwc = nhwc_16(math);
    const float scale = mixed_precision()->gradient_scale();
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    const int group_channels = channels_ / group_;
    const int64_t in_volume = spatial_volume(*bottom[i], num_, channels_);
    void* dy16 = gpu_buffer_16(&y16_, top[i]->count());
    if (nhwc)
      gpu_round_16_nhwc(math, num_, num_output_, spatial_volume(*top[i], num_, num_output_),
                        top_diff, scale, dy16, overflow);
    else
      gpu_round_16(math, top[i]->count(), top_diff, scale, dy16, overflow);
    if (weight_grad) {
      void* x16 = gpu_buffer_16(&x16_, bottom[i]->count());
      void* dw16 = gpu_buffer_16(&dw16_, blobs_[0]->count());
      float* dw = blobs_[0]->mutable_gpu_diff();
      if (nhwc)
        gpu_round_16_nhwc(math, num_, channels_, in_volume, bottom[i]->gpu_data(), 1.f, x16,
                          overflow);
      else
        gpu_round_16(math, bottom[i]->count(), bottom[i]->gpu_data(), 1.f, x16, overflow);
      cudnn_->BackwardFilter(x16, dy16, dw16, /*accumulate=*/false);
      if (nhwc)
        gpu_widen_16_nchw(math, num_output_, group_channels,
                          spatial_volume(*blobs_[0], num_output_, group_channels), dw16,
                          1.f / scale, true, nullptr, dw, overflow);
      else
        gpu_widen_16(math, blobs_[0]->count(), dw16, 1.f / scale, true, dw, overflow);
    }
    if (propagate_down[i]) {
      void* dx16 = gpu_buffer_16(&dx16_, bottom[i]->count());
      float* dx = bottom[i]->mutable_gpu_diff();
      cudnn_->BackwardData(w16_.gpu_data(), dy16, dx16);
      if (nhwc)
        gpu_widen_16_nchw(math, num_, channels_, in_volume, dx16, 1.f / scale, false, nullptr, dx,
                          overflow);
      else
        gpu_widen_16(math, bottom[i]->count(), dx16, 1.f / scale, false, dx, overflow);
    }
  }
}

// The GEMM route's backward (see the top of the file), one bottom/top pair. 16 bits: dy is
// rounded times the loss scale S and x again, both NCHW; w16 holds this iteration's rounded
// W (Forward_gpu); the products come back in fp32, divided by S through alpha.
void ConvolutionLayer::backward_gemm_1x1(const Blob& top, bool weight_grad, bool data_grad,
                                         Blob* bottom) {
  if (!weight_grad && !data_grad) return;
  const Precision math = precision();
  const int64_t S = out_spatial_dim_;
  const int64_t x_image = channels_ * S, y_image = num_output_ * S;
  const void* dy = top.gpu_diff();
  const void* x = bottom->gpu_data();
  const void* w = blobs_[0]->gpu_data();
  float alpha = 1.f;
  // Image n of an fp32 or 16-bit [num][channels][S] array.
  auto image = [&](const void* p, int64_t n, int64_t image_size) {
    return IsHalfPrecision(math)
               ? offset_16(p, n * image_size)
               : static_cast<const void*>(static_cast<const float*>(p) + n * image_size);
  };
  if (IsHalfPrecision(math)) {
    const float scale = mixed_precision()->gradient_scale();
    float* overflow = mixed_precision()->overflow.mutable_gpu_data();
    void* dy16 = gpu_buffer_16(&y16_, top.count());
    gpu_round_16(math, top.count(), top.gpu_diff(), scale, dy16, overflow);
    dy = dy16;
    if (weight_grad) {
      void* x16 = gpu_buffer_16(&x16_, bottom->count());
      gpu_round_16(math, bottom->count(), bottom->gpu_data(), 1.f, x16, overflow);
      x = x16;
    }
    w = w16_.gpu_data();
    alpha = 1.f / scale;
  }
  if (weight_grad) {  // dW += alpha dy_n x_n^T, image by image
    float* dw = blobs_[0]->mutable_gpu_diff();
    for (int n = 0; n < num_; ++n)
      gpu_gemm_batched(math, Trans::No, Trans::Yes, num_output_, channels_, S, alpha,
                       image(dy, n, y_image), 0, image(x, n, x_image), 0, 1.f, dw, 0, 1);
  }
  if (data_grad)  // dx_n = alpha W^T dy_n
    gpu_gemm_batched(math, Trans::Yes, Trans::No, channels_, S, num_output_, alpha, w, 0, dy,
                     y_image, 0.f, bottom->mutable_gpu_diff(), x_image, num_);
}

}  // namespace crema
