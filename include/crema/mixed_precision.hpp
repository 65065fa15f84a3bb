// Mixed precision on the GPU (PrecisionParameter in proto/crema.proto): what a net asks
// for, and the dynamic loss scaling of FP16 nets. This header is host-only and present in
// every build; the device side (16-bit conversions, GEMMs with 16-bit inputs) is in
// src/mixed_precision.cuh.
//
// Only Convolution and InnerProduct change their math (Deconvolution follows TF32 only); blobs,
// every other layer, the master weights and the solver stay fp32. In FP16 the gradients *inside*
// those layers are computed times the loss scale S: the top gradient is multiplied by S as it is
// rounded to fp16, and the fp16 products are divided by S as they return to fp32. By
// linearity this is the same as scaling the loss by S, with the scaling applied only where
// fp16 could underflow. A non-finite value seen at a conversion raises the net's overflow
// flag; the solver then skips that iteration's update and halves S (dynamic scaling), and
// doubles S after `window` clean iterations — the usual rule (as in PyTorch's GradScaler).
#pragma once

#include <memory>
#include <string>

#include "crema/blob.hpp"

namespace crema {

enum class Precision { FP32, TF32, FP16, BF16 };

// "FP32", "TF32", "FP16", "BF16".
const char* PrecisionName(Precision precision);
// The 16-bit formats: inputs rounded to half or bfloat16.
inline bool IsHalfPrecision(Precision p) {
  return p == Precision::FP16 || p == Precision::BF16;
}

class LossScaler {
 public:
  // fixed_scale > 0: a constant scale. Otherwise dynamic, starting at initial_scale.
  LossScaler(float fixed_scale = 1.f, float initial_scale = 65536.f, int window = 2000);

  float scale() const { return scale_; }
  bool dynamic() const { return dynamic_; }
  int clean_iterations() const { return clean_; }
  // Called once per iteration after the backward pass with whether any scaled gradient
  // overflowed. Returns true when the update may be applied. A dynamic scaler halves on
  // overflow (never below 2^-24, the smallest fp16 subnormal) and doubles after `window`
  // clean iterations (never above 2^24).
  bool Update(bool overflow);
  // Resume: the scale saved in a .solverstate.
  void set_scale(float scale);

 private:
  float scale_;
  bool dynamic_;
  int window_;
  int clean_ = 0;
};

class ActivationCopies;  // include/crema/activation_copies.hpp

// What a net's layers share: the precision, the loss scaler (FP16), the overflow flag, a
// one-element blob that GPU conversions set to 1 when they meet a non-finite value, and the
// 16-bit copies of activations that FP16/BF16 convolutions hand on to each other.
struct MixedPrecision {
  MixedPrecision();
  Precision precision = Precision::FP32;
  LossScaler scaler;
  Blob overflow{std::vector<int>{1}};
  std::shared_ptr<ActivationCopies> copies;

  // The scale FP16 layers apply to gradients (1 for the other precisions).
  float gradient_scale() const { return precision == Precision::FP16 ? scaler.scale() : 1.f; }
};

// Built from a NetParameter's `precision` field (FP32 when absent). Throws crema::Error for
// a non-positive initial scale or window.
std::shared_ptr<MixedPrecision> MakeMixedPrecision(const pb::NetParameter& param);

}  // namespace crema
