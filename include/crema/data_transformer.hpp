// DataTransformer: turns one Datum into one float item [C, H', W'], with Caffe's
// TransformationParameter semantics.
//
//   source      Datum.data (uint8, C x H x W planar), or Datum.float_data when data is
//               empty, or, when Datum.encoded, an image file (PNG/JPEG...) in data decoded
//               with OpenCV: natively (channels as stored), or as 3-channel colour with
//               force_color, or 1-channel grey with force_gray (colour images come out in
//               OpenCV's BGR order, as in Caffe).
//   crop        crop_size > 0: a crop_size x crop_size window; offsets drawn uniformly in
//               TRAIN (h_off = Rand(H - crop + 1), then w_off), centred in TEST
//               ((H - crop) / 2, (W - crop) / 2).
//   mirror      mirror: true flips horizontally when Rand(2) == 1, in either phase.
//   mean        mean_file (a BlobProto of the full, uncropped C x H x W) or mean_value
//               (one value for all channels or one per channel); never both.
//   output      out[c][h][w'] = (x[c][h + h_off][w + w_off] - mean[c][h + h_off][w + w_off]) *
//   scale
//               with w' = W' - 1 - w when mirrored, else w. All arithmetic in float.
//
// Random numbers: Rand(n) = rng() % n on the generator the caller passes. The draws per item,
// in order: Rand(2) for mirror (only when mirror is set), then h_off and w_off (only for a
// crop in TRAIN). Nothing else touches the generator, so a data thread that seeds its own
// generator per batch gets batches that depend on nothing but (seed, batch index).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "crema/common.hpp"

namespace crema {

class DataTransformer {
 public:
  // Loads mean_file when given. Throws crema::Error for mean_file together with mean_value,
  // an unreadable mean file, or a negative crop_size.
  DataTransformer(const pb::TransformationParameter& param, Phase phase);
  ~DataTransformer();

  // Shape [1, C, H', W'] that `datum` transforms to (decodes an encoded datum).
  std::vector<int> InferBlobShape(const pb::Datum& datum) const;

  // Writes the transformed datum to out[0 .. C*H'*W'). When `expected_shape` is not empty it
  // is the [C, H', W'] (or [1, C, H', W']) the caller allocated, and a datum that would
  // produce another shape throws crema::Error instead of writing. Throws crema::Error for
  // inconsistent datums (data size not C*H*W, crop larger than the image, mean of another
  // shape, undecodable image).
  void Transform(const pb::Datum& datum, float* out, std::mt19937& rng,
                 const std::vector<int>& expected_shape = {}) const;

  // Whether Transform draws random numbers at all (mirror, or crop in TRAIN); the static
  // form answers for a parameter without building a transformer (no mean file is read).
  bool NeedsRandom() const;
  // How many numbers Transform draws per item: 1 for mirror, 2 for a crop in TRAIN.
  int DrawsPerItem() const;
  static bool NeedsRandom(const pb::TransformationParameter& param, Phase phase);

  int crop_size() const { return crop_size_; }
  float scale() const { return scale_; }
  bool mirror() const { return mirror_; }
  Phase phase() const { return phase_; }

 private:
  struct Source;
  void TransformSource(const Source& src, float* out, std::mt19937& rng,
                       const std::vector<int>& expected_shape) const;
  std::vector<int> OutputShape(int channels, int height, int width) const;

  Phase phase_;
  int crop_size_ = 0;
  float scale_ = 1.f;
  bool mirror_ = false;
  bool force_color_ = false;
  bool force_gray_ = false;
  bool has_mean_file_ = false;
  std::vector<float> mean_;         // mean_file contents, C x H x W
  std::vector<int> mean_shape_;     // its shape as stored
  std::vector<float> mean_values_;  // mean_value entries as given
};

}  // namespace crema
