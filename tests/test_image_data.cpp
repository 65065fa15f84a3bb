// ImageData layer: decoding equals cv::imread (+ resize, grey), shuffle determinism,
// SeekBatch, errors naming the file.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "layers/image_data.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::LayerParam;
using testing::Values;

class ImageDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/crema_imagedata_XXXXXX";
    dir_ = mkdtemp(dir_template);
    Context::set_random_seed(1701);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes a random colour PNG of the given size; returns its file name (no directory).
  std::string WriteImage(int index, int height, int width) {
    cv::Mat image(height, width, CV_8UC3);
    std::mt19937 rng(100 + index);
    for (int h = 0; h < height; ++h)
      for (int w = 0; w < width; ++w)
        for (int c = 0; c < 3; ++c)
          image.at<cv::Vec3b>(h, w)[c] = static_cast<uint8_t>(rng() % 256);
    const std::string name = "img" + std::to_string(index) + ".png";
    EXPECT_TRUE(cv::imwrite(dir_ + "/" + name, image));
    return name;
  }

  // A list of n images of the given size with labels 10 + i; returns the list path.
  std::string WriteList(int n, int height, int width, const std::string& list = "list.txt") {
    std::ofstream out(dir_ + "/" + list);
    for (int i = 0; i < n; ++i)
      out << WriteImage(i, height + i % 2, width + i % 3) << " " << 10 + i << "\n";
    return dir_ + "/" + list;
  }

  std::string Layer(const std::string& source, const std::string& extra) {
    return "name: 'images' type: 'ImageData' top: 'data' top: 'label' image_data_param { "
           "source: '" +
           source + "' root_folder: '" + dir_ + "/' " + extra + " }";
  }

  // The expected item: cv::imread (+ resize) as planar floats.
  std::vector<float> Expected(const std::string& name, bool color, int height, int width) {
    cv::Mat image = cv::imread(dir_ + "/" + name, color ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
    EXPECT_FALSE(image.empty());
    if (height > 0) cv::resize(image, image, cv::Size(width, height));
    std::vector<float> out;
    for (int c = 0; c < image.channels(); ++c)
      for (int h = 0; h < image.rows; ++h)
        for (int w = 0; w < image.cols; ++w)
          out.push_back(image.ptr<uint8_t>(h)[w * image.channels() + c]);
    return out;
  }

  std::string dir_;
};

TEST_F(ImageDataTest, GreyResizedBatchesEqualImread) {
  const std::string list = WriteList(5, 7, 9);  // sizes vary: resize makes them equal
  ImageDataLayer layer(
      LayerParam(Layer(list, "batch_size: 2 new_height: 4 new_width: 6 is_color: false")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  EXPECT_EQ(data.shape(), (std::vector<int>{2, 1, 4, 6}));
  EXPECT_EQ(label.shape(), (std::vector<int>{2}));
  for (int batch = 0; batch < 4; ++batch) {  // 8 items: wraps around the 5 images
    layer.Forward({}, {&data, &label});
    for (int i = 0; i < 2; ++i) {
      const int image = (batch * 2 + i) % 5;
      const std::vector<float> expected =
          Expected("img" + std::to_string(image) + ".png", false, 4, 6);
      const std::vector<float> got(data.cpu_data() + i * 24, data.cpu_data() + (i + 1) * 24);
      EXPECT_EQ(got, expected) << "batch " << batch << " item " << i;
      EXPECT_EQ(label.cpu_data()[i], 10 + image);
    }
  }
}

TEST_F(ImageDataTest, ColourWithTransformEqualsImread) {
  std::ofstream(dir_ + "/list.txt") << WriteImage(0, 5, 6) << " 3\n"
                                    << WriteImage(1, 5, 6) << " 4\n";
  ImageDataLayer layer(LayerParam(Layer(dir_ + "/list.txt", "batch_size: 2") +
                                  " transform_param { scale: 0.5 mean_value: 10 }"));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  ASSERT_EQ(data.shape(), (std::vector<int>{2, 3, 5, 6}));
  layer.Forward({}, {&data, &label});
  for (int i = 0; i < 2; ++i) {
    std::vector<float> expected = Expected("img" + std::to_string(i) + ".png", true, 0, 0);
    for (float& v : expected) v = (v - 10.f) * 0.5f;
    const std::vector<float> got(data.cpu_data() + i * 90, data.cpu_data() + (i + 1) * 90);
    EXPECT_EQ(got, expected) << "item " << i;
  }
  EXPECT_EQ(Values(label), (std::vector<float>{3, 4}));
}

TEST_F(ImageDataTest, ShuffleIsDeterministicAndReshufflesEachEpoch) {
  const std::string list = WriteList(8, 3, 3);
  const std::string text = Layer(list, "batch_size: 4 shuffle: true new_height: 3 new_width: 3");
  auto labels_of = [&](int batches) {
    ImageDataLayer layer(LayerParam(text));
    Blob data, label;
    layer.SetUp({}, {&data, &label});
    std::vector<float> labels;
    for (int b = 0; b < batches; ++b) {
      layer.Forward({}, {&data, &label});
      const std::vector<float> v = Values(label);
      labels.insert(labels.end(), v.begin(), v.end());
    }
    return labels;
  };
  const std::vector<float> first = labels_of(6);  // three epochs
  EXPECT_EQ(first, labels_of(6));
  std::vector<float> identity;
  for (int i = 0; i < 8; ++i) identity.push_back(10 + i);
  std::vector<std::vector<float>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<float> epoch(first.begin() + 8 * e, first.begin() + 8 * (e + 1));
    epochs.push_back(epoch);
    std::sort(epoch.begin(), epoch.end());
    EXPECT_EQ(epoch, identity) << "epoch " << e << " is not a permutation of the list";
  }
  EXPECT_NE(epochs[0], identity);
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  Context::set_random_seed(4242);
  EXPECT_NE(labels_of(2), std::vector<float>(first.begin(), first.begin() + 8));
}

TEST_F(ImageDataTest, SeekBatchReproducesTheRun) {
  const std::string list = WriteList(6, 4, 4);
  const std::string text = Layer(list, "batch_size: 4 shuffle: true new_height: 4 new_width: 4") +
                           " transform_param { mirror: true crop_size: 3 }";
  std::vector<std::vector<float>> run, labels;
  // The transformer's seed is drawn at setup, as in Caffe: the same seed, the same draws.
  Context::set_random_seed(31);
  {
    ImageDataLayer layer(LayerParam(text));
    Blob data, label;
    layer.SetUp({}, {&data, &label});
    for (int b = 0; b < 5; ++b) {
      layer.Forward({}, {&data, &label});
      run.push_back(Values(data));
      labels.push_back(Values(label));
    }
  }
  Context::set_random_seed(31);
  ImageDataLayer layer(LayerParam(text));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  layer.Forward({}, {&data, &label});
  layer.SeekBatch(3);
  EXPECT_EQ(layer.next_batch(), 3);
  for (int b = 3; b < 5; ++b) {
    layer.Forward({}, {&data, &label});
    EXPECT_EQ(Values(data), run[b]) << "batch " << b;
    EXPECT_EQ(Values(label), labels[b]) << "batch " << b;
  }
  layer.SeekBatch(1);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(data), run[1]);
  Context::set_random_seed(1701);  // test_main's seed
}

