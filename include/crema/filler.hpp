// Fillers initialise parameter blobs as FillerParameter describes (Caffe's semantics):
//   constant(value) · uniform(min, max) · gaussian(mean, std[, sparse]) · positive_unitball
//   xavier: U(-s, s), s = sqrt(3 / n) · msra: N(0, 2 / n) · bilinear (upsampling kernels)
// where n is fan_in = count / shape[0], fan_out = count / shape[1], or their average, by
// variance_norm. Random fillers draw from the calling thread's generator (Context::rng());
// uniform, xavier and positive_unitball draw exactly Caffe's numbers from the same
// generator state (cpu_rng_uniform), so after the same random_seed they give Caffe's
// weights; gaussian and msra draw other numbers (and a different count of them).
#pragma once

#include <memory>

#include "crema/blob.hpp"

namespace crema {

class Filler {
 public:
  virtual ~Filler() = default;
  virtual void Fill(Blob* blob) = 0;
};

// Throws crema::Error for an unknown filler type.
std::unique_ptr<Filler> CreateFiller(const pb::FillerParameter& param);

}  // namespace crema
