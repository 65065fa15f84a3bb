// The cuDNN engine of Pooling, Softmax, ReLU, Sigmoid, TanH, ELU, Swish and LRN: each class
// derives from crema's own layer, keeps its parameters, shapes, checks and CPU code, and
// overrides only Forward_gpu / Backward_gpu to call an op of src/cudnn_adapter.hpp. The type
// strings stay those of the base layers. layers/engines.cpp decides which class a
// LayerParameter gets (and only picks these when cuDNN computes the layer exactly like the
// CPU code, up to fp32 rounding); the few cases only known from the shapes are decided here
// (see each class). CUDA builds only.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <memory>
#include <string>
#include <vector>

#include "layers/elu.hpp"
#include "layers/lrn.hpp"
#include "layers/pooling.hpp"
#include "layers/relu.hpp"
#include "layers/sigmoid.hpp"
#include "layers/softmax.hpp"
#include "layers/swish.hpp"
#include "layers/tanh.hpp"
#include "src/cudnn_adapter.hpp"

namespace crema {

// MAX or AVE pooling (the creator never gives it STOCHASTIC). cuDNN sizes the output with
// floor rounding and has no mask top, so Reshape decides: cuDNN when there is one top and
// crema's output size (CEIL by default) equals floor((H + 2 pad - k) / stride) + 1 in both
// axes — then no window reaches past the padded image, so AVE's divisor is kernel_h *
// kernel_w in both and MAX's windows are the same — else PoolingLayer's own kernels
// (logged as engines.cpp logs). MAX ties: crema sends the gradient to the first maximum;
// cuDNN's choice among equal maxima may differ (after a ReLU, tied zeros get no gradient
// through the ReLU anyway).
class CudnnPoolingLayer : public PoolingLayer {
 public:
  explicit CudnnPoolingLayer(const pb::LayerParameter& param);
  ~CudnnPoolingLayer() override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  // Whether the last Reshape chose cuDNN.
  bool UsesCudnn() const { return use_cudnn_; }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  bool use_cudnn_ = false;
  std::string logged_reason_;  // the fallback reason last logged (each is logged once)
  std::unique_ptr<cudnn::PoolingOp> op_;
};

// Softmax over the layer's axis, as [outer, channels, inner, 1] (in place too).
class CudnnSoftmaxLayer : public SoftmaxLayer {
 public:
  explicit CudnnSoftmaxLayer(const pb::LayerParameter& param);
  ~CudnnSoftmaxLayer() override;

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  std::unique_ptr<cudnn::SoftmaxOp> op_;
};

// The activations. cuDNN's backward reads x; in place (top == bottom) x is gone, so only
// ReLU (whose derivative depends on the sign alone, the same in y) runs on cuDNN in place;
// the others use their parent's kernels there.
#define CREMA_CUDNN_ACTIVATION_LAYER(Name)                                         \
  class Cudnn##Name##Layer : public Name##Layer {                                  \
   public:                                                                         \
    explicit Cudnn##Name##Layer(const pb::LayerParameter& param);                  \
    ~Cudnn##Name##Layer() override;                                                \
                                                                                   \
   protected:                                                                      \
    void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;          \
    void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down, \
                      const BlobVec& bottom) override;                             \
                                                                                   \
   private:                                                                        \
    std::unique_ptr<cudnn::ActivationOp> op_;                                      \
  };

CREMA_CUDNN_ACTIVATION_LAYER(ReLU)     // negative_slope 0 only (the creator checks)
CREMA_CUDNN_ACTIVATION_LAYER(Sigmoid)  //
CREMA_CUDNN_ACTIVATION_LAYER(TanH)     //
CREMA_CUDNN_ACTIVATION_LAYER(ELU)      // coef = alpha
CREMA_CUDNN_ACTIVATION_LAYER(Swish)    // coef = beta
#undef CREMA_CUDNN_ACTIVATION_LAYER

// ACROSS_CHANNELS LRN with cudnn::LRNSupported parameters (the creator checks). In place
// the parent's kernels run (cuDNN's backward needs x).
class CudnnLRNLayer : public LRNLayer {
 public:
  explicit CudnnLRNLayer(const pb::LayerParameter& param);
  ~CudnnLRNLayer() override;

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  std::unique_ptr<cudnn::LRNOp> op_;
};

}  // namespace crema

#endif  // CREMA_WITH_CUDA
