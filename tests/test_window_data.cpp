// WindowData layer: window file parsing, fg/bg sampling, warping, context padding.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "layers/window_data.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::LayerParam;
using testing::Values;

class WindowDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/crema_window_XXXXXX";
    dir_ = mkdtemp(dir_template);
    Context::set_random_seed(1701);
    for (int i = 0; i < 2; ++i) {
      cv::Mat image(16, 20, CV_8UC3);
      std::mt19937 rng(7 + i);
      for (int h = 0; h < 16; ++h)
        for (int w = 0; w < 20; ++w)
          for (int c = 0; c < 3; ++c)
            image.at<cv::Vec3b>(h, w)[c] = static_cast<uint8_t>(rng() % 256);
      EXPECT_TRUE(cv::imwrite(dir_ + "/im" + std::to_string(i) + ".png", image));
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Image 0: fg windows of classes 1 and 2, one dropped (0.4), bg windows; image 1: one
  // fg window of class 3 and one bg.
  std::string WriteWindows() {
    const std::string path = dir_ + "/windows.txt";
    std::ofstream out(path);
    out << "# 0\nim0.png\n3\n16\n20\n5\n"
        << "1 0.9 2 3 10 12\n"
        << "2 0.7 0 0 19 15\n"
        << "1 0.4 1 1 5 5\n"
        << "0 0.1 4 4 8 9\n"
        << "5 0.2 10 2 18 14\n"
        << "# 1\nim1.png\n3\n16\n20\n2\n"
        << "3 0.6 5 5 15 10\n"
        << "0 0.0 0 0 3 3\n";
    return path;
  }

  std::string Layer(const std::string& source, const std::string& extra,
                    const std::string& transform = "crop_size: 8") {
    return "name: 'windows' type: 'WindowData' top: 'data' top: 'label' window_data_param { "
           "source: '" +
           source + "' root_folder: '" + dir_ + "/' " + extra + " } transform_param { " +
           transform + " }";
  }

  std::string dir_;
};

TEST_F(WindowDataTest, ParsesAndSamplesWithFgFraction) {
  WindowDataLayer layer(LayerParam(Layer(WriteWindows(),
                                         "batch_size: 8 fg_fraction: 0.25 fg_threshold: 0.5 "
                                         "bg_threshold: 0.3")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  EXPECT_EQ(data.shape(), (std::vector<int>{8, 3, 8, 8}));
  EXPECT_EQ(label.shape(), (std::vector<int>{8}));
  EXPECT_EQ(layer.fg_windows().size(), 3u);
  EXPECT_EQ(layer.bg_windows().size(), 3u);  // 0.4 dropped; bg labels forced to 0
  for (const auto& w : layer.bg_windows()) EXPECT_EQ(w.label, 0);
  EXPECT_EQ(layer.num_fg(), 2);
  int fg_total = 0;
  std::vector<float> first;
  for (int b = 0; b < 20; ++b) {
    layer.Forward({}, {&data, &label});
    if (b == 0) first = Values(label);
    for (int i = 0; i < 8; ++i) {
      // background first, then foreground (Caffe's order)
      if (i < 6) {
        EXPECT_EQ(label.cpu_data()[i], 0.f) << "batch " << b << " item " << i;
      } else {
        EXPECT_GT(label.cpu_data()[i], 0.f) << "batch " << b << " item " << i;
        ++fg_total;
      }
    }
  }
  EXPECT_EQ(fg_total, 40);
  // Deterministic given the seed; SeekBatch goes back.
  layer.SeekBatch(0);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), first);
}

