#include "crema/filler.hpp"

#include <cmath>
#include <vector>

#include "crema.pb.h"
#include "crema/math_functions.hpp"

namespace crema {
namespace {

// fan_in = inputs per output unit = count / shape[0]; fan_out = count / shape[1].
float variance_denominator(const pb::FillerParameter& param, const Blob& blob) {
  const int count = blob.count();
  const float fan_in = blob.num_axes() > 0 && blob.shape(0) > 0 ? count / blob.shape(0) : count;
  const float fan_out = blob.num_axes() > 1 && blob.shape(1) > 0 ? count / blob.shape(1) : count;
  switch (param.variance_norm()) {
    case pb::FillerParameter::FAN_OUT:
      return fan_out;
    case pb::FillerParameter::AVERAGE:
      return (fan_in + fan_out) / 2.f;
    default:
      return fan_in;
  }
}

void require_no_sparsity(const pb::FillerParameter& param) {
  CREMA_REQUIRE(param.sparse() == -1,
                "filler '" << param.type() << "' does not support sparse (only gaussian does)");
}

class ConstantFiller : public Filler {
 public:
  explicit ConstantFiller(const pb::FillerParameter& p) : param_(p) { require_no_sparsity(p); }
  void Fill(Blob* blob) override {
    cpu_set(blob->count(), param_.value(), blob->mutable_cpu_data());
  }

 private:
  pb::FillerParameter param_;
};

class UniformFiller : public Filler {
 public:
  explicit UniformFiller(const pb::FillerParameter& p) : param_(p) {
    require_no_sparsity(p);
    CREMA_REQUIRE(
        std::isfinite(p.min()) && std::isfinite(p.max()) && p.min() <= p.max(),
        "uniform filler needs finite min <= max, got min " << p.min() << " max " << p.max());
  }
  void Fill(Blob* blob) override {
    cpu_rng_uniform(blob->count(), param_.min(), param_.max(), blob->mutable_cpu_data());
  }

 private:
  pb::FillerParameter param_;
};

// N(mean, std); with sparse = s >= 0, each weight is kept with probability s / shape[0]
// (on average s non-zero inputs per output) and zeroed otherwise.
class GaussianFiller : public Filler {
 public:
  explicit GaussianFiller(const pb::FillerParameter& p) : param_(p) {
    CREMA_REQUIRE(p.std() > 0, "gaussian filler needs std > 0, got " << p.std());
  }
  void Fill(Blob* blob) override {
    float* data = blob->mutable_cpu_data();
    const int count = blob->count();
    cpu_rng_gaussian(count, param_.mean(), param_.std(), data);
    if (param_.sparse() >= 0) {
      CREMA_REQUIRE(blob->num_axes() >= 1, "sparse gaussian filler needs a blob with axes");
      const int num_outputs = blob->shape(0);
      const float keep = static_cast<float>(param_.sparse()) / num_outputs;
      CREMA_REQUIRE(keep <= 1.f, "sparse gaussian filler: sparse "
                                     << param_.sparse() << " exceeds the number of outputs "
                                     << num_outputs);
      mask_.resize(count);
      cpu_rng_bernoulli(count, keep, mask_.data());
      for (int i = 0; i < count; ++i) data[i] *= mask_[i];
    }
  }

 private:
  pb::FillerParameter param_;
  std::vector<int> mask_;
};

// Uniform [0, 1), then each row (count / shape[0] values) normalised to sum to 1.
class PositiveUnitballFiller : public Filler {
 public:
  explicit PositiveUnitballFiller(const pb::FillerParameter& p) { require_no_sparsity(p); }
  void Fill(Blob* blob) override {
    float* data = blob->mutable_cpu_data();
    const int count = blob->count();
    cpu_rng_uniform(count, 0.f, 1.f, data);
    const int num = blob->num_axes() > 0 ? blob->shape(0) : 1;
    const int dim = num > 0 ? count / num : 0;
    // A float sum in index order and a float division, as Caffe's: the same weights.
    for (int i = 0; i < num; ++i) {
      float sum = 0.f;
      for (int j = 0; j < dim; ++j) sum += data[i * dim + j];
      for (int j = 0; j < dim; ++j) data[i * dim + j] /= sum;
    }
  }
};

// U(-a, a) with a = sqrt(3 / n): variance 1/n (Glorot & Bengio, Caffe's variant).
class XavierFiller : public Filler {
 public:
  explicit XavierFiller(const pb::FillerParameter& p) : param_(p) { require_no_sparsity(p); }
  void Fill(Blob* blob) override {
    const float scale = std::sqrt(3.f / variance_denominator(param_, *blob));
    cpu_rng_uniform(blob->count(), -scale, scale, blob->mutable_cpu_data());
  }

 private:
  pb::FillerParameter param_;
};

// N(0, 2 / n) (He et al. 2015).
class MSRAFiller : public Filler {
 public:
  explicit MSRAFiller(const pb::FillerParameter& p) : param_(p) { require_no_sparsity(p); }
  void Fill(Blob* blob) override {
    const float std = std::sqrt(2.f / variance_denominator(param_, *blob));
    cpu_rng_gaussian(blob->count(), 0.f, std, blob->mutable_cpu_data());
  }

 private:
  pb::FillerParameter param_;
};

// Bilinear interpolation kernels for upsampling deconvolutions: for a K x K kernel,
// f = ceil(K / 2), c = (2f - 1 - f % 2) / (2f), w(x, y) = (1 - |x/f - c|)(1 - |y/f - c|).
class BilinearFiller : public Filler {
 public:
  explicit BilinearFiller(const pb::FillerParameter& p) { require_no_sparsity(p); }
  void Fill(Blob* blob) override {
    CREMA_REQUIRE(
        blob->num_axes() == 4 && blob->shape(2) == blob->shape(3),
        "bilinear filler needs a 4-D blob with square kernels, got " << blob->shape_string());
    float* data = blob->mutable_cpu_data();
    const int width = blob->shape(3), height = blob->shape(2);
    const int f = (width + 1) / 2;
    const float c = (2 * f - 1 - f % 2) / (2.f * f);
    for (int i = 0; i < blob->count(); ++i) {
      const float x = i % width, y = (i / width) % height;
      data[i] = (1 - std::fabs(x / f - c)) * (1 - std::fabs(y / f - c));
    }
  }
};

}  // namespace

std::unique_ptr<Filler> CreateFiller(const pb::FillerParameter& param) {
  const std::string& type = param.type();
  if (type == "constant") return std::make_unique<ConstantFiller>(param);
  if (type == "uniform") return std::make_unique<UniformFiller>(param);
  if (type == "gaussian") return std::make_unique<GaussianFiller>(param);
  if (type == "positive_unitball") return std::make_unique<PositiveUnitballFiller>(param);
  if (type == "xavier") return std::make_unique<XavierFiller>(param);
  if (type == "msra") return std::make_unique<MSRAFiller>(param);
  if (type == "bilinear") return std::make_unique<BilinearFiller>(param);
  CREMA_THROW("unknown filler type '" << type
                                      << "' (known: constant, uniform, gaussian, "
                                         "positive_unitball, xavier, msra, bilinear)");
}

}  // namespace crema
