// EltwiseLayer (type "Eltwise"): elementwise combination of K >= 2 same-shaped blobs.
//   bottom[k]: x_k, all of one shape        top: y, that shape
//   eltwise_param.operation:
//     SUM (default): y = sum_k c_k x_k, c = eltwise_param.coeff (one per bottom, or none:
//                    all 1);                       dx_k = c_k dy
//     PROD: y = prod_k x_k (coeff not allowed);    dx_k = dy * prod_{j != k} x_j when
//           stable_prod_grad (default), else dy * y / x_k
//     MAX:  y = max_k x_k, remembering the winning k per element (the first bottom wins
//           only when strictly greater than the second; later bottoms when strictly greater
//           than the running max);               dx_k = dy where k won, else 0
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class EltwiseLayer : public Layer {
 public:
  enum class Op { PROD = 0, SUM = 1, MAX = 2 };

  explicit EltwiseLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Eltwise"; }
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;
  int MinBottomBlobs() const override { return 2; }
  int ExactNumTopBlobs() const override { return 1; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Op op_ = Op::SUM;
  std::vector<float> coeff_param_;
  std::vector<float> coeffs_;  // one per bottom
  bool stable_prod_grad_ = true;
  std::vector<int> max_index_;             // MAX: winning bottom per element (sized in Reshape)
  std::vector<const float*> bottom_ptrs_;  // bottom data pointers (sized in Reshape)

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward).
  bool GraphSafeForward() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob gpu_max_index_;  // MAX: winning bottom per element, as int (GPU mode)
#endif                  // CREMA_WITH_CUDA
};

}  // namespace crema
