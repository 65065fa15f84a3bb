// GPU-mode policy and mixed-precision bookkeeping that need no device:
//   - a net built in GPU mode with a layer that has no GPU code is an error naming the
//     layer, unless CPU fallback is allowed; then that layer runs its CPU code;
//   - the `precision` field of a net (crema-only) is parsed and checked;
//   - LossScaler's dynamic rule (halve on overflow and skip, double after a clean window).
#include <gtest/gtest.h>

#include <string>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/layer_registry.hpp"
#include "crema/mixed_precision.hpp"
#include "crema/net.hpp"

namespace crema {
namespace {

// y = 2 x, with CPU code only (a stand-in for any layer that lacks GPU code).
class CpuOnlyDoubleLayer : public Layer {
 public:
  explicit CpuOnlyDoubleLayer(const pb::LayerParameter& param) : Layer(param) {}
  const char* type() const override { return "CpuOnlyDouble"; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {
    top[0]->ReshapeLike(*bottom[0]);
  }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override {
    for (int i = 0; i < bottom[0]->count(); ++i)
      top[0]->mutable_cpu_data()[i] = 2.f * bottom[0]->cpu_data()[i];
  }
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}
};
REGISTER_LAYER_CLASS(CpuOnlyDouble);

const char* kCpuOnlyNet = R"(
  name: "fallback"
  layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
  layer { name: "twice" type: "CpuOnlyDouble" bottom: "x" top: "y" }
)";

pb::NetParameter parse(const std::string& text) {
  pb::NetParameter param;
  ReadProtoFromTextString(text, &param, "test net");
  param.mutable_state()->set_phase(pb::TEST);
  return param;
}

class GpuPolicy : public ::testing::Test {
 protected:
  void TearDown() override {
    Context::set_mode(Mode::CPU);
    Context::set_allow_cpu_fallback(false);
  }
};

TEST_F(GpuPolicy, LayerWithoutGpuCodeIsAnErrorInGpuMode) {
  Context::set_mode(Mode::GPU);
  try {
    Net net(parse(kCpuOnlyNet));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'twice' (CpuOnlyDouble)"), std::string::npos) << message;
    EXPECT_NE(message.find("--allow_cpu_fallback"), std::string::npos) << message;
    EXPECT_NE(message.find("Net 'fallback'"), std::string::npos) << message;
  }
}

TEST_F(GpuPolicy, CpuModeNeedsNoGpuCode) {
  Net net(parse(kCpuOnlyNet));
  EXPECT_EQ(net.num_layers(), 2);
}

TEST_F(GpuPolicy, AllowedFallbackRunsTheCpuCode) {
  Context::set_mode(Mode::GPU);
  Context::set_allow_cpu_fallback(true);
  Net net(parse(kCpuOnlyNet));
  Layer& twice = *net.layers()[1];
  EXPECT_FALSE(twice.HasGpuImplementation());
  EXPECT_TRUE(twice.RunsOnCpu());
  Blob* x = net.input_blobs()[0];
  for (int i = 0; i < x->count(); ++i) x->mutable_cpu_data()[i] = static_cast<float>(i);
  // Only the Input layer (no work) and the fallback layer run: no device memory is
  // touched, so this runs on a machine without a GPU too.
  twice.Forward(net.bottom_vecs()[1], net.top_vecs()[1]);
  const Blob& y = *net.top_vecs()[1][0];
  for (int i = 0; i < y.count(); ++i) EXPECT_FLOAT_EQ(y.cpu_data()[i], 2.f * i);
}

TEST_F(GpuPolicy, NetPrecisionIsParsed) {
  Net fp32(parse(kCpuOnlyNet));
  EXPECT_EQ(fp32.mixed_precision()->precision, Precision::FP32);
  EXPECT_EQ(fp32.layers()[1]->precision(), Precision::FP32);
  EXPECT_FLOAT_EQ(fp32.mixed_precision()->gradient_scale(), 1.f);

  Net fp16(parse(std::string(kCpuOnlyNet) +
                 "precision { math: FP16 initial_loss_scale: 1024 loss_scale_window: 5 }"));
  EXPECT_EQ(fp16.mixed_precision()->precision, Precision::FP16);
  EXPECT_EQ(fp16.layers()[1]->precision(), Precision::FP16);
  EXPECT_TRUE(fp16.mixed_precision()->scaler.dynamic());
  EXPECT_FLOAT_EQ(fp16.mixed_precision()->gradient_scale(), 1024.f);

  Net bf16(parse(std::string(kCpuOnlyNet) + "precision { math: BF16 }"));
  EXPECT_EQ(bf16.layers()[0]->precision(), Precision::BF16);
  EXPECT_FLOAT_EQ(bf16.mixed_precision()->gradient_scale(), 1.f);  // bf16 needs no scaling

  Net tf32(parse(std::string(kCpuOnlyNet) + "precision { math: TF32 }"));
  EXPECT_EQ(tf32.mixed_precision()->precision, Precision::TF32);
  EXPECT_STREQ(PrecisionName(Precision::TF32), "TF32");
}

TEST_F(GpuPolicy, BadPrecisionSettingsAreErrors) {
  for (const char* bad : {"precision { math: FP16 initial_loss_scale: 0 }",
                          "precision { math: FP16 loss_scale_window: 0 }",
                          "precision { math: FP16 loss_scale: -1 }"}) {
    try {
      Net net(parse(std::string(kCpuOnlyNet) + bad));
      ADD_FAILURE() << "expected an error for " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("precision."), std::string::npos) << e.what();
    }
  }
}

