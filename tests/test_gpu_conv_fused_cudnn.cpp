// cudnn::ConvolutionOp::ForwardBiasActivation (one cudnnConvolutionBiasActivationForward call)
// against the separate calls it fuses: Forward, AddBias and, for ReLU, an ActivationOp, on
// the same device data (needs a device and cuDNN; skipped otherwise).
//   - FP32 NCHW, num 2, C 3, O 4, 5 x 5 input, 3 x 3 kernel, pad 1: ReLU and the identity
//     (bias and data of both signs, so ReLU clamps some outputs), within fp32 rounding of
//     the other algorithm (relative 1e-5 of the largest output).
//   - The same op set up again for a TF32 shape (stride 2, two groups): the fused workspace
//     is sized again; tolerance 5e-3 (TF32 multiplies in both, other algorithms).
//   - A 16-bit shape is refused with crema::Error.
// y is filled with NaN before the fused call: it passes y as cuDNN's z with alpha2 = 0, and
// y must not be read.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "src/cudnn_adapter.hpp"
#endif

namespace crema {
namespace {
using namespace gputest;

class GpuConvFused : public GpuTest {};

#ifdef CREMA_WITH_CUDA

// A 2-D convolution shape in NCHW; output size from crema's formula.
cudnn::ConvShape Shape2d(int num, int channels, int num_output, int groups, int size, int kernel,
                         int pad, int stride, Precision precision) {
  cudnn::ConvShape s;
  s.num = num;
  s.channels = channels;
  s.num_output = num_output;
  s.groups = groups;
  const int out = (size + 2 * pad - kernel) / stride + 1;
  s.input = {size, size};
  s.output = {out, out};
  s.kernel = {kernel, kernel};
  s.pad = {pad, pad};
  s.stride = {stride, stride};
  s.dilation = {1, 1};
  s.precision = precision;
  return s;
}

// Device data of one shape: x, w, bias (Gaussian), and the fused and reference outputs.
struct ConvData {
  Blob x, w, bias, fused, reference, relu_reference;
  explicit ConvData(const cudnn::ConvShape& s)
      : x(s.num, s.channels, s.input[0], s.input[1]),
        w(s.num_output, s.channels / s.groups, s.kernel[0], s.kernel[1]),
        bias(std::vector<int>{s.num_output}),
        fused(s.num, s.num_output, s.output[0], s.output[1]),
        reference(s.num, s.num_output, s.output[0], s.output[1]),
        relu_reference(s.num, s.num_output, s.output[0], s.output[1]) {
    testing::FillGaussian(&x, 1.f, 41);
    testing::FillGaussian(&w, 0.5f, 42);
    testing::FillGaussian(&bias, 1.f, 43);
  }
};

// max |fused - reference| <= tolerance * max |reference|, with no NaN, and (for ReLU) no
// negative output.
void ExpectMatches(const Blob& fused, const Blob& reference, double tolerance, bool relu,
                   const std::string& what) {
  const float* f = fused.cpu_data();
  const float* r = reference.cpu_data();
  double peak = 0, diff = 0;
  int nan = 0, negative = 0;
  for (int i = 0; i < reference.count(); ++i) {
    peak = std::max(peak, std::fabs(double(r[i])));
    diff = std::max(diff, std::fabs(double(f[i]) - r[i]));
    nan += std::isnan(f[i]);
    negative += relu && f[i] < 0.f;
  }
  EXPECT_EQ(nan, 0) << what << ": NaN in the fused output";
  EXPECT_EQ(negative, 0) << what << ": negative ReLU output";
  EXPECT_LE(diff, tolerance * peak)
      << what << ": max |fused - reference| " << diff << ", max |reference| " << peak;
}

// Runs the fused call and Forward + AddBias (+ ActivationOp ReLU) on `op`, set up for `s`,
// and compares them.
void CheckFused(cudnn::ConvolutionOp* op, const cudnn::ConvShape& s, bool relu, double tolerance) {
  const std::string what = s.ToString() + (relu ? " relu" : " identity");
  SCOPED_TRACE(what);
  op->Setup(s);
  ConvData d(s);
  op->Forward(d.x.gpu_data(), d.w.gpu_data(), d.reference.mutable_gpu_data());
  op->AddBias(d.bias.gpu_data(), d.reference.mutable_gpu_data());
  Blob* want = &d.reference;
  if (relu) {
    cudnn::ActivationOp act;
    act.Setup(cudnn::Activation::RELU, 0.0, d.reference.count());
    act.Forward(d.reference.gpu_data(), d.relu_reference.mutable_gpu_data());
    want = &d.relu_reference;
  }
  std::fill_n(d.fused.mutable_cpu_data(), d.fused.count(), std::numeric_limits<float>::quiet_NaN());
  op->ForwardBiasActivation(d.x.gpu_data(), d.w.gpu_data(), d.bias.gpu_data(), relu,
                            d.fused.mutable_gpu_data());
  ExpectMatches(d.fused, *want, tolerance, relu, what);
  // The data reach both signs: ReLU has something to clamp.
  const float* r = d.reference.cpu_data();
  EXPECT_TRUE(std::any_of(r, r + d.reference.count(), [](float v) { return v < 0.f; }));
  EXPECT_TRUE(std::any_of(r, r + d.reference.count(), [](float v) { return v > 0.f; }));
}

TEST_F(GpuConvFused, CudnnReluMatchesForwardAddBiasRelu) {
  REQUIRE_CUDNN();
  cudnn::ConvolutionOp op;
  CheckFused(&op, Shape2d(2, 3, 4, 1, 5, 3, 1, 1, Precision::FP32), true, 1e-5);
}

TEST_F(GpuConvFused, CudnnIdentityMatchesForwardAddBias) {
  REQUIRE_CUDNN();
  cudnn::ConvolutionOp op;
  CheckFused(&op, Shape2d(2, 3, 4, 1, 5, 3, 1, 1, Precision::FP32), false, 1e-5);
}

// One op through FP32, then TF32 with another geometry (Setup reconfigures: the fused
// workspace is sized again), then FP32 once more.
TEST_F(GpuConvFused, CudnnTf32AndSetupAgain) {
  REQUIRE_CUDNN();
  cudnn::ConvolutionOp op;
  const cudnn::ConvShape fp32 = Shape2d(2, 3, 4, 1, 5, 3, 1, 1, Precision::FP32);
  const cudnn::ConvShape tf32 = Shape2d(2, 4, 6, 2, 9, 3, 1, 2, Precision::TF32);
  CheckFused(&op, fp32, true, 1e-5);
  for (bool relu : {true, false}) CheckFused(&op, tf32, relu, 5e-3);
  CheckFused(&op, fp32, false, 1e-5);
}

TEST_F(GpuConvFused, CudnnRefuses16Bit) {
  REQUIRE_CUDNN();
  cudnn::ConvolutionOp op;
  const cudnn::ConvShape s = Shape2d(2, 3, 4, 1, 5, 3, 1, 1, Precision::FP16);
  op.Setup(s);
  ConvData d(Shape2d(2, 3, 4, 1, 5, 3, 1, 1, Precision::FP32));
  EXPECT_THROW(op.ForwardBiasActivation(d.x.gpu_data(), d.w.gpu_data(), d.bias.gpu_data(), true,
                                        d.fused.mutable_gpu_data()),
               Error);
}

#else

TEST_F(GpuConvFused, CudnnReluMatchesForwardAddBiasRelu) {
  GTEST_SKIP() << "CPU-only build: no cuDNN";
}

#endif  // CREMA_WITH_CUDA

}  // namespace
}  // namespace crema
