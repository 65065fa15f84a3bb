// DataTransformer: known answers for crop, mirror, mean (value and file), scale, decoding.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/data_transformer.hpp"
#include "crema/io.hpp"

namespace crema {
namespace {

pb::TransformationParameter Param(const std::string& text) {
  pb::TransformationParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &param)) << text;
  return param;
}

// A uint8 datum whose pixel (c, h, w) is value(c, h, w).
pb::Datum MakeDatum(int channels, int height, int width, int (*value)(int, int, int)) {
  pb::Datum datum;
  datum.set_channels(channels);
  datum.set_height(height);
  datum.set_width(width);
  std::string data;
  for (int c = 0; c < channels; ++c)
    for (int h = 0; h < height; ++h)
      for (int w = 0; w < width; ++w) data.push_back(static_cast<char>(value(c, h, w)));
  datum.set_data(data);
  datum.set_label(3);
  return datum;
}

int Pixel(int c, int h, int w) {
  return 100 * c + 10 * h + w;
}

// The reference: out[c][h][w] = (x[c][h+ho][mirrored w + wo] - mean) * scale.
std::vector<float> Expected(const pb::Datum& datum, int crop, int h_off, int w_off, bool mirror,
                            float scale, const std::vector<float>& mean_image,
                            const std::vector<float>& channel_means) {
  const int C = datum.channels(), H = datum.height(), W = datum.width();
  const int oh = crop ? crop : H, ow = crop ? crop : W;
  std::vector<float> out(C * oh * ow);
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < oh; ++h)
      for (int w = 0; w < ow; ++w) {
        const int src = (c * H + h + h_off) * W + w + w_off;
        float x = static_cast<uint8_t>(datum.data()[src]);
        float m = !mean_image.empty()     ? mean_image[src]
                  : channel_means.empty() ? 0.f
                                          : channel_means[c];
        const int dst_w = mirror ? ow - 1 - w : w;
        out[(c * oh + h) * ow + dst_w] = (x - m) * scale;
      }
  return out;
}

TEST(DataTransformer, PlainCopy) {
  DataTransformer t(Param(""), Phase::TRAIN);
  const pb::Datum datum = MakeDatum(2, 3, 4, Pixel);
  EXPECT_EQ(t.InferBlobShape(datum), (std::vector<int>{1, 2, 3, 4}));
  std::vector<float> out(24);
  std::mt19937 rng(1);
  const std::mt19937 before = rng;
  t.Transform(datum, out.data(), rng);
  EXPECT_EQ(out, Expected(datum, 0, 0, 0, false, 1.f, {}, {}));
  EXPECT_TRUE(rng == before) << "no randomness needed: the generator must not be used";
  EXPECT_FALSE(t.NeedsRandom());
}

TEST(DataTransformer, CenterCropInTest) {
  DataTransformer t(Param("crop_size: 2"), Phase::TEST);
  const pb::Datum datum = MakeDatum(2, 5, 6, Pixel);
  EXPECT_EQ(t.InferBlobShape(datum), (std::vector<int>{1, 2, 2, 2}));
  std::vector<float> out(8);
  std::mt19937 rng(7);
  t.Transform(datum, out.data(), rng);
  // h_off = (5 - 2) / 2 = 1, w_off = (6 - 2) / 2 = 2
  const std::vector<float> expected = {12, 13, 22, 23, 112, 113, 122, 123};
  EXPECT_EQ(out, expected);
}

TEST(DataTransformer, MeanValueBeforeScale) {
  DataTransformer t(Param("mean_value: 10 scale: 0.5"), Phase::TEST);
  const pb::Datum datum = MakeDatum(1, 2, 2, Pixel);  // 0 1 10 11
  std::vector<float> out(4);
  std::mt19937 rng(0);
  t.Transform(datum, out.data(), rng);
  // (x - 10) * 0.5, not x * 0.5 - 10
  EXPECT_EQ(out, (std::vector<float>{-5.f, -4.5f, 0.f, 0.5f}));
}

