#include "crema/mixed_precision.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/activation_copies.hpp"

namespace crema {

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::FP32:
      return "FP32";
    case Precision::TF32:
      return "TF32";
    case Precision::FP16:
      return "FP16";
    case Precision::BF16:
      return "BF16";
  }
  return "?";
}

namespace {
constexpr float kMinScale = 1.f / 16777216.f;  // 2^-24
constexpr float kMaxScale = 16777216.f;        // 2^24
}  // namespace

LossScaler::LossScaler(float fixed_scale, float initial_scale, int window)
    : scale_(fixed_scale > 0 ? fixed_scale : initial_scale),
      dynamic_(!(fixed_scale > 0)),
      window_(window) {}

bool LossScaler::Update(bool overflow) {
  if (overflow) {
    clean_ = 0;
    if (dynamic_) scale_ = std::max(kMinScale, scale_ * 0.5f);
    return false;
  }
  if (dynamic_ && ++clean_ >= window_) {
    scale_ = std::min(kMaxScale, scale_ * 2.f);
    clean_ = 0;
  }
  return true;
}

void LossScaler::set_scale(float scale) {
  if (scale > 0) scale_ = scale;
  clean_ = 0;
}

MixedPrecision::MixedPrecision() : copies(std::make_shared<ActivationCopies>()) {}

std::shared_ptr<MixedPrecision> MakeMixedPrecision(const pb::NetParameter& param) {
  auto mixed = std::make_shared<MixedPrecision>();
  if (!param.has_precision()) return mixed;
  const pb::PrecisionParameter& p = param.precision();
  switch (p.math()) {
    case pb::PrecisionParameter::FP32:
      mixed->precision = Precision::FP32;
      break;
    case pb::PrecisionParameter::TF32:
      mixed->precision = Precision::TF32;
      break;
    case pb::PrecisionParameter::FP16:
      mixed->precision = Precision::FP16;
      break;
    case pb::PrecisionParameter::BF16:
      mixed->precision = Precision::BF16;
      break;
  }
  CREMA_REQUIRE(p.loss_scale() >= 0, "Net '" << param.name() << "': precision.loss_scale must be "
                                             << ">= 0 (0 = dynamic), got " << p.loss_scale());
  CREMA_REQUIRE(p.initial_loss_scale() > 0,
                "Net '" << param.name() << "': precision.initial_loss_scale must be positive, got "
                        << p.initial_loss_scale());
  CREMA_REQUIRE(p.loss_scale_window() > 0,
                "Net '" << param.name() << "': precision.loss_scale_window must be positive, got "
                        << p.loss_scale_window());
  mixed->scaler = LossScaler(p.loss_scale(), p.initial_loss_scale(), p.loss_scale_window());
  return mixed;
}

}  // namespace crema
