#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>
#include <cmath>
#include <limits>

#include "crema.pb.h"
#include "crema/filler.hpp"
#include "test_util.hpp"

namespace crema {
namespace {
using testing::Values;

pb::FillerParameter filler(const std::string& text) {
  pb::FillerParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param));
  return param;
}

struct Stats {
  double mean = 0, var = 0, min = 1e30, max = -1e30;
  int zeros = 0;
};

Stats stats(const Blob& blob) {
  Stats s;
  const float* d = blob.cpu_data();
  for (int i = 0; i < blob.count(); ++i) {
    s.mean += d[i];
    s.min = std::min<double>(s.min, d[i]);
    s.max = std::max<double>(s.max, d[i]);
    s.zeros += d[i] == 0;
  }
  s.mean /= blob.count();
  for (int i = 0; i < blob.count(); ++i) s.var += (d[i] - s.mean) * (d[i] - s.mean);
  s.var /= blob.count();
  return s;
}

class FillerTest : public ::testing::Test {
 protected:
  void SetUp() override { Context::reseed(5, 0); }
  Blob blob_{100, 50, 4, 5};  // fan_in = 1000, fan_out = 2000
};

TEST_F(FillerTest, Constant) {
  CreateFiller(filler("type: 'constant' value: 2.5"))->Fill(&blob_);
  Stats s = stats(blob_);
  EXPECT_EQ(s.min, 2.5);
  EXPECT_EQ(s.max, 2.5);
}

TEST_F(FillerTest, Uniform) {
  CreateFiller(filler("type: 'uniform' min: -3 max: 1"))->Fill(&blob_);
  Stats s = stats(blob_);
  EXPECT_GE(s.min, -3);
  EXPECT_LT(s.max, 1);
  EXPECT_NEAR(s.mean, -1, 0.05);
}

TEST_F(FillerTest, GaussianAndSparse) {
  CreateFiller(filler("type: 'gaussian' mean: 1 std: 2"))->Fill(&blob_);
  Stats s = stats(blob_);
  EXPECT_NEAR(s.mean, 1, 0.05);
  EXPECT_NEAR(std::sqrt(s.var), 2, 0.05);
  // sparse: 20 non-zero inputs per output on average out of shape[0] = 100 -> 20% kept.
  CreateFiller(filler("type: 'gaussian' std: 1 sparse: 20"))->Fill(&blob_);
  s = stats(blob_);
  EXPECT_NEAR(1.0 - static_cast<double>(s.zeros) / blob_.count(), 0.2, 0.01);
}

TEST_F(FillerTest, PositiveUnitball) {
  CreateFiller(filler("type: 'positive_unitball'"))->Fill(&blob_);
  const int dim = blob_.count() / blob_.shape(0);
  for (int n = 0; n < blob_.shape(0); ++n) {
    double sum = 0;
    for (int j = 0; j < dim; ++j) {
      EXPECT_GE(blob_.cpu_data()[n * dim + j], 0.f);
      sum += blob_.cpu_data()[n * dim + j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
}

TEST_F(FillerTest, XavierVarianceNorms) {
  const double fan_in = 1000, fan_out = 2000;
  const std::pair<std::string, double> cases[] = {
      {"type: 'xavier'", fan_in},
      {"type: 'xavier' variance_norm: FAN_OUT", fan_out},
      {"type: 'xavier' variance_norm: AVERAGE", (fan_in + fan_out) / 2}};
  for (const auto& [text, n] : cases) {
    CreateFiller(filler(text))->Fill(&blob_);
    Stats s = stats(blob_);
    const double bound = std::sqrt(3.0 / n);
    EXPECT_GE(s.min, -bound) << text;
    EXPECT_LE(s.max, bound) << text;
    EXPECT_NEAR(s.var, 1.0 / n, 0.05 / n) << text;  // Var U(-a, a) = a^2 / 3 = 1 / n
  }
}

TEST_F(FillerTest, MSRA) {
  CreateFiller(filler("type: 'msra'"))->Fill(&blob_);
  EXPECT_NEAR(stats(blob_).var, 2.0 / 1000, 0.05 * 2.0 / 1000);
  CreateFiller(filler("type: 'msra' variance_norm: FAN_OUT"))->Fill(&blob_);
  EXPECT_NEAR(stats(blob_).var, 2.0 / 2000, 0.05 * 2.0 / 2000);
}

TEST_F(FillerTest, BilinearKnownKernel) {
  Blob kernel(1, 1, 4, 4);
  CreateFiller(filler("type: 'bilinear'"))->Fill(&kernel);
  // K = 4: f = 2, c = 0.75, 1-D weights 0.25 0.75 0.75 0.25.
  const float w[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(kernel.data_at(0, 0, y, x), w[y] * w[x]);
  Blob rect(1, 1, 3, 4);
  EXPECT_THROW(CreateFiller(filler("type: 'bilinear'"))->Fill(&rect), Error);
}

TEST_F(FillerTest, UnknownTypeAndBadSparse) {
  try {
    CreateFiller(filler("type: 'gaussain'"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gaussain"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("xavier"), std::string::npos);
  }
  EXPECT_THROW(CreateFiller(filler("type: 'xavier' sparse: 3")), Error);
}

TEST_F(FillerTest, UniformBoundsMustBeFiniteAndOrdered) {
  for (const char* text : {"type: 'uniform' min: 2 max: 1", "type: 'uniform' min: 0 max: inf",
                           "type: 'uniform' min: -inf max: 0", "type: 'uniform' max: nan"}) {
    try {
      CreateFiller(filler(text));
      ADD_FAILURE() << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("finite min <= max"), std::string::npos) << e.what();
    }
  }
  // A point interval, and the largest float as the upper end (no float lies above it).
  Blob blob({64});
  CreateFiller(filler("type: 'uniform' min: 0.5 max: 0.5"))->Fill(&blob);
  for (float v : Values(blob)) EXPECT_EQ(v, 0.5f);
  CreateFiller(filler("type: 'uniform' min: 3.4028235e38 max: 3.4028235e38"))->Fill(&blob);
  for (float v : Values(blob)) EXPECT_EQ(v, std::numeric_limits<float>::max());
}

}  // namespace
}  // namespace crema