TEST_F(ImageDataTest, MissingImageIsNamedWhenItsBatchIsNeeded) {
  std::ofstream(dir_ + "/list.txt") << WriteImage(0, 3, 3) << " 0\n"
                                    << WriteImage(1, 3, 3) << " 1\n"
                                    << "missing_file.png 2\n";
  ImageDataLayer layer(LayerParam(Layer(dir_ + "/list.txt", "batch_size: 2")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  layer.Forward({}, {&data, &label});  // images 0 and 1 are fine
  EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "missing_file.png", "images",
                    "does not exist");
  // The error sticks until a seek.
  EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "missing_file.png");
  layer.SeekBatch(0);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), (std::vector<float>{0, 1}));
}

TEST_F(ImageDataTest, CorruptImageIsNamed) {
  std::ofstream(dir_ + "/bad.png") << "this is not a PNG";
  std::ofstream(dir_ + "/list.txt") << "bad.png 0\n";
  ImageDataLayer layer(LayerParam(Layer(dir_ + "/list.txt", "batch_size: 1")));
  Blob data, label;
  EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "bad.png", "could not be decoded");
}

TEST_F(ImageDataTest, BadSettingsAreErrors) {
  Blob data, label;
  {
    ImageDataLayer layer(LayerParam(Layer(dir_ + "/no_list.txt", "batch_size: 1")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "no_list.txt", "'images'");
  }
  const std::string list = WriteList(2, 3, 3);
  {
    ImageDataLayer layer(LayerParam(Layer(list, "new_height: 4")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "new_height", "'images'");
  }
  {
    ImageDataLayer layer(LayerParam(Layer(list, "batch_size: 0")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "batch_size");
  }
  {
    std::ofstream(dir_ + "/labels.txt") << "img0.png seven\n";
    ImageDataLayer layer(LayerParam(Layer(dir_ + "/labels.txt", "")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "labels.txt:1", "seven");
  }
  {
    std::ofstream(dir_ + "/empty.txt") << "\n\n";
    ImageDataLayer layer(LayerParam(Layer(dir_ + "/empty.txt", "")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "empty");
  }
  {
    // Images of different sizes in one batch (no resize).
    ImageDataLayer layer(LayerParam(Layer(list, "batch_size: 2")));
    layer.SetUp({}, {&data, &label});
    EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "img1.png");
  }
}

TEST_F(ImageDataTest, RandSkipIsDeterministic) {
  const std::string list = WriteList(5, 3, 3);
  auto first_label = [&] {
    ImageDataLayer layer(LayerParam(Layer(list, "rand_skip: 5 new_height: 3 new_width: 3")));
    Blob data, label;
    layer.SetUp({}, {&data, &label});
    layer.Forward({}, {&data, &label});
    return label.cpu_data()[0];
  };
  const float a = first_label();
  EXPECT_EQ(a, first_label());
  EXPECT_GE(a, 10.f);
  EXPECT_LT(a, 15.f);
}

}  // namespace
}  // namespace crema
