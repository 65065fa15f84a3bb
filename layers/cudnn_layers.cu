// The cuDNN engine's GPU code (classes and rules in layers/cudnn_layers.hpp; every cuDNN
// call is in src/cudnn_adapter.cu).
#include "layers/cudnn_layers.hpp"

#include <sstream>

#include "crema.pb.h"
#include "layers/engines.hpp"

namespace crema {

// ---------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------

CudnnPoolingLayer::CudnnPoolingLayer(const pb::LayerParameter& param) : PoolingLayer(param) {}
CudnnPoolingLayer::~CudnnPoolingLayer() = default;

void CudnnPoolingLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  PoolingLayer::Reshape(bottom, top);
  // cuDNN's output size (floor rounding; with it no window starts in the bottom/right
  // padding, since pad < kernel, so crema's "drop the last window" rule never applies).
  const int floor_h = (height_ + 2 * pad_h_ - kernel_h_) / stride_h_ + 1;
  const int floor_w = (width_ + 2 * pad_w_ - kernel_w_) / stride_w_ + 1;
  std::ostringstream why;
  if (method_ != Method::MAX && method_ != Method::AVE)
    why << "cuDNN has no STOCHASTIC pooling";
  else if (top.size() > 1)
    why << "cuDNN pooling gives no mask top";
  else if (pooled_height_ != floor_h || pooled_width_ != floor_w)
    why << "crema's output size " << pooled_height_ << " x " << pooled_width_ << " ("
        << (ceil_mode_ ? "CEIL" : "FLOOR") << " rounding) is not cuDNN's " << floor_h << " x "
        << floor_w << " (floor rounding)";
  use_cudnn_ = why.str().empty();
  if (!use_cudnn_ && why.str() != logged_reason_) {
    logged_reason_ = why.str();
    LogEngineFallback(layer_param(),
                      layer_param().pooling_param().engine() == pb::PoolingParameter::CUDNN,
                      logged_reason_);
  }
}

void CudnnPoolingLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (!use_cudnn_) {
    PoolingLayer::Forward_gpu(bottom, top);
    return;
  }
  if (top[0]->count() == 0) return;
  if (!op_) op_.reset(new cudnn::PoolingOp);
  cudnn::PoolShape s;
  s.max = method_ == Method::MAX;
  s.num = num_;
  s.channels = channels_;
  s.height = height_;
  s.width = width_;
  s.kernel_h = kernel_h_;
  s.kernel_w = kernel_w_;
  s.pad_h = pad_h_;
  s.pad_w = pad_w_;
  s.stride_h = stride_h_;
  s.stride_w = stride_w_;
  s.pooled_h = pooled_height_;
  s.pooled_w = pooled_width_;
  op_->Setup(s);
  op_->Forward(bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void CudnnPoolingLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (!use_cudnn_) {
    PoolingLayer::Backward_gpu(top, propagate_down, bottom);
    return;
  }
  if (!propagate_down[0] || top[0]->count() == 0) return;
  CHECK(op_) << "Backward_gpu before Forward_gpu";
  op_->Backward(top[0]->gpu_data(), top[0]->gpu_diff(), bottom[0]->gpu_data(),
                bottom[0]->mutable_gpu_diff());
}

// ---------------------------------------------------------------------------------------
// Softmax
// ---------------------------------------------------------------------------------------

CudnnSoftmaxLayer::CudnnSoftmaxLayer(const pb::LayerParameter& param) : SoftmaxLayer(param) {}
CudnnSoftmaxLayer::~CudnnSoftmaxLayer() = default;

void CudnnSoftmaxLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (top[0]->count() == 0) return;
  if (!op_) op_.reset(new cudnn::SoftmaxOp);
  op_->Setup(outer_, channels_, inner_);
  op_->Forward(bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void CudnnSoftmaxLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                     const BlobVec& bottom) {
  if (!propagate_down[0] || top[0]->count() == 0) return;
  CHECK(op_) << "Backward_gpu before Forward_gpu";
  op_->Backward(top[0]->gpu_data(), top[0]->gpu_diff(), bottom[0]->mutable_gpu_diff());
}

