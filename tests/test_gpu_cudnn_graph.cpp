// cudnn::ConvolutionOp on cuDNN's graph API (the default with cuDNN >= 9) against the same op
// on the legacy API (CREMA_CUDNN_API=legacy), on the same device data (needs a device and
// cuDNN; skipped otherwise).
//   - Forward, BackwardData, BackwardFilter overwriting and accumulating (into a nonzero
//     gradient: the plan built with beta 1) for 2-D shapes with groups, stride, padding and
//     dilation, a 1-D and a 3-D shape, an fp32 NHWC shape, and TF32. FP32 within relative
//     1e-5 of the largest value (other algorithms, same fp32 math), TF32 within 5e-3.
//   - The op's Description names the graph API's engines for every slot it ran (for the
//     1-D and 3-D shapes a slot may instead say it fell back to the legacy API), and in FP32
//     none whose numerical notes break FP32's promises (tensor cores, FFT, Winograd,
//     non-deterministic); the legacy op names the legacy API.
//   - CREMA_CUDNN_API takes "graph" or "legacy" and nothing else (crema::Error).
//   - Where the graph API cannot build a geometry the op falls back to the legacy API, with
//     the same results (on the emulator, whose graph finalize can be made to refuse).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/gpu_test_util.hpp"

#ifdef CREMA_WITH_CUDA
#include "src/cudnn_adapter.hpp"
#endif