TEST_F(GpuPolicy, PrecisionSurvivesTextRoundTripAndCaffeFieldsStayUntouched) {
  pb::NetParameter param = parse(std::string(kCpuOnlyNet) + "precision { math: BF16 }");
  std::string wire;
  ASSERT_TRUE(param.SerializeToString(&wire));
  pb::NetParameter back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.precision().math(), pb::PrecisionParameter::BF16);
  // The crema-only field sits at number 1001, outside Caffe's numbers (NetParameter's
  // highest is 100, `layer`).
  const auto* field = pb::NetParameter::descriptor()->FindFieldByName("precision");
  ASSERT_NE(field, nullptr);
  EXPECT_EQ(field->number(), 1001);
}

TEST(LossScaler, DynamicHalvesOnOverflowAndDoublesAfterWindow) {
  LossScaler scaler(/*fixed_scale=*/0.f, /*initial_scale=*/1024.f, /*window=*/3);
  EXPECT_TRUE(scaler.dynamic());
  EXPECT_FALSE(scaler.Update(true));  // overflow: skip, halve
  EXPECT_FLOAT_EQ(scaler.scale(), 512.f);
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_FLOAT_EQ(scaler.scale(), 512.f);
  EXPECT_TRUE(scaler.Update(false));  // third clean iteration: double
  EXPECT_FLOAT_EQ(scaler.scale(), 1024.f);
  EXPECT_EQ(scaler.clean_iterations(), 0);
  // An overflow resets the clean count.
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_FALSE(scaler.Update(true));
  EXPECT_FLOAT_EQ(scaler.scale(), 512.f);
  EXPECT_EQ(scaler.clean_iterations(), 0);
}

TEST(LossScaler, StaysWithinBounds) {
  LossScaler scaler(0.f, 1.f, 1);
  for (int i = 0; i < 100; ++i) scaler.Update(true);
  EXPECT_FLOAT_EQ(scaler.scale(), 1.f / 16777216.f);
  for (int i = 0; i < 100; ++i) scaler.Update(false);
  EXPECT_FLOAT_EQ(scaler.scale(), 16777216.f);
}

TEST(LossScaler, FixedScaleNeverChangesButStillSkipsOverflow) {
  LossScaler scaler(/*fixed_scale=*/128.f, 65536.f, 2);
  EXPECT_FALSE(scaler.dynamic());
  EXPECT_FALSE(scaler.Update(true));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(scaler.Update(false));
  EXPECT_FLOAT_EQ(scaler.scale(), 128.f);
  scaler.set_scale(64.f);  // a resumed run
  EXPECT_FLOAT_EQ(scaler.scale(), 64.f);
}

}  // namespace
}  // namespace crema
