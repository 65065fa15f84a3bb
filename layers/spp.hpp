// SPPLayer (type "SPP"): spatial pyramid pooling. Level l (0 <= l < pyramid_height) pools
// the image into a grid of about 2^l x 2^l bins and all levels are concatenated.
//   bottom: x [N, C, H, W]
//   Level l, with b = 2^l bins: kernel_h = ceil(H / b), pad_h = (kernel_h * b - H + 1) / 2,
//     stride_h = kernel_h (likewise w); pooled by a Pooling layer (MAX, AVE or STOCHASTIC as
//     spp_param.pool says, CEIL rounding, see pooling.hpp), giving [N, C, PH_l, PW_l].
//   top: pyramid_height 1: the single level as is, [N, C, PH_0, PW_0];
//        otherwise [N, sum_l C * PH_l * PW_l]: for each image, level 0's C*PH_0*PW_0 values
//        (channel-major), then level 1's, and so on.
//   backward: the levels' pooling gradients, summed into dx.
#pragma once

#include <memory>
#include <vector>

#include "crema/layer.hpp"
#include "layers/pooling.hpp"

namespace crema {

class SPPLayer : public Layer {
 public:
  explicit SPPLayer(const pb::LayerParameter& param);
  const char* type() const override { return "SPP"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  // (Re)creates the pooling layers for the bottom's current spatial size.
  void BuildLevels(const BlobVec& bottom);

  int pyramid_height_ = 0;
  int pool_ = 0;  // SPPParameter::PoolMethod
  std::vector<int> built_shape_;
  std::vector<std::unique_ptr<PoolingLayer>> levels_;
  std::vector<std::unique_ptr<Blob>> pooled_;  // level outputs (pyramid_height > 1)
  std::vector<int> level_size_;                // C * PH_l * PW_l
  Blob proxy_;                                 // bottom's data, a level's bottom diff

#ifdef CREMA_WITH_CUDA
 public:
  // The levels are Pooling layers, which have GPU code for every method.
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
