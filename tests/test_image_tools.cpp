// The image dataset tools: convert_imageset, compute_image_mean, extract_features, draw_net,
// mnist_to_images (crema/image_tools.hpp), called as library functions, plus a few runs of
// the `crema` binary for exit statuses.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/db.hpp"
#include "crema/image_tools.hpp"
#include "crema/io.hpp"
#include "crema/net.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::CremaRun;
using testing::RunCrema;

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Planar C x H x W floats of an OpenCV image (what a Data layer without transforms yields).
std::vector<float> Planar(const cv::Mat& image) {
  std::vector<float> out;
  for (int c = 0; c < image.channels(); ++c)
    for (int h = 0; h < image.rows; ++h)
      for (int w = 0; w < image.cols; ++w)
        out.push_back(image.ptr<uint8_t>(h)[w * image.channels() + c]);
  return out;
}

class ImageTools : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/crema_image_tools_XXXXXX";
    dir_ = mkdtemp(dir_template);
    root_ = dir_ + "/images/";
    fs::create_directories(root_ + "sub dir");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a random 3-channel H x W PNG under root_ and remembers it with its label.
  void AddImage(const std::string& relative, int label, int height = 5, int width = 7) {
    cv::Mat image(height, width, CV_8UC3);
    for (int h = 0; h < height; ++h)
      for (int w = 0; w < width * 3; ++w) image.ptr<uint8_t>(h)[w] = rng_() % 256;
    ASSERT_TRUE(cv::imwrite(root_ + relative, image));
    list_ += relative + " " + std::to_string(label) + "\n";
    good_.push_back({relative, label});
  }
  void AddCorrupt(const std::string& relative, int label) {
    std::ofstream(root_ + relative) << "this is not a PNG at all";
    list_ += relative + " " + std::to_string(label) + "\n";
  }
  void AddMissing(const std::string& relative, int label) {
    list_ += relative + " " + std::to_string(label) + "\n";
  }
  std::string WriteList(const std::string& name = "list.txt") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << list_;
    return path;
  }
  // Five good images (one with spaces in its path), one corrupt file, one missing entry.
  std::string StandardSet() {
    AddImage("a.png", 3);
    AddCorrupt("broken.png", 1);
    AddImage("sub dir/b c.png", 0);
    AddMissing("gone.png", 2);
    AddImage("d.png", 9);
    AddImage("e.png", 4);
    AddImage("f.png", 7);
    return WriteList();
  }

  // Runs a Data layer (TEST, no transforms unless given) over `db` for one batch.
  void DataBatch(const std::string& db, int batch, std::vector<int>* shape,
                 std::vector<float>* data, std::vector<float>* labels,
                 const std::string& transform = "") {
    pb::NetParameter param;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
        "name: 'reader' state { phase: TEST } layer { name: 'data' type: 'Data' top: 'data' "
        "top: 'label' " +
            transform + " data_param { source: '" + db + "' batch_size: " + std::to_string(batch) +
            " backend: LMDB } }",
        &param));
    Net net(param);
    net.Forward();
    const Blob& d = *net.blob_by_name("data");
    const Blob& l = *net.blob_by_name("label");
    *shape = d.shape();
    data->assign(d.cpu_data(), d.cpu_data() + d.count());
    labels->assign(l.cpu_data(), l.cpu_data() + l.count());
  }

  std::string dir_, root_, list_;
  std::vector<std::pair<std::string, int>> good_;
  std::mt19937 rng_{1234};
};

// ---------------------------------------------------------------------------------------
// convert_imageset
// ---------------------------------------------------------------------------------------

