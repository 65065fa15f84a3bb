// DataTransformer: see include/crema/data_transformer.hpp for the semantics.
#include "crema/data_transformer.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <atomic>
#include <cstddef>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/io.hpp"

namespace crema {

// One image to transform, whatever it came from: element (c, h, w) is at
// base[c * c_stride + h * h_stride + w * w_stride].
struct DataTransformer::Source {
  int channels = 0, height = 0, width = 0;
  const uint8_t* u8 = nullptr;  // exactly one of u8 / f32 is set
  const float* f32 = nullptr;
  ptrdiff_t c_stride = 0, h_stride = 0, w_stride = 0;
};

namespace {

// Rand(n) as Caffe draws it: one 32-bit output modulo n.
inline int RandInt(std::mt19937& rng, int n) {
  return static_cast<int>(rng() % static_cast<uint32_t>(n));
}

cv::Mat DecodeImage(const std::string& bytes, bool force_color, bool force_gray) {
  CREMA_REQUIRE(!(force_color && force_gray),
                "transform_param: force_color and force_gray cannot both be set");
  const int flag = force_color  ? cv::IMREAD_COLOR
                   : force_gray ? cv::IMREAD_GRAYSCALE
                                : cv::IMREAD_UNCHANGED;
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat image;
  try {
    image = cv::imdecode(buffer, flag);
  } catch (const cv::Exception& e) {
    CREMA_THROW("cannot decode the encoded image of a datum (" << bytes.size()
                                                               << " bytes): " << e.what());
  }
  CREMA_REQUIRE(!image.empty(), "cannot decode the encoded image of a datum ("
                                    << bytes.size() << " bytes): not an image OpenCV can read");
  CREMA_REQUIRE(image.depth() == CV_8U, "the encoded image of a datum decodes to "
                                            << image.elemSize1() * 8
                                            << "-bit samples; only 8-bit images "
                                               "are supported");
  return image;
}

// The per-item copy: out[c][h][mirror ? W'-1-w : w] = (src - mean) * scale.
template <typename T>
void CopyTransformed(const T* base, ptrdiff_t c_stride, ptrdiff_t h_stride, ptrdiff_t w_stride,
                     int channels, int height, int width, int out_h, int out_w, int h_off,
                     int w_off, bool mirror, float scale, const float* mean_image,
                     const float* channel_means, float* out) {
  for (int c = 0; c < channels; ++c) {
    for (int h = 0; h < out_h; ++h) {
      const T* src = base + c * c_stride + (h + h_off) * h_stride + w_off * w_stride;
      float* dst = out + (static_cast<ptrdiff_t>(c) * out_h + h) * out_w;
      ptrdiff_t step = 1;
      if (mirror) {
        dst += out_w - 1;
        step = -1;
      }
      if (mean_image) {
        const float* m =
            mean_image + (static_cast<ptrdiff_t>(c) * height + h + h_off) * width + w_off;
        for (int w = 0; w < out_w; ++w)
          dst[w * step] = (static_cast<float>(src[w * w_stride]) - m[w]) * scale;
      } else {
        const float m = channel_means[c];
        for (int w = 0; w < out_w; ++w)
          dst[w * step] = (static_cast<float>(src[w * w_stride]) - m) * scale;
      }
    }
  }
}

}  // namespace

DataTransformer::DataTransformer(const pb::TransformationParameter& param, Phase phase)
    : phase_(phase),
      crop_size_(static_cast<int>(param.crop_size())),
      scale_(param.scale()),
      mirror_(param.mirror()),
      force_color_(param.force_color()),
      force_gray_(param.force_gray()) {
  CREMA_REQUIRE(crop_size_ >= 0,
                "transform_param: crop_size must not be negative, got " << param.crop_size());
  CREMA_REQUIRE(!(param.has_mean_file() && param.mean_value_size() > 0),
                "transform_param: cannot specify mean_file and mean_value at the same time");
  if (param.has_mean_file()) {
    pb::BlobProto proto;
    ReadProtoFromBinaryFile(param.mean_file(), &proto);
    Blob mean;
    try {
      mean.FromProto(proto, /*reshape=*/true);
    } catch (const Error& e) {
      CREMA_THROW("mean file '" << param.mean_file() << "': " << e.what());
    }
    mean_shape_ = mean.shape();
    mean_.assign(mean.cpu_data(), mean.cpu_data() + mean.count());
    has_mean_file_ = true;
  }
  for (int i = 0; i < param.mean_value_size(); ++i) mean_values_.push_back(param.mean_value(i));
}

DataTransformer::~DataTransformer() = default;

int DataTransformer::DrawsPerItem() const {
  return (mirror_ ? 1 : 0) + (phase_ == Phase::TRAIN && crop_size_ > 0 ? 2 : 0);
}

bool DataTransformer::NeedsRandom() const {
  return DrawsPerItem() > 0;
}

bool DataTransformer::NeedsRandom(const pb::TransformationParameter& param, Phase phase) {
  return param.mirror() || (phase == Phase::TRAIN && param.crop_size() > 0);
}

std::vector<int> DataTransformer::OutputShape(int channels, int height, int width) const {
  CREMA_REQUIRE(channels > 0 && height > 0 && width > 0,
                "datum has shape " << channels << " x " << height << " x " << width
                                   << "; channels, height and width must be positive");
  CREMA_REQUIRE(height >= crop_size_ && width >= crop_size_,
                "crop_size " << crop_size_ << " is larger than the datum's " << height << " x "
                             << width << " image");
  return {1, channels, crop_size_ ? crop_size_ : height, crop_size_ ? crop_size_ : width};
}

std::vector<int> DataTransformer::InferBlobShape(const pb::Datum& datum) const {
  if (datum.encoded()) {
    const cv::Mat image = DecodeImage(datum.data(), force_color_, force_gray_);
    return OutputShape(image.channels(), image.rows, image.cols);
  }
  return OutputShape(datum.channels(), datum.height(), datum.width());
}

void DataTransformer::Transform(const pb::Datum& datum, float* out, std::mt19937& rng,
                                const std::vector<int>& expected_shape) const {
  Source src;
  cv::Mat image;  // keeps a decoded image alive while it is read
  if (datum.encoded()) {
    image = DecodeImage(datum.data(), force_color_, force_gray_);
    src.channels = image.channels();
    src.height = image.rows;
    src.width = image.cols;
    src.u8 = image.data;
    // OpenCV stores pixels interleaved (HWC, BGR for colour).
    src.c_stride = 1;
    src.h_stride = static_cast<ptrdiff_t>(image.step[0]);
    src.w_stride = src.channels;
  } else {
    if (force_color_ || force_gray_) {
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true))
        LOG(WARNING) << "force_color and force_gray only apply to encoded datums";
    }
    src.channels = datum.channels();
    src.height = datum.height();
    src.width = datum.width();
    const int64_t count = static_cast<int64_t>(src.channels) * src.height * src.width;
    if (!datum.data().empty()) {
      CREMA_REQUIRE(static_cast<int64_t>(datum.data().size()) == count,
                    "datum holds " << datum.data().size() << " bytes of data but channels x "
                                   << "height x width = " << src.channels << " x " << src.height
                                   << " x " << src.width << " = " << count);
      src.u8 = reinterpret_cast<const uint8_t*>(datum.data().data());
    } else {
      CREMA_REQUIRE(datum.float_data_size() == count,
                    "datum holds " << datum.float_data_size()
                                   << " float_data values (and no byte data) but channels x "
                                   << "height x width = " << src.channels << " x " << src.height
                                   << " x " << src.width << " = " << count);
      src.f32 = datum.float_data().data();
    }
    src.c_stride = static_cast<ptrdiff_t>(src.height) * src.width;
    src.h_stride = src.width;
    src.w_stride = 1;
  }
  TransformSource(src, out, rng, expected_shape);
}