TEST(DataTransformer, MeanValuePerChannel) {
  DataTransformer t(Param("mean_value: 1 mean_value: 2 mean_value: 3 scale: 2"), Phase::TEST);
  const pb::Datum datum = MakeDatum(3, 2, 3, Pixel);
  std::vector<float> out(18);
  std::mt19937 rng(0);
  t.Transform(datum, out.data(), rng);
  EXPECT_EQ(out, Expected(datum, 0, 0, 0, false, 2.f, {}, {1.f, 2.f, 3.f}));
  EXPECT_EQ(out[6], (100.f - 2.f) * 2.f);

  DataTransformer wrong(Param("mean_value: 1 mean_value: 2"), Phase::TEST);
  EXPECT_THROW(wrong.Transform(datum, out.data(), rng), Error);
}

TEST(DataTransformer, MeanFileWithCrop) {
  char pattern[] = "/tmp/crema_test_mean_XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  const std::string path = dir + "/mean.binaryproto";
  pb::BlobProto mean;
  for (int d : {1, 2, 4, 4}) mean.mutable_shape()->add_dim(d);
  std::vector<float> mean_image;
  for (int i = 0; i < 32; ++i) {
    mean_image.push_back(0.25f * i);
    mean.add_data(0.25f * i);
  }
  WriteProtoToBinaryFile(mean, path);

  DataTransformer t(Param("mean_file: '" + path + "' crop_size: 2 scale: 0.125"), Phase::TEST);
  const pb::Datum datum = MakeDatum(2, 4, 4, Pixel);
  std::vector<float> out(8);
  std::mt19937 rng(0);
  t.Transform(datum, out.data(), rng);
  // The mean is indexed at the uncropped position: offsets (1, 1).
  EXPECT_EQ(out, Expected(datum, 2, 1, 1, false, 0.125f, mean_image, {}));

  // The mean must have the datum's shape.
  const pb::Datum other = MakeDatum(2, 5, 4, Pixel);
  std::vector<float> out2(8);
  EXPECT_THROW(t.Transform(other, out2.data(), rng), Error);

  // mean_file and mean_value together are refused.
  EXPECT_THROW(DataTransformer(Param("mean_file: '" + path + "' mean_value: 1"), Phase::TEST),
               Error);
  EXPECT_THROW(DataTransformer(Param("mean_file: '" + dir + "/missing'"), Phase::TEST), Error);
  std::filesystem::remove_all(dir);
}

TEST(DataTransformer, MirrorAndRandomCropFollowTheGenerator) {
  DataTransformer t(Param("mirror: true crop_size: 3"), Phase::TRAIN);
  EXPECT_TRUE(t.NeedsRandom());
  const pb::Datum datum = MakeDatum(2, 5, 7, Pixel);
  bool seen_mirror = false, seen_plain = false;
  for (uint32_t seed = 0; seed < 40; ++seed) {
    std::mt19937 rng(seed);
    std::mt19937 reference(seed);
    // Caffe's order: Rand(2) for the mirror, then h_off, then w_off.
    const bool mirror = reference() % 2 != 0;
    const int h_off = static_cast<int>(reference() % 3);
    const int w_off = static_cast<int>(reference() % 5);
    std::vector<float> out(18);
    t.Transform(datum, out.data(), rng);
    ASSERT_EQ(out, Expected(datum, 3, h_off, w_off, mirror, 1.f, {}, {})) << "seed " << seed;
    EXPECT_TRUE(rng == reference) << "exactly three draws per item";
    (mirror ? seen_mirror : seen_plain) = true;
  }
  EXPECT_TRUE(seen_mirror && seen_plain);
}

TEST(DataTransformer, MirrorAlsoInTest) {
  // As in Caffe, mirror is random in either phase; a TEST crop stays centred.
  DataTransformer t(Param("mirror: true crop_size: 2"), Phase::TEST);
  const pb::Datum datum = MakeDatum(1, 4, 4, Pixel);
  for (uint32_t seed = 0; seed < 8; ++seed) {
    std::mt19937 rng(seed), reference(seed);
    const bool mirror = reference() % 2 != 0;
    std::vector<float> out(4);
    t.Transform(datum, out.data(), rng);
    EXPECT_EQ(out, Expected(datum, 2, 1, 1, mirror, 1.f, {}, {}));
    EXPECT_TRUE(rng == reference) << "one draw per item";
  }
}