TEST_F(ImageTools, ConvertRoundTripSkipsBadImages) {
  const std::string list = StandardSet();
  ConvertImagesetOptions options;
  const ConvertImagesetResult result = ConvertImageset(root_, list, dir_ + "/db", options);
  EXPECT_EQ(result.entries, 7);
  EXPECT_EQ(result.written, 5);
  EXPECT_EQ(result.skipped, 2);
  EXPECT_EQ(result.skipped_files, (std::vector<std::string>{"broken.png", "gone.png"}));

  {
    LMDBReader reader(dir_ + "/db");
    EXPECT_EQ(reader.Entries(), 5u);
    std::vector<std::string> keys;
    for (reader.SeekToFirst(); reader.valid(); reader.Next()) keys.emplace_back(reader.key());
    EXPECT_EQ(keys,
              (std::vector<std::string>{"00000000_a.png", "00000002_sub dir/b c.png",
                                        "00000004_d.png", "00000005_e.png", "00000006_f.png"}));
    reader.SeekToFirst();
    pb::Datum datum;
    ASSERT_TRUE(datum.ParseFromArray(reader.value().data(), reader.value().size()));
    EXPECT_EQ(datum.channels(), 3);
    EXPECT_EQ(datum.height(), 5);
    EXPECT_EQ(datum.width(), 7);
    EXPECT_FALSE(datum.encoded());
    EXPECT_EQ(datum.label(), 3);
  }

  std::vector<int> shape;
  std::vector<float> data, labels;
  DataBatch(dir_ + "/db", 5, &shape, &data, &labels);
  EXPECT_EQ(shape, (std::vector<int>{5, 3, 5, 7}));
  std::vector<float> expected, expected_labels;
  for (const auto& [path, label] : good_) {
    const std::vector<float> pixels = Planar(cv::imread(root_ + path, cv::IMREAD_COLOR));
    expected.insert(expected.end(), pixels.begin(), pixels.end());
    expected_labels.push_back(static_cast<float>(label));
  }
  EXPECT_EQ(data, expected);
  EXPECT_EQ(labels, expected_labels);
}

TEST_F(ImageTools, ConvertEncodedRoundTrip) {
  const std::string list = StandardSet();
  ConvertImagesetOptions options;
  options.encoded = true;
  const ConvertImagesetResult result = ConvertImageset(root_, list, dir_ + "/db", options);
  EXPECT_EQ(result.written, 5);
  EXPECT_EQ(result.skipped, 2);
  {
    LMDBReader reader(dir_ + "/db");
    reader.SeekToFirst();
    pb::Datum datum;
    ASSERT_TRUE(datum.ParseFromArray(reader.value().data(), reader.value().size()));
    EXPECT_TRUE(datum.encoded());
    EXPECT_EQ(datum.data(), ReadAll(root_ + "a.png"));  // the file itself, as Caffe stores it
  }
  std::vector<int> shape;
  std::vector<float> data, labels;
  DataBatch(dir_ + "/db", 5, &shape, &data, &labels);
  EXPECT_EQ(shape, (std::vector<int>{5, 3, 5, 7}));
  std::vector<float> expected;
  for (const auto& entry : good_) {
    const std::vector<float> pixels = Planar(cv::imread(root_ + entry.first, cv::IMREAD_COLOR));
    expected.insert(expected.end(), pixels.begin(), pixels.end());
  }
  EXPECT_EQ(data, expected);
  EXPECT_EQ(labels, (std::vector<float>{3, 0, 9, 4, 7}));

  // encode_type png with --gray: re-encoded as 1-channel PNG (not the colour file's bytes).
  options.encoded = false;
  options.encode_type = "png";
  options.gray = true;
  ConvertImageset(root_, list, dir_ + "/db_gray", options);
  DataBatch(dir_ + "/db_gray", 5, &shape, &data, &labels);
  EXPECT_EQ(shape, (std::vector<int>{5, 1, 5, 7}));
  expected.clear();
  for (const auto& entry : good_) {
    const std::vector<float> pixels = Planar(cv::imread(root_ + entry.first, cv::IMREAD_GRAYSCALE));
    expected.insert(expected.end(), pixels.begin(), pixels.end());
  }
  EXPECT_EQ(data, expected);
}

TEST_F(ImageTools, ConvertResizeAndGray) {
  const std::string list = StandardSet();
  ConvertImagesetOptions options;
  options.resize_width = 4;
  options.resize_height = 3;
  options.gray = true;
  ConvertImageset(root_, list, dir_ + "/db", options);
  std::vector<int> shape;
  std::vector<float> data, labels;
  DataBatch(dir_ + "/db", 5, &shape, &data, &labels);
  EXPECT_EQ(shape, (std::vector<int>{5, 1, 3, 4}));
  std::vector<float> expected;
  for (const auto& entry : good_) {
    cv::Mat resized;
    cv::resize(cv::imread(root_ + entry.first, cv::IMREAD_GRAYSCALE), resized, cv::Size(4, 3));
    const std::vector<float> pixels = Planar(resized);
    expected.insert(expected.end(), pixels.begin(), pixels.end());
  }
  EXPECT_EQ(data, expected);

  // Only one of the two sizes is a mistake.
  options.resize_height = 0;
  EXPECT_ERROR_WITH(ConvertImageset(root_, list, dir_ + "/db2", options), "resize_width",
                    "resize_height");
}

