// AccuracyLayer (type "Accuracy"): top-k classification accuracy; no gradient.
//   bottom[0]: scores, shape (outer..., C, inner...) around axis a = accuracy_param.axis (1)
//   bottom[1]: labels, outer * inner values in [0, C) (or ignore_label)
//   top[0]:    scalar accuracy = correct / counted (0 when nothing is counted)
//   top[1] (optional): shape (C): per-class accuracy, correct_c / counted_c (0 if none)
//   A position (o, i) with label l is correct when fewer than k = top_k classes c have
//   score[o, c, i] >= score[o, l, i] other than l itself (ties count against: a class scoring
//   the same as l is ranked above it). Positions labelled ignore_label are not counted.
//   Backward throws when asked to propagate. force_backward never asks (AllowForceBackward
//   is false), so a net with force_backward may keep an Accuracy layer; Caffe would abort.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class AccuracyLayer : public Layer {
 public:
  explicit AccuracyLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Accuracy"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  int ExactNumBottomBlobs() const override { return 2; }
  int MinTopBlobs() const override { return 1; }
  int MaxTopBlobs() const override { return 2; }
  bool AllowForceBackward(int bottom_index) const override { return false; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int top_k_ = 1;
  int axis_param_ = 1;
  bool has_ignore_label_ = false;
  int ignore_label_ = 0;
  int outer_ = 0, channels_ = 0, inner_ = 0;
  std::vector<int> class_counts_;  // per class: labels counted (sized in Reshape)

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  Blob gpu_hits_;  // per position: hit, then counted, then the bad-label flag
#endif             // CREMA_WITH_CUDA
};

}  // namespace crema