TEST(DataTransformer, FloatData) {
  DataTransformer t(Param("scale: 2 mean_value: 0.5"), Phase::TEST);
  pb::Datum datum;
  datum.set_channels(1);
  datum.set_height(1);
  datum.set_width(3);
  for (float v : {1.5f, -2.f, 300.f}) datum.add_float_data(v);
  std::vector<float> out(3);
  std::mt19937 rng(0);
  t.Transform(datum, out.data(), rng);
  EXPECT_EQ(out, (std::vector<float>{2.f, -5.f, 599.f}));
}

TEST(DataTransformer, EncodedPng) {
  // A 2 x 3 colour image; OpenCV stores it BGR, interleaved.
  cv::Mat image(2, 3, CV_8UC3);
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 3; ++w)
      image.at<cv::Vec3b>(h, w) = cv::Vec3b(10 * h + w, 100 + 10 * h + w, 200 + 10 * h + w);
  std::vector<uchar> png;
  ASSERT_TRUE(cv::imencode(".png", image, png));
  pb::Datum datum;
  datum.set_encoded(true);
  datum.set_data(std::string(png.begin(), png.end()));

  DataTransformer t(Param(""), Phase::TEST);
  EXPECT_EQ(t.InferBlobShape(datum), (std::vector<int>{1, 3, 2, 3}));
  std::vector<float> out(18);
  std::mt19937 rng(0);
  t.Transform(datum, out.data(), rng, {3, 2, 3});
  for (int c = 0; c < 3; ++c)
    for (int h = 0; h < 2; ++h)
      for (int w = 0; w < 3; ++w)
        EXPECT_EQ(out[(c * 2 + h) * 3 + w], 100 * c + 10 * h + w) << c << h << w;

  // A grey PNG: 1 channel natively, 3 equal channels with force_color.
  cv::Mat grey(2, 2, CV_8UC1);
  grey.at<uchar>(0, 0) = 1;
  grey.at<uchar>(0, 1) = 2;
  grey.at<uchar>(1, 0) = 3;
  grey.at<uchar>(1, 1) = 4;
  ASSERT_TRUE(cv::imencode(".png", grey, png));
  datum.set_data(std::string(png.begin(), png.end()));
  EXPECT_EQ(t.InferBlobShape(datum), (std::vector<int>{1, 1, 2, 2}));
  DataTransformer colour(Param("force_color: true mirror: true"), Phase::TEST);
  EXPECT_EQ(colour.InferBlobShape(datum), (std::vector<int>{1, 3, 2, 2}));
  std::mt19937 r2(0), ref(0);
  const bool mirror = ref() % 2 != 0;
  colour.Transform(datum, out.data(), r2);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out[c * 4 + 0], mirror ? 2 : 1);
    EXPECT_EQ(out[c * 4 + 3], mirror ? 3 : 4);
  }

  // Shape expectations are enforced, and garbage does not decode.
  EXPECT_THROW(t.Transform(datum, out.data(), rng, {3, 2, 2}), Error);
  datum.set_data("not an image");
  EXPECT_THROW(t.Transform(datum, out.data(), rng), Error);
  DataTransformer both(Param("force_color: true force_gray: true"), Phase::TEST);
  datum.set_data(std::string(png.begin(), png.end()));
  EXPECT_THROW(both.Transform(datum, out.data(), rng), Error);
}

TEST(DataTransformer, InconsistentDatumsAreErrors) {
  DataTransformer t(Param("crop_size: 5"), Phase::TEST);
  std::vector<float> out(100);
  std::mt19937 rng(0);
  const pb::Datum small = MakeDatum(1, 4, 8, Pixel);
  EXPECT_THROW(t.Transform(small, out.data(), rng), Error);  // crop larger than the image
  EXPECT_THROW(t.InferBlobShape(small), Error);

  DataTransformer plain(Param(""), Phase::TEST);
  pb::Datum bad = MakeDatum(1, 2, 2, Pixel);
  bad.set_height(3);  // 4 bytes of data for 1 x 3 x 2
  try {
    plain.Transform(bad, out.data(), rng);
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 bytes"), std::string::npos) << e.what();
  }
  pb::Datum empty;
  empty.set_channels(1);
  empty.set_height(1);
  empty.set_width(1);
  EXPECT_THROW(plain.Transform(empty, out.data(), rng), Error);
}

}  // namespace
}  // namespace crema