TEST_F(ImageTools, ConvertShuffleIsSeeded) {
  for (int i = 0; i < 12; ++i) AddImage("img" + std::to_string(i) + ".png", i, 2, 2);
  const std::string list = WriteList();
  auto keys_of = [&](const std::string& db, bool shuffle, uint64_t seed) {
    ConvertImagesetOptions options;
    options.shuffle = shuffle;
    options.seed = seed;
    ConvertImageset(root_, list, db, options);
    LMDBReader reader(db);
    std::vector<std::string> keys;
    for (reader.SeekToFirst(); reader.valid(); reader.Next()) keys.emplace_back(reader.key());
    return keys;
  };
  const auto plain = keys_of(dir_ + "/plain", false, 0);
  const auto a = keys_of(dir_ + "/a", true, 0);
  const auto b = keys_of(dir_ + "/b", true, 0);
  const auto c = keys_of(dir_ + "/c", true, 5);
  EXPECT_EQ(plain[0], "00000000_img0.png");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, plain);
  EXPECT_NE(a, c);
  // Same set of images, whatever the order.
  auto paths = [](std::vector<std::string> keys) {
    for (auto& k : keys) k = k.substr(9);
    std::sort(keys.begin(), keys.end());
    return keys;
  };
  EXPECT_EQ(paths(a), paths(plain));
}

TEST_F(ImageTools, ConvertCheckSizeNamesOffender) {
  AddImage("a.png", 0, 5, 7);
  AddImage("b.png", 1, 5, 7);
  AddImage("odd one.png", 2, 6, 7);
  const std::string list = WriteList();
  ConvertImagesetOptions options;
  options.check_size = true;
  EXPECT_ERROR_WITH(ConvertImageset(root_, list, dir_ + "/db", options), "odd one.png", "3 x 6 x 7",
                    "a.png", "3 x 5 x 7");
  options.check_size = false;
  EXPECT_EQ(ConvertImageset(root_, list, dir_ + "/db_ok", options).written, 3);
}

TEST_F(ImageTools, ConvertUserErrors) {
  AddImage("a.png", 0);
  const std::string list = WriteList();
  ConvertImagesetOptions options;
  EXPECT_ERROR_WITH(ConvertImageset(dir_ + "/no_such_root", list, dir_ + "/db", options),
                    "no_such_root");
  EXPECT_ERROR_WITH(ConvertImageset(root_, dir_ + "/no_list.txt", dir_ + "/db", options),
                    "no_list.txt");
  std::ofstream(dir_ + "/empty.txt") << "\n\n";
  EXPECT_ERROR_WITH(ConvertImageset(root_, dir_ + "/empty.txt", dir_ + "/db", options), "empty.txt",
                    "no entries");
  std::ofstream(dir_ + "/bad.txt") << "a.png 1\nb.png one\n";
  EXPECT_ERROR_WITH(ConvertImageset(root_, dir_ + "/bad.txt", dir_ + "/db", options), "bad.txt:2",
                    "one");
  EXPECT_FALSE(fs::exists(dir_ + "/db"));  // no database for a list that fails to parse

  // Nothing readable: an empty (valid) database and zero written.
  std::ofstream(dir_ + "/missing.txt") << "x.png 1\ny.png 2\n";
  const ConvertImagesetResult result =
      ConvertImageset(root_, dir_ + "/missing.txt", dir_ + "/db_none", options);
  EXPECT_EQ(result.written, 0);
  EXPECT_EQ(result.skipped, 2);
  EXPECT_EQ(LMDBReader(dir_ + "/db_none").Entries(), 0u);
}