namespace crema {
namespace {
using namespace gputest;

class GpuCudnnGraph : public GpuTest {};

#ifdef CREMA_WITH_CUDA

// Sets an environment variable for one scope, restoring the earlier value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_.c_str(), old_.c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

bool GraphApiBuilt() {
  return std::atoi(cudnn::VersionString().c_str()) >= 9;
}

// A convolution with `spatial` spatial axes, the same size, kernel, ... on each.
cudnn::ConvShape Shape(int spatial, int num, int channels, int num_output, int groups, int size,
                       int kernel, int pad, int stride, int dilation, Precision precision,
                       cudnn::ConvLayout layout = cudnn::ConvLayout::NCHW) {
  cudnn::ConvShape s;
  s.num = num;
  s.channels = channels;
  s.num_output = num_output;
  s.groups = groups;
  const int out = (size + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
  s.input.assign(spatial, size);
  s.output.assign(spatial, out);
  s.kernel.assign(spatial, kernel);
  s.pad.assign(spatial, pad);
  s.stride.assign(spatial, stride);
  s.dilation.assign(spatial, dilation);
  s.precision = precision;
  s.layout = layout;
  return s;
}

std::vector<int> Dims(int a, int b, const std::vector<int>& spatial) {
  std::vector<int> dims = {a, b};
  dims.insert(dims.end(), spatial.begin(), spatial.end());
  return dims;
}

// Everything one op computes for a shape: y, dx, dw overwritten, dw accumulated.
struct Results {
  std::vector<float> y, dx, dw, dw_accumulated;
  std::string description;
};

// Runs the four calls on `op` from fixed data (the same for every op).
Results RunAll(cudnn::ConvolutionOp* op, const cudnn::ConvShape& s) {
  op->Setup(s);
  Blob x(Dims(s.num, s.channels, s.input)), w(Dims(s.num_output, s.channels / s.groups, s.kernel)),
      y(Dims(s.num, s.num_output, s.output)), dy(Dims(s.num, s.num_output, s.output)),
      dx(Dims(s.num, s.channels, s.input)), dw(Dims(s.num_output, s.channels / s.groups, s.kernel));
  testing::FillGaussian(&x, 1.f, 51);
  testing::FillGaussian(&w, 0.5f, 52);
  testing::FillGaussian(&dy, 1.f, 53);
  testing::FillGaussian(&dx, 1.f, 54);  // overwritten: must not matter
  Results r;
  op->Forward(x.gpu_data(), w.gpu_data(), y.mutable_gpu_data());
  op->BackwardData(w.gpu_data(), dy.gpu_data(), dx.mutable_gpu_data());
  testing::FillGaussian(&dw, 1.f, 55);
  op->BackwardFilter(x.gpu_data(), dy.gpu_data(), dw.mutable_gpu_data(), /*accumulate=*/false);
  r.y = Data(y);
  r.dx = Data(dx);
  r.dw = Data(dw);
  testing::FillGaussian(&dw, 1.f, 55);
  op->BackwardFilter(x.gpu_data(), dy.gpu_data(), dw.mutable_gpu_data(), /*accumulate=*/true);
  r.dw_accumulated = Data(dw);
  r.description = op->Description();
  return r;
}

// max |a - b| <= tolerance * max |b|, no NaN.
void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, double tolerance,
                const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double peak = 0, diff = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    peak = std::max(peak, std::fabs(double(b[i])));
    diff = std::isnan(a[i]) ? INFINITY : std::max(diff, std::fabs(double(a[i]) - b[i]));
  }
  EXPECT_GT(peak, 0.0) << what;
  EXPECT_LE(diff, tolerance * peak)
      << what << ": max difference " << diff << ", max value " << peak;
}

void ExpectSameResults(const Results& graph, const Results& legacy, double tolerance) {
  ExpectNear(graph.y, legacy.y, tolerance, "forward y");
  ExpectNear(graph.dx, legacy.dx, tolerance, "backward-data dx");
  ExpectNear(graph.dw, legacy.dw, tolerance, "backward-filter dw (overwritten)");
  ExpectNear(graph.dw_accumulated, legacy.dw_accumulated, tolerance,
             "backward-filter dw (accumulated)");
  // Accumulating added to the prior gradient: it differs from overwriting.
  EXPECT_NE(graph.dw_accumulated, graph.dw);
}

// FP32's promises, read from the engines' numerical notes in the Description.
void ExpectFp32Engines(const std::string& description) {
  for (const char* note :
       {"tensor-core", "fft", "winograd", "nondeterministic", "down-convert", "reduced-precision"})
    EXPECT_EQ(description.find(note), std::string::npos) << note << " in " << description;
}

// require_graph: every slot must run on the graph API (2-D shapes); otherwise a slot may
// fall back to the legacy API, which the Description must then say.
void CompareApis(const cudnn::ConvShape& s, double tolerance, bool require_graph = true) {
  SCOPED_TRACE(s.ToString());
  cudnn::ConvolutionOp graph_op, legacy_op;
  const Results graph = RunAll(&graph_op, s);
  Results legacy;
  {
    ScopedEnv api("CREMA_CUDNN_API", "legacy");
    legacy = RunAll(&legacy_op, s);
  }
  ExpectSameResults(graph, legacy, tolerance);
  EXPECT_NE(legacy.description.find("legacy API"), std::string::npos) << legacy.description;
  if (GraphApiBuilt()) {
    const bool some_legacy = graph.description.find("legacy API") != std::string::npos;
    int engines = 0;
    for (const char* slot :
         {"fwd engine", "bwd-data engine", "bwd-filter engine", "bwd-filter accumulate engine"})
      engines += graph.description.find(slot) != std::string::npos;
    if (require_graph) {
      EXPECT_EQ(engines, 4) << graph.description;
      EXPECT_FALSE(some_legacy) << graph.description;
    } else {
      EXPECT_TRUE(engines == 4 || some_legacy) << graph.description;
    }
    if (s.precision == Precision::FP32) ExpectFp32Engines(graph.description);
  }
}

TEST_F(GpuCudnnGraph, MatchesLegacyApiFp32) {
  REQUIRE_CUDNN();
  CompareApis(Shape(2, 2, 4, 6, 2, 9, 3, 1, 2, 1, Precision::FP32), 1e-5);
  CompareApis(Shape(2, 3, 5, 4, 1, 8, 3, 2, 1, 2, Precision::FP32), 1e-5);
  CompareApis(Shape(2, 2, 6, 8, 1, 5, 1, 0, 1, 1, Precision::FP32), 1e-5);  // 1x1
  // 1-D (run as 1 x W) and 3-D: cuDNN may have no deterministic fp32 engine for some
  // direction; the legacy API then runs it.
  CompareApis(Shape(1, 2, 3, 4, 1, 11, 3, 1, 1, 1, Precision::FP32), 1e-5, false);
  CompareApis(Shape(3, 1, 2, 3, 1, 5, 3, 1, 1, 1, Precision::FP32), 1e-5, false);
  CompareApis(Shape(2, 2, 4, 6, 2, 7, 3, 1, 1, 1, Precision::FP32, cudnn::ConvLayout::NHWC), 1e-5);
}

TEST_F(GpuCudnnGraph, MatchesLegacyApiTf32) {
  REQUIRE_CUDNN();
  CompareApis(Shape(2, 2, 8, 16, 1, 9, 3, 1, 1, 1, Precision::TF32), 5e-3);
}

// Ops of one geometry share the search's choice: a second op runs the same engines.
TEST_F(GpuCudnnGraph, SecondOpReusesTheChoice) {
  REQUIRE_CUDNN();
  const cudnn::ConvShape s = Shape(2, 2, 4, 6, 1, 6, 3, 1, 1, 1, Precision::FP32);
  cudnn::ConvolutionOp first, second;
  const Results a = RunAll(&first, s), b = RunAll(&second, s);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.dw_accumulated, b.dw_accumulated);
}