void DataTransformer::TransformSource(const Source& src, float* out, std::mt19937& rng,
                                      const std::vector<int>& expected_shape) const {
  const std::vector<int> shape = OutputShape(src.channels, src.height, src.width);
  if (!expected_shape.empty()) {
    std::vector<int> expected = expected_shape;
    if (expected.size() == 4 && expected[0] == 1) expected.erase(expected.begin());
    const std::vector<int> got(shape.begin() + 1, shape.end());
    CREMA_REQUIRE(got == expected, "datum transforms to shape "
                                       << shape_string(got) << " but " << shape_string(expected)
                                       << " was expected (all entries must have the same shape "
                                          "unless crop_size makes them equal)");
  }
  const int channels = src.channels, height = src.height, width = src.width;
  const int out_h = shape[2], out_w = shape[3];

  const float* mean_image = nullptr;
  std::vector<float> channel_means_storage;
  float channel_means_small[4] = {0.f, 0.f, 0.f, 0.f};
  const float* channel_means = channel_means_small;
  if (has_mean_file_) {
    const size_t n = mean_shape_.size();
    bool ok = mean_.size() == static_cast<size_t>(channels) * height * width;
    if (ok && n >= 3)
      ok = mean_shape_[n - 3] == channels && mean_shape_[n - 2] == height &&
           mean_shape_[n - 1] == width;
    CREMA_REQUIRE(ok, "the mean file has shape " << shape_string(mean_shape_)
                                                 << " but the datum is " << channels << " x "
                                                 << height << " x " << width);
    mean_image = mean_.data();
  } else if (!mean_values_.empty()) {
    CREMA_REQUIRE(mean_values_.size() == 1 || static_cast<int>(mean_values_.size()) == channels,
                  "specify either 1 mean_value or as many as channels (" << channels << "), got "
                                                                         << mean_values_.size());
    float* means = channel_means_small;
    if (channels > 4) {
      channel_means_storage.resize(channels);
      means = channel_means_storage.data();
      channel_means = means;
    }
    for (int c = 0; c < channels; ++c)
      means[c] = mean_values_.size() == 1 ? mean_values_[0] : mean_values_[c];
  } else if (channels > 4) {
    channel_means_storage.assign(channels, 0.f);
    channel_means = channel_means_storage.data();
  }

  // Random draws in Caffe's order: mirror first, then the crop offsets.
  const bool do_mirror = mirror_ && RandInt(rng, 2) != 0;
  int h_off = 0, w_off = 0;
  if (crop_size_) {
    if (phase_ == Phase::TRAIN) {
      h_off = RandInt(rng, height - crop_size_ + 1);
      w_off = RandInt(rng, width - crop_size_ + 1);
    } else {
      h_off = (height - crop_size_) / 2;
      w_off = (width - crop_size_) / 2;
    }
  }

  if (src.u8)
    CopyTransformed(src.u8, src.c_stride, src.h_stride, src.w_stride, channels, height, width,
                    out_h, out_w, h_off, w_off, do_mirror, scale_, mean_image, channel_means, out);
  else
    CopyTransformed(src.f32, src.c_stride, src.h_stride, src.w_stride, channels, height, width,
                    out_h, out_w, h_off, w_off, do_mirror, scale_, mean_image, channel_means, out);
}

}  // namespace crema