TEST_F(ImageTools, ConvertCommandLine) {
  const std::string list = StandardSet();
  CremaRun r = RunCrema("convert_imageset " + root_ + " " + list + " " + dir_ + "/db");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Wrote 5 of 7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("broken.png"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gone.png"), std::string::npos) << r.output;

  std::ofstream(dir_ + "/missing.txt") << "x.png 1\n";
  r = RunCrema("convert_imageset " + root_ + " " + dir_ + "/missing.txt " + dir_ + "/db2");
  EXPECT_EQ(r.status, 1) << r.output;
  r = RunCrema("convert_imageset " + dir_ + "/nope/ " + list + " " + dir_ + "/db3");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("nope"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Check failed"), std::string::npos) << r.output;
  r = RunCrema("convert_imageset --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("--resize_width"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------------------
// compute_image_mean
// ---------------------------------------------------------------------------------------

TEST_F(ImageTools, ComputeImageMeanKnownValues) {
  // Three 2 x 2 x 3 items: raw, float, and an encoded PNG (decoded as stored: BGR).
  const int C = 2, H = 2, W = 3, N = C * H * W;
  std::vector<std::vector<float>> items(3, std::vector<float>(N));
  for (int i = 0; i < N; ++i) {
    items[0][i] = static_cast<float>(i * 10);
    items[1][i] = 0.5f * i;
  }
  {
    LMDBWriter writer(dir_ + "/db");
    pb::Datum raw;
    raw.set_channels(C);
    raw.set_height(H);
    raw.set_width(W);
    std::string bytes;
    for (float v : items[0]) bytes += static_cast<char>(static_cast<uint8_t>(v));
    raw.set_data(bytes);
    writer.Put("a", raw.SerializeAsString());
    pb::Datum flt;
    flt.set_channels(C);
    flt.set_height(H);
    flt.set_width(W);
    for (float v : items[1]) flt.add_float_data(v);
    writer.Put("b", flt.SerializeAsString());
    // 2-channel PNGs do not exist; a 3-channel one would change C. Use raw again instead,
    // and test the encoded path separately below.
    pb::Datum raw2 = raw;
    std::string bytes2;
    for (int i = 0; i < N; ++i) {
      items[2][i] = static_cast<float>(255 - i);
      bytes2 += static_cast<char>(255 - i);
    }
    raw2.set_data(bytes2);
    writer.Put("c", raw2.SerializeAsString());
    writer.Close();
  }
  const ImageMean mean = ComputeImageMean(dir_ + "/db", dir_ + "/mean.binaryproto");
  EXPECT_EQ(mean.count, 3);
  EXPECT_EQ(mean.channels, C);
  EXPECT_EQ(mean.height, H);
  EXPECT_EQ(mean.width, W);
  pb::BlobProto proto;
  ReadProtoFromBinaryFile(dir_ + "/mean.binaryproto", &proto);
  EXPECT_EQ(proto.num(), 1);
  EXPECT_EQ(proto.channels(), C);
  EXPECT_EQ(proto.height(), H);
  EXPECT_EQ(proto.width(), W);
  ASSERT_EQ(proto.data_size(), N);
  for (int i = 0; i < N; ++i) {
    const float expected = (items[0][i] + items[1][i] + items[2][i]) / 3.f;
    EXPECT_FLOAT_EQ(proto.data(i), expected) << i;
    EXPECT_FLOAT_EQ(mean.mean[i], expected) << i;
  }
  for (int c = 0; c < C; ++c) {
    double total = 0;
    for (int i = 0; i < H * W; ++i) total += proto.data(c * H * W + i);
    EXPECT_NEAR(mean.channel_mean[c], total / (H * W), 1e-9);
  }
  // The mean is usable as a Blob (and as a mean_file).
  Blob blob;
  blob.FromProto(proto);
  EXPECT_EQ(blob.shape(), (std::vector<int>{1, C, H, W}));
}

TEST_F(ImageTools, ComputeImageMeanEncodedAndErrors) {
  AddImage("a.png", 0, 3, 4);
  AddImage("b.png", 1, 3, 4);
  const std::string list = WriteList();
  ConvertImagesetOptions options;
  options.encoded = true;
  ConvertImageset(root_, list, dir_ + "/db", options);
  const ImageMean mean = ComputeImageMean(dir_ + "/db", "");
  ASSERT_EQ(mean.channels, 3);
  const std::vector<float> a = Planar(cv::imread(root_ + "a.png"));
  const std::vector<float> b = Planar(cv::imread(root_ + "b.png"));
  ASSERT_EQ(mean.mean.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(mean.mean[i], (a[i] + b[i]) / 2) << i;

  // Items of different sizes.
  AddImage("c.png", 2, 4, 4);
  const std::string list2 = WriteList("list2.txt");
  ConvertImageset(root_, list2, dir_ + "/db2", ConvertImagesetOptions());
  EXPECT_ERROR_WITH(ComputeImageMean(dir_ + "/db2", ""), "c.png", "one size");
  // Empty database.
  LMDBWriter(dir_ + "/empty").Close();
  EXPECT_ERROR_WITH(ComputeImageMean(dir_ + "/empty", ""), "empty");
}

// ---------------------------------------------------------------------------------------
// extract_features
// ---------------------------------------------------------------------------------------

// data [2, 3] = 1; ip1 = 0.5 * 3 + 0.25 = 1.75 ([2, 2]); ip2 = 2 * 2 * 1.75 - 1 = 6 ([2, 4]);
// map [2, 1, 2, 2] = 3.
const char* kFeatureNet = R"(name: "features"
state { phase: TEST }
layer { name: "data" type: "DummyData" top: "data" top: "map"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 dim: 2 dim: 2 }
                     data_filler { type: "constant" value: 1 }
                     data_filler { type: "constant" value: 3 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 2 weight_filler { type: "constant" value: 0.5 }
                        bias_filler { type: "constant" value: 0.25 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 4 weight_filler { type: "constant" value: 2 }
                        bias_filler { type: "constant" value: -1 } } }
)";

std::unique_ptr<Net> FeatureNet() {
  pb::NetParameter param;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(kFeatureNet, &param));
  return std::make_unique<Net>(param);
}

// Parses a float32 NPY 1.0 file: returns the header dict and the values.
std::string ReadNpy(const std::string& path, std::vector<float>* values) {
  const std::string bytes = ReadAll(path);
  EXPECT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len =
      static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  const std::string header = bytes.substr(10, header_len);
  const size_t data_bytes = bytes.size() - 10 - header_len;
  EXPECT_EQ(data_bytes % 4, 0u);
  values->resize(data_bytes / 4);
  std::memcpy(values->data(), bytes.data() + 10 + header_len, data_bytes);
  return header;
}

TEST_F(ImageTools, ExtractFeaturesNpy) {
  auto net = FeatureNet();
  const int64_t items = ExtractFeatures(net.get(), {"ip1", "ip2", "map"},
                                        {dir_ + "/ip1.npy", dir_ + "/ip2.npy", dir_ + "/map.npy"},
                                        3, FeatureFormat::NPY);
  EXPECT_EQ(items, 6);
  std::vector<float> values;
  std::string header = ReadNpy(dir_ + "/ip1.npy", &values);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (6, 2)"), std::string::npos) << header;
  EXPECT_EQ(values, std::vector<float>(12, 1.75f));
  header = ReadNpy(dir_ + "/ip2.npy", &values);
  EXPECT_NE(header.find("'shape': (6, 4)"), std::string::npos) << header;
  EXPECT_EQ(values, std::vector<float>(24, 6.f));
  header = ReadNpy(dir_ + "/map.npy", &values);
  EXPECT_NE(header.find("'shape': (6, 1, 2, 2)"), std::string::npos) << header;
  EXPECT_EQ(values, std::vector<float>(24, 3.f));
}

TEST_F(ImageTools, ExtractFeaturesCsvAndLmdb) {
  auto net = FeatureNet();
  EXPECT_EQ(ExtractFeatures(net.get(), {"ip1"}, {dir_ + "/ip1.csv"}, 2, FeatureFormat::CSV), 4);
  EXPECT_EQ(ReadAll(dir_ + "/ip1.csv"), "1.75,1.75\n1.75,1.75\n1.75,1.75\n1.75,1.75\n");

  EXPECT_EQ(ExtractFeatures(net.get(), {"ip2"}, {dir_ + "/ip2_lmdb"}, 3, FeatureFormat::LMDB), 6);
  LMDBReader reader(dir_ + "/ip2_lmdb");
  EXPECT_EQ(reader.Entries(), 6u);
  int index = 0;
  for (reader.SeekToFirst(); reader.valid(); reader.Next(), ++index) {
    char key[16];
    std::snprintf(key, sizeof key, "%010d", index);
    EXPECT_EQ(std::string(reader.key()), key);
    pb::Datum datum;
    ASSERT_TRUE(datum.ParseFromArray(reader.value().data(), reader.value().size()));
    EXPECT_EQ(datum.channels(), 4);
    EXPECT_EQ(datum.height(), 1);
    EXPECT_EQ(datum.width(), 1);
    ASSERT_EQ(datum.float_data_size(), 4);
    for (float v : datum.float_data()) EXPECT_EQ(v, 6.f);
  }
  EXPECT_EQ(index, 6);

  EXPECT_EQ(ParseFeatureFormat("", "x/feat.NPY"), FeatureFormat::NPY);
  EXPECT_EQ(ParseFeatureFormat("", "feat.csv"), FeatureFormat::CSV);
  EXPECT_EQ(ParseFeatureFormat("", "feat_lmdb"), FeatureFormat::LMDB);
  EXPECT_EQ(ParseFeatureFormat("csv", "feat.npy"), FeatureFormat::CSV);
  EXPECT_ERROR_WITH(ParseFeatureFormat("hdf5", "x"), "hdf5");
}

TEST_F(ImageTools, ExtractFeaturesUnknownBlob) {
  auto net = FeatureNet();
  EXPECT_ERROR_WITH(ExtractFeatures(net.get(), {"fc7"}, {dir_ + "/fc7.npy"}, 1, FeatureFormat::NPY),
                    "fc7", "data", "ip1", "ip2", "map");
  EXPECT_ERROR_WITH(
      ExtractFeatures(net.get(), {"ip1", "ip2"}, {dir_ + "/x.npy"}, 1, FeatureFormat::NPY),
      "2 blob", "1 output");
}

TEST_F(ImageTools, ExtractFeaturesCommandLine) {
  std::ofstream(dir_ + "/net.prototxt") << kFeatureNet;
  CremaRun r = RunCrema("extract_features --model " + dir_ +
                        "/net.prototxt --blobs ip1,ip2 "
                        "--iterations 2 --output " +
                        dir_ + "/a.npy," + dir_ + "/b.npy");
  EXPECT_EQ(r.status, 0) << r.output;
  std::vector<float> values;
  EXPECT_NE(ReadNpy(dir_ + "/b.npy", &values).find("(4, 4)"), std::string::npos);
  EXPECT_EQ(values, std::vector<float>(16, 6.f));
  r = RunCrema("extract_features --model " + dir_ +
               "/net.prototxt --blobs nope --iterations 1 "
               "--output " +
               dir_ + "/c.csv");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("ip2"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------------------
// draw_net
// ---------------------------------------------------------------------------------------

const char* kDrawNet = R"(name: "drawme"
layer { name: "input" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 1 pad: 1
                            weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "Softmax" bottom: "ip1" top: "prob" include { phase: TEST } }
)";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(ImageTools, DrawNetDotWithShapes) {
  pb::NetParameter param;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kDrawNet, &param));
  std::string warning = "unset";
  DrawNetOptions options;
  const std::string dot = NetToDot(param, options, &warning);
  EXPECT_EQ(warning, "");
  for (const char* part :
       {"digraph \"drawme\"", "rankdir=LR", "conv1\\n(Convolution)", "kernel size: 3", "stride: 1",
        "pad: 1", "num_output: 4", "(Pooling MAX)", "num_output: 10", "(InnerProduct)",
        "relu1\\n(ReLU)", "data\\n2x1x8x8", "conv1\\n2x4x8x8", "pool1\\n2x4x4x4", "ip1\\n2x10",
        "prob\\n2x10", "shape=octagon", "#90EE90"})
    EXPECT_TRUE(Contains(dot, part)) << part << "\n" << dot;
  // The in-place layer has edges to and from its blob.
  EXPECT_TRUE(Contains(dot, "\"blob_conv1\" -> \"layer_2_relu1\"")) << dot;
  EXPECT_TRUE(Contains(dot, "\"layer_2_relu1\" -> \"blob_conv1\"")) << dot;

  // TRAIN drops the TEST-only layer; TB separates words with spaces.
  options.phase = "TRAIN";
  options.rankdir = "TB";
  const std::string train = NetToDot(param, options, &warning);
  EXPECT_FALSE(Contains(train, "prob")) << train;
  EXPECT_TRUE(Contains(train, "conv1 (Convolution) kernel size: 3")) << train;
  EXPECT_TRUE(Contains(train, "rankdir=TB")) << train;
  options.rankdir = "UP";
  EXPECT_ERROR_WITH(NetToDot(param, options), "rankdir", "UP");
}

TEST_F(ImageTools, DrawNetWithoutShapesWhenNetCannotBeBuilt) {
  pb::NetParameter param;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "name: 'lmdbnet' layer { name: 'data' type: 'Data' top: 'data' top: 'label' "
      "data_param { source: '" +
          dir_ +
          "/no_such_lmdb' batch_size: 4 backend: LMDB } } "
          "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip' "
          "inner_product_param { num_output: 3 } }",
      &param));
  std::string warning;
  const std::string dot = NetToDot(param, DrawNetOptions(), &warning);
  EXPECT_TRUE(Contains(warning, "without blob shapes")) << warning;
  EXPECT_TRUE(Contains(warning, "no_such_lmdb")) << warning;
  EXPECT_TRUE(Contains(dot, "label=\"ip\"")) << dot;  // blob with no shape line
  EXPECT_TRUE(Contains(dot, "Batch 4")) << dot;
}