TEST_F(GpuCudnnGraph, ApiVariableTakesGraphOrLegacy) {
  REQUIRE_CUDNN();
  const cudnn::ConvShape s = Shape(2, 1, 2, 2, 1, 4, 3, 1, 1, 1, Precision::FP32);
  {
    ScopedEnv api("CREMA_CUDNN_API", "graph");
    cudnn::ConvolutionOp op;
    if (GraphApiBuilt()) EXPECT_NO_THROW(op.Setup(s));
  }
  ScopedEnv api("CREMA_CUDNN_API", "cudnnFind");
  cudnn::ConvolutionOp op;
  if (GraphApiBuilt()) {
    try {
      op.Setup(s);
      ADD_FAILURE() << "CREMA_CUDNN_API=cudnnFind was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CREMA_CUDNN_API"), std::string::npos) << e.what();
    }
  }
}

#ifdef CREMA_TESTS_ON_EMULATOR
// The emulator's graph finalize refuses (CREMA_EMU_CUDNN_BACKEND_REFUSE): every direction
// falls back to the legacy API, logged, with the legacy op's results.
TEST_F(GpuCudnnGraph, FallsBackToLegacyApi) {
  REQUIRE_CUDNN();
  const cudnn::ConvShape s = Shape(2, 2, 3, 5, 1, 7, 3, 1, 2, 1, Precision::FP32);
  Results refused, legacy;
  {
    ScopedEnv refuse("CREMA_EMU_CUDNN_BACKEND_REFUSE", "1");
    cudnn::ConvolutionOp op;
    refused = RunAll(&op, s);
  }
  {
    ScopedEnv api("CREMA_CUDNN_API", "legacy");
    cudnn::ConvolutionOp op;
    legacy = RunAll(&op, s);
  }
  ExpectSameResults(refused, legacy, 0.0);
  EXPECT_NE(refused.description.find("legacy API"), std::string::npos) << refused.description;
  EXPECT_EQ(refused.description.find("engine"), std::string::npos) << refused.description;
  // The refusal is remembered for the geometry: another op does not search again, and
  // still runs (on the legacy API) once the emulator accepts graphs again.
  cudnn::ConvolutionOp again;
  const Results remembered = RunAll(&again, s);
  EXPECT_NE(remembered.description.find("legacy API"), std::string::npos);
  ExpectSameResults(remembered, legacy, 0.0);
}
#endif

#else

TEST_F(GpuCudnnGraph, MatchesLegacyApiFp32) {
  GTEST_SKIP() << "CPU-only build: no cuDNN";
}

#endif

}  // namespace
}  // namespace crema