TEST_F(WindowDataTest, FgFractionRoundsDown) {
  WindowDataLayer layer(LayerParam(Layer(WriteWindows(), "batch_size: 5 fg_fraction: 0.5")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  EXPECT_EQ(layer.num_fg(), 2);  // int(5 * 0.5)
  layer.Forward({}, {&data, &label});
  int fg = 0;
  for (int i = 0; i < 5; ++i) fg += label.cpu_data()[i] > 0;
  EXPECT_EQ(fg, 2);
}

TEST_F(WindowDataTest, WarpEqualsResizedWindow) {
  // Only one fg and one bg window: the content is known.
  const std::string path = dir_ + "/one.txt";
  std::ofstream(path) << "# 0\nim0.png\n3 16 20\n2\n4 0.8 2 3 10 12\n0 0.1 5 1 17 6\n";
  WindowDataLayer layer(LayerParam(
      Layer(path, "batch_size: 2 fg_fraction: 0.5", "crop_size: 6 mean_value: 100 scale: 0.5")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), (std::vector<float>{0, 4}));
  const cv::Mat image = cv::imread(dir_ + "/im0.png", cv::IMREAD_COLOR);
  const cv::Rect rois[2] = {cv::Rect(5, 1, 13, 6), cv::Rect(2, 3, 9, 10)};
  for (int item = 0; item < 2; ++item) {
    cv::Mat warped;
    cv::resize(image(rois[item]), warped, cv::Size(6, 6), 0, 0, cv::INTER_LINEAR);
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 6; ++h)
        for (int w = 0; w < 6; ++w) {
          const float expected = (warped.at<cv::Vec3b>(h, w)[c] - 100.f) * 0.5f;
          ASSERT_EQ(data.cpu_data()[((item * 3 + c) * 6 + h) * 6 + w], expected)
              << "item " << item << " c " << c << " h " << h << " w " << w;
        }
  }
}

TEST_F(WindowDataTest, ContextPadLeavesZeroBorderOutsideTheImage) {
  // A window in the top-left corner grown by context padding reaches outside the image.
  const std::string path = dir_ + "/corner.txt";
  std::ofstream(path) << "# 0\nim0.png\n3 16 20\n2\n1 0.9 0 0 7 7\n0 0.1 0 0 7 7\n";
  WindowDataLayer layer(
      LayerParam(Layer(path, "batch_size: 1 fg_fraction: 1 context_pad: 2", "crop_size: 12")));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  layer.Forward({}, {&data, &label});
  // grow = 12 / 8 = 1.5: the window [0, 7] centred at 4 becomes [-2, 10]; the 2 pixels
  // outside scale by 12 / 13 to round(1.85) = 2 rows/columns of zeros.
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 12; ++k) {
      EXPECT_EQ(data.cpu_data()[(c * 12 + 0) * 12 + k], 0.f);
      EXPECT_EQ(data.cpu_data()[(c * 12 + 1) * 12 + k], 0.f);
      EXPECT_EQ(data.cpu_data()[(c * 12 + k) * 12 + 0], 0.f);
    }
  float inside = 0;
  for (int c = 0; c < 3; ++c)
    for (int h = 2; h < 12; ++h)
      for (int w = 2; w < 12; ++w) inside += data.cpu_data()[(c * 12 + h) * 12 + w];
  EXPECT_GT(inside, 0.f);
}

TEST_F(WindowDataTest, Errors) {
  Blob data, label;
  {
    WindowDataLayer layer(LayerParam(Layer(dir_ + "/absent.txt", "batch_size: 2")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "absent.txt", "'windows'");
  }
  {
    const std::string path = dir_ + "/bgonly.txt";
    std::ofstream(path) << "# 0\nim0.png\n3 16 20\n1\n0 0.1 0 0 5 5\n";
    WindowDataLayer layer(LayerParam(Layer(path, "batch_size: 4 fg_fraction: 0.5")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "no foreground");
  }
  {
    WindowDataLayer layer(LayerParam(Layer(WriteWindows(), "batch_size: 2", "mirror: true")));
    EXPECT_ERROR_WITH(layer.SetUp({}, {&data, &label}), "crop_size");
  }
  {
    const std::string path = dir_ + "/missing.txt";
    std::ofstream(path) << "# 0\nnot_there.png\n3 16 20\n2\n1 0.9 0 0 5 5\n0 0.1 0 0 5 5\n";
    WindowDataLayer layer(LayerParam(Layer(path, "batch_size: 2 fg_fraction: 0.5")));
    layer.SetUp({}, {&data, &label});
    EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "not_there.png");
  }
  {
    const std::string path = dir_ + "/outside.txt";
    std::ofstream(path) << "# 0\nim0.png\n3 16 20\n1\n1 0.9 10 10 25 12\n";
    WindowDataLayer layer(LayerParam(Layer(path, "batch_size: 1 fg_fraction: 1")));
    layer.SetUp({}, {&data, &label});
    EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "does not fit", "im0.png");
  }
}

}  // namespace
}  // namespace crema