TEST_F(ImageTools, DrawNetPngAndMissingDot) {
  std::ofstream(dir_ + "/net.prototxt") << kDrawNet;
  DrawNet(dir_ + "/net.prototxt", dir_ + "/net.dot", DrawNetOptions());
  EXPECT_TRUE(Contains(ReadAll(dir_ + "/net.dot"), "pool1\\n2x4x4x4"));
  EXPECT_ERROR_WITH(DrawNet(dir_ + "/net.prototxt", dir_ + "/net.bmp", DrawNetOptions()),
                    "net.bmp");

  const bool have_dot = std::system("command -v dot >/dev/null 2>&1") == 0;
  if (have_dot) {
    DrawNet(dir_ + "/net.prototxt", dir_ + "/net.png", DrawNetOptions());
    const std::string png = ReadAll(dir_ + "/net.png");
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  }
  // Without dot on PATH: a clear error.
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", (dir_ + "/empty_bin").c_str(), 1);
  EXPECT_ERROR_WITH(DrawNet(dir_ + "/net.prototxt", dir_ + "/net2.svg", DrawNetOptions()), "dot",
                    "graphviz");
  setenv("PATH", saved.c_str(), 1);

  const CremaRun r =
      RunCrema("draw_net " + dir_ + "/net.prototxt " + dir_ + "/cli.dot --rankdir TB --phase TEST");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(Contains(ReadAll(dir_ + "/cli.dot"), "rankdir=TB"));
}