// ---------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------

namespace {

// y = f(x) through cuDNN.
void activation_forward(std::unique_ptr<cudnn::ActivationOp>* op, cudnn::Activation mode,
                        double coef, const BlobVec& bottom, const BlobVec& top) {
  if (!*op) op->reset(new cudnn::ActivationOp);
  (*op)->Setup(mode, coef, bottom[0]->count());
  (*op)->Forward(bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

// dx = f'(x) dy through cuDNN (x is the bottom's data: in place, the top's).
void activation_backward(cudnn::ActivationOp* op, const BlobVec& top,
                         const std::vector<bool>& propagate_down, const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  CHECK(op) << "Backward_gpu before Forward_gpu";
  op->Backward(top[0]->gpu_data(), top[0]->gpu_diff(), bottom[0]->gpu_data(),
               bottom[0]->mutable_gpu_diff());
}

}  // namespace

// Name: the layer; MODE: the cudnn::Activation; COEF: its coefficient; IN_PLACE: whether
// cuDNN may run with top == bottom.
#define CREMA_CUDNN_ACTIVATION_DEFS(Name, MODE, COEF, IN_PLACE)                                   \
  Cudnn##Name##Layer::Cudnn##Name##Layer(const pb::LayerParameter& param) : Name##Layer(param) {} \
  Cudnn##Name##Layer::~Cudnn##Name##Layer() = default;                                            \
  void Cudnn##Name##Layer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {               \
    if (!(IN_PLACE) && top[0] == bottom[0]) {                                                     \
      Name##Layer::Forward_gpu(bottom, top);                                                      \
      return;                                                                                     \
    }                                                                                             \
    activation_forward(&op_, cudnn::Activation::MODE, COEF, bottom, top);                         \
  }                                                                                               \
  void Cudnn##Name##Layer::Backward_gpu(                                                          \
      const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom) {       \
    if (!(IN_PLACE) && top[0] == bottom[0]) {                                                     \
      Name##Layer::Backward_gpu(top, propagate_down, bottom);                                     \
      return;                                                                                     \
    }                                                                                             \
    activation_backward(op_.get(), top, propagate_down, bottom);                                  \
  }

CREMA_CUDNN_ACTIVATION_DEFS(ReLU, RELU, 0.0, true)
CREMA_CUDNN_ACTIVATION_DEFS(Sigmoid, SIGMOID, 0.0, false)
CREMA_CUDNN_ACTIVATION_DEFS(TanH, TANH, 0.0, false)
CREMA_CUDNN_ACTIVATION_DEFS(ELU, ELU, alpha_, false)
CREMA_CUDNN_ACTIVATION_DEFS(Swish, SWISH, beta_, false)
#undef CREMA_CUDNN_ACTIVATION_DEFS

// ---------------------------------------------------------------------------------------
// LRN
// ---------------------------------------------------------------------------------------

CudnnLRNLayer::CudnnLRNLayer(const pb::LayerParameter& param) : LRNLayer(param) {}
CudnnLRNLayer::~CudnnLRNLayer() = default;

void CudnnLRNLayer::Forward_gpu(const BlobVec& bottom, const BlobVec& top) {
  if (top[0] == bottom[0]) {
    LRNLayer::Forward_gpu(bottom, top);
    return;
  }
  if (top[0]->count() == 0) return;
  if (!op_) op_.reset(new cudnn::LRNOp);
  op_->Setup(size_, alpha_, beta_, k_, num_, channels_, height_, width_);
  op_->Forward(bottom[0]->gpu_data(), top[0]->mutable_gpu_data());
}

void CudnnLRNLayer::Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                                 const BlobVec& bottom) {
  if (top[0] == bottom[0]) {
    LRNLayer::Backward_gpu(top, propagate_down, bottom);
    return;
  }
  if (!propagate_down[0] || top[0]->count() == 0) return;
  CHECK(op_) << "Backward_gpu before Forward_gpu";
  op_->Backward(top[0]->gpu_data(), top[0]->gpu_diff(), bottom[0]->gpu_data(),
                bottom[0]->mutable_gpu_diff());
}

}  // namespace crema
