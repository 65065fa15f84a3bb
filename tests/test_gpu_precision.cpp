// Mixed precision on the GPU against the fp32 CPU path (needs a device; skipped otherwise).
//   - Convolution and InnerProduct in TF32, FP16 and BF16: tops, bottom gradients and
//     parameter gradients within a relative (L2) error of the fp32 CPU results that fits
//     the format: TF32 3e-3, FP16 3e-3, BF16 2e-2 (10-, 10- and 7-bit mantissas; inputs
//     are rounded, products accumulate in fp32).
//   - FP16 gradients are unscaled: the loss scale (here 128) does not change them. The
//     scales are chosen so that scaled 16-bit gradients (dy ~ N(0, 1), and cuDNN's fp16
//     weight gradient) stay below fp16's 65504.
//   - A gradient too large for fp16 after scaling raises the overflow flag, and the solver
//     then skips the update and halves the scale.
#include <cmath>

#include "crema/io.hpp"
#include "crema/solver.hpp"
#include "tests/gpu_test_util.hpp"

namespace crema {
namespace {
using namespace gputest;

double relative_error(const Blob& cpu, const Blob& gpu, bool diff) {
  const float* a = diff ? cpu.cpu_diff() : cpu.cpu_data();
  const float* b = diff ? gpu.cpu_diff() : gpu.cpu_data();
  double num = 0, den = 0;
  for (int i = 0; i < cpu.count(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Runs `text` forward and backward in fp32 on the CPU and in `precision` on the GPU from
// the same inputs, parameters and top gradients, and compares with `tolerance`.
void ComparePrecision(const std::string& text, const std::vector<int>& shape, Precision precision,
                      double tolerance, float loss_scale = 128.f) {
  struct Run {
    std::shared_ptr<Layer> layer;
    Blob bottom_blob, top_blob;
  } runs[2];
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    r.layer = MakeLayer(text);
    if (k == 1) {
      auto mixed = std::make_shared<MixedPrecision>();
      mixed->precision = precision;
      mixed->scaler = LossScaler(loss_scale);
      r.layer->set_mixed_precision(mixed);
    }
    r.bottom_blob.Reshape(shape);
    FillBlob(&r.bottom_blob, Gaussian(), 5);
    r.layer->SetUp({&r.bottom_blob}, {&r.top_blob});
  }
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    runs[1].layer->blobs()[p]->CopyFrom(*runs[0].layer->blobs()[p]);
  for (int k = 0; k < 2; ++k) {
    Run& r = runs[k];
    Context::set_mode(k == 0 ? Mode::CPU : Mode::GPU);
    r.layer->Forward({&r.bottom_blob}, {&r.top_blob});
    Context::reseed(99, 0);
    cpu_rng_gaussian(r.top_blob.count(), 0.f, 1.f, r.top_blob.mutable_cpu_diff());
    for (auto& p : r.layer->blobs()) cpu_set(p->count(), 0.f, p->mutable_cpu_diff());
    r.layer->Backward({&r.top_blob}, {true}, {&r.bottom_blob});
  }
  Context::set_mode(Mode::CPU);
  const std::string what = std::string(runs[0].layer->type()) + " " + PrecisionName(precision);
  EXPECT_LT(relative_error(runs[0].top_blob, runs[1].top_blob, false), tolerance) << what << " top";
  EXPECT_LT(relative_error(runs[0].bottom_blob, runs[1].bottom_blob, true), tolerance)
      << what << " bottom diff";
  for (size_t p = 0; p < runs[0].layer->blobs().size(); ++p)
    EXPECT_LT(relative_error(*runs[0].layer->blobs()[p], *runs[1].layer->blobs()[p], true),
              tolerance)
        << what << " param diff " << p;
  EXPECT_EQ(runs[1].layer->mixed_precision()->overflow.cpu_data()[0], 0.f) << what;
}

const char* kConv =
    "name: 'c' type: 'Convolution' convolution_param { num_output: 16 kernel_size: 3 pad: 1 "
    "weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: 'gaussian' } }";
const char* kGroupedConv =
    "name: 'c' type: 'Convolution' convolution_param { num_output: 8 kernel_size: 3 stride: 2 "
    "group: 2 weight_filler { type: 'gaussian' std: 0.2 } bias_filler { type: 'gaussian' } }";
const char* kIp =
    "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 24 "
    "weight_filler { type: 'gaussian' std: 0.1 } bias_filler { type: 'gaussian' } }";
const char* kIpTranspose =
    "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 12 transpose: true "
    "weight_filler { type: 'gaussian' std: 0.1 } bias_term: false }";

TEST_F(GpuLayers, PrecisionTf32MatchesCpu) {
  REQUIRE_GPU();
  ComparePrecision(kConv, {4, 8, 12, 12}, Precision::TF32, 3e-3);
  ComparePrecision(kGroupedConv, {2, 4, 9, 9}, Precision::TF32, 3e-3);
  ComparePrecision(kIp, {16, 40}, Precision::TF32, 3e-3);
  ComparePrecision(kIpTranspose, {8, 3, 5}, Precision::TF32, 3e-3);
}

TEST_F(GpuLayers, PrecisionFp16MatchesCpu) {
  REQUIRE_GPU();
  ComparePrecision(kConv, {4, 8, 12, 12}, Precision::FP16, 3e-3);
  ComparePrecision(kGroupedConv, {2, 4, 9, 9}, Precision::FP16, 3e-3);
  ComparePrecision(kIp, {16, 40}, Precision::FP16, 3e-3);
  ComparePrecision(kIpTranspose, {8, 3, 5}, Precision::FP16, 3e-3);
  // The loss scale must not change the (unscaled) gradients.
  ComparePrecision(kIp, {16, 40}, Precision::FP16, 3e-3, /*loss_scale=*/1.f);
  ComparePrecision(kConv, {2, 8, 6, 6}, Precision::FP16, 3e-3, /*loss_scale=*/512.f);
}

TEST_F(GpuLayers, PrecisionBf16MatchesCpu) {
  REQUIRE_GPU();
  ComparePrecision(kConv, {4, 8, 12, 12}, Precision::BF16, 2e-2);
  ComparePrecision(kGroupedConv, {2, 4, 9, 9}, Precision::BF16, 2e-2);
  ComparePrecision(kIp, {16, 40}, Precision::BF16, 2e-2);
  ComparePrecision(kIpTranspose, {8, 3, 5}, Precision::BF16, 2e-2);
}

TEST_F(GpuLayers, PrecisionFp16OverflowRaisesTheFlag) {
  REQUIRE_GPU();
  std::shared_ptr<Layer> layer = MakeLayer(kIp);
  auto mixed = std::make_shared<MixedPrecision>();
  mixed->precision = Precision::FP16;
  mixed->scaler = LossScaler(65536.f);
  layer->set_mixed_precision(mixed);
  Blob x({4, 10}), y;
  FillBlob(&x, Gaussian(), 3);
  layer->SetUp({&x}, {&y});
  Context::set_mode(Mode::GPU);
  layer->Forward({&x}, {&y});
  EXPECT_EQ(mixed->overflow.cpu_data()[0], 0.f);
  cpu_set(y.count(), 10.f, y.mutable_cpu_diff());  // 10 * 65536 > 65504: inf in fp16
  layer->Backward({&y}, {true}, {&x});
  EXPECT_EQ(mixed->overflow.cpu_data()[0], 1.f);
}

// An FP16 net whose loss is weighted so heavily that the scaled gradient overflows at the
// initial scale: the first iterations are skipped (weights unchanged), the scale halves
// each time, and training then proceeds.
TEST_F(GpuSolver, Fp16OverflowSkipsUpdateAndHalvesScale) {
  REQUIRE_GPU();
  const std::string net = R"(
    name: "fp16"
    precision { math: FP16 initial_loss_scale: 65536 }
    layer { name: "x" type: "DummyData" top: "x" top: "y"
            dummy_data_param { shape { dim: 8 dim: 6 } shape { dim: 8 dim: 3 }
                               data_filler { type: "gaussian" } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
            inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "y" top: "loss"
            loss_weight: 100 }
  )";
  pb::SolverParameter param;
  ReadProtoFromTextString(
      "base_lr: 0.001 lr_policy: 'fixed' max_iter: 10 display: 0 "
      "snapshot_after_train: false random_seed: 3 solver_mode: GPU",
      &param, "solver");
  ReadProtoFromTextString(net, param.mutable_net_param(), "net");
  Context::set_mode(Mode::GPU);
  std::unique_ptr<Solver> solver(CreateSolver(param));
  const Blob& weight = *solver->net()->learnable_params()[0];
  const std::vector<float> before(weight.cpu_data(), weight.cpu_data() + weight.count());
  solver->Step(1);
  MixedPrecision& mixed = *solver->net()->mixed_precision();
  EXPECT_EQ(mixed.overflow.cpu_data()[0], 1.f);
  EXPECT_FLOAT_EQ(mixed.scaler.scale(), 32768.f);
  for (int i = 0; i < weight.count(); ++i) ASSERT_EQ(weight.cpu_data()[i], before[i]) << i;
  solver->Step(20);
  EXPECT_LT(mixed.scaler.scale(), 32768.f);
  bool changed = false;
  for (int i = 0; i < weight.count(); ++i) changed |= weight.cpu_data()[i] != before[i];
  EXPECT_TRUE(changed) << "no update was ever applied";
}

}  // namespace
}  // namespace crema