// ---------------------------------------------------------------------------------------
// mnist_to_images
// ---------------------------------------------------------------------------------------

TEST_F(ImageTools, MnistToImagesWritesPngsAndList) {
  // Three 2 x 3 images with labels 4, 0, 4.
  auto be32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
    return s;
  };
  std::string images = be32(2051) + be32(3) + be32(2) + be32(3);
  for (int i = 0; i < 18; ++i) images += static_cast<char>(i * 14);
  std::string labels = be32(2049) + be32(3) + std::string("\x04\x00\x04", 3);
  std::ofstream(dir_ + "/img.idx", std::ios::binary) << images;
  std::ofstream(dir_ + "/lab.idx", std::ios::binary) << labels;

  EXPECT_EQ(MnistToImages(dir_ + "/img.idx", dir_ + "/lab.idx", dir_ + "/out", "train", 0), 3);
  EXPECT_EQ(ReadAll(dir_ + "/out/train.txt"),
            "train/4/00000.png 4\ntrain/0/00001.png 0\ntrain/4/00002.png 4\n");
  const cv::Mat second = cv::imread(dir_ + "/out/train/0/00001.png", cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second.channels(), 1);
  EXPECT_EQ(second.rows, 2);
  EXPECT_EQ(second.cols, 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(second.ptr<uint8_t>(i / 3)[i % 3], (6 + i) * 14) << i;

  EXPECT_EQ(MnistToImages(dir_ + "/img.idx", dir_ + "/lab.idx", dir_ + "/out", "test", 2), 2);
  EXPECT_EQ(ReadAll(dir_ + "/out/test.txt"), "test/4/00000.png 4\ntest/0/00001.png 0\n");

  // And the list feeds convert_imageset directly.
  ConvertImagesetOptions options;
  options.gray = true;
  EXPECT_EQ(ConvertImageset(dir_ + "/out", dir_ + "/out/train.txt", dir_ + "/db", options).written,
            3);

  EXPECT_ERROR_WITH(MnistToImages(dir_ + "/lab.idx", dir_ + "/img.idx", dir_ + "/o", "x", 0),
                    "lab.idx", "2051");
}

}  // namespace
}  // namespace crema
