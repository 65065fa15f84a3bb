// ComputeImageMean: see include/crema/image_tools.hpp.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/image_tools.hpp"
#include "crema/io.hpp"

namespace crema {

namespace {

// An encoded datum decoded as stored (OpenCV's native channels, BGR order) into raw planar
// uint8 pixels, so it can be summed like any other.
void DecodeNative(pb::Datum* datum, const std::string& key) {
  const std::string& bytes = datum->data();
  cv::Mat image;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    image = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    image.release();
  }
  CREMA_REQUIRE(!image.empty() && image.depth() == CV_8U,
                "the encoded image under key '" << key << "' (" << bytes.size()
                                                << " bytes) cannot be decoded as an 8-bit image");
  const int channels = image.channels(), height = image.rows, width = image.cols;
  std::string pixels(static_cast<size_t>(channels) * height * width, '\0');
  const size_t plane = static_cast<size_t>(height) * width;
  for (int h = 0; h < height; ++h) {
    const uint8_t* row = image.ptr<uint8_t>(h);
    for (int w = 0; w < width; ++w)
      for (int c = 0; c < channels; ++c)
        pixels[c * plane + static_cast<size_t>(h) * width + w] =
            static_cast<char>(row[w * channels + c]);
  }
  datum->set_channels(channels);
  datum->set_height(height);
  datum->set_width(width);
  datum->set_data(std::move(pixels));
  datum->set_encoded(false);
}

}  // namespace

ImageMean ComputeImageMean(const std::string& db_path, const std::string& output_path) {
  LMDBReader reader(db_path);
  CREMA_REQUIRE(reader.Entries() > 0, "database '" << db_path << "' is empty: no mean to compute");
  ImageMean result;
  std::vector<double> sum;
  size_t size = 0;
  pb::Datum datum;
  for (reader.SeekToFirst(); reader.valid(); reader.Next()) {
    const std::string key(reader.key());
    const std::string_view value = reader.value();
    CREMA_REQUIRE(datum.ParseFromArray(value.data(), static_cast<int>(value.size())),
                  "the value under key '" << key << "' of '" << db_path << "' is not a Datum");
    if (datum.encoded()) DecodeNative(&datum, key);
    const size_t entry_size =
        datum.data().empty() ? static_cast<size_t>(datum.float_data_size()) : datum.data().size();
    if (result.count == 0) {
      result.channels = datum.channels();
      result.height = datum.height();
      result.width = datum.width();
      size = static_cast<size_t>(result.channels) * result.height * result.width;
      CREMA_REQUIRE(size > 0 && entry_size == size,
                    "the first Datum of '" << db_path << "' (key '" << key << "') declares "
                                           << result.channels << " x " << result.height << " x "
                                           << result.width << " but holds " << entry_size
                                           << " values");
      sum.assign(size, 0.0);
    } else {
      CREMA_REQUIRE(entry_size == size, "the Datum under key '"
                                            << key << "' of '" << db_path << "' holds "
                                            << entry_size << " values (" << datum.channels()
                                            << " x " << datum.height() << " x " << datum.width()
                                            << ") but the first one " << size << " ("
                                            << result.channels << " x " << result.height << " x "
                                            << result.width << "); all images must have one size");
    }
    if (!datum.data().empty()) {
      const auto* pixels = reinterpret_cast<const uint8_t*>(datum.data().data());
      for (size_t i = 0; i < size; ++i) sum[i] += pixels[i];
    } else {
      for (size_t i = 0; i < size; ++i) sum[i] += datum.float_data(static_cast<int>(i));
    }
    ++result.count;
    if (result.count % 10000 == 0) LOG(INFO) << "Processed " << result.count << " items.";
  }
  LOG(INFO) << "Averaged " << result.count << " items of " << result.channels << " x "
            << result.height << " x " << result.width;

  result.mean.resize(size);
  for (size_t i = 0; i < size; ++i)
    result.mean[i] = static_cast<float>(sum[i] / static_cast<double>(result.count));
  const size_t plane = static_cast<size_t>(result.height) * result.width;
  result.channel_mean.assign(result.channels, 0.0);
  for (int c = 0; c < result.channels; ++c) {
    double total = 0;
    for (size_t i = 0; i < plane; ++i) total += result.mean[c * plane + i];
    result.channel_mean[c] = total / static_cast<double>(plane);
  }

  if (!output_path.empty()) {
    // The legacy 4-D fields, as Caffe's compute_image_mean writes them.
    pb::BlobProto proto;
    proto.set_num(1);
    proto.set_channels(result.channels);
    proto.set_height(result.height);
    proto.set_width(result.width);
    proto.mutable_data()->Reserve(static_cast<int>(size));
    for (float v : result.mean) proto.add_data(v);
    WriteProtoToBinaryFile(proto, output_path);
    LOG(INFO) << "Wrote the mean to " << output_path;
  }
  return result;
}

}  // namespace crema
