// Input, DummyData, MemoryData and Data layers.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/db.hpp"
#include "crema/layer.hpp"
#include "layers/data.hpp"
#include "layers/dummy_data.hpp"
#include "layers/input.hpp"
#include "layers/memory_data.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::LayerParam;
using testing::TempDir;
using testing::Values;

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

TEST(InputLayer, OneShapeForAllTops) {
  InputLayer layer(LayerParam(
      "name: 'in' type: 'Input' top: 'a' top: 'b' input_param { shape { dim: 2 dim: 3 } }"));
  Blob a, b;
  layer.SetUp({}, {&a, &b});
  EXPECT_EQ(a.shape(), (std::vector<int>{2, 3}));
  EXPECT_EQ(b.shape(), (std::vector<int>{2, 3}));
  layer.Forward({}, {&a, &b});
  EXPECT_EQ(a.shape(), (std::vector<int>{2, 3}));
}

TEST(InputLayer, ShapePerTopAndNoShape) {
  InputLayer layer(
      LayerParam("name: 'in' type: 'Input' input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } "
                 "shape { dim: 1 } }"));
  Blob a, b;
  layer.SetUp({}, {&a, &b});
  EXPECT_EQ(a.shape(), (std::vector<int>{1, 3, 8, 8}));
  EXPECT_EQ(b.shape(), (std::vector<int>{1}));

  InputLayer free_shape(LayerParam("name: 'in2' type: 'Input'"));
  Blob c(std::vector<int>{4, 5});
  free_shape.SetUp({}, {&c});
  EXPECT_EQ(c.shape(), (std::vector<int>{4, 5}));  // left alone
}

TEST(InputLayer, WrongShapeCount) {
  InputLayer layer(
      LayerParam("name: 'in' type: 'Input' input_param { shape { dim: 1 } shape { dim: 2 } }"));
  Blob a, b, c;
  EXPECT_ERROR_WITH(layer.SetUp({}, {&a, &b, &c}), "in", "shape");
}

// ---------------------------------------------------------------------------------------
// DummyData
// ---------------------------------------------------------------------------------------

TEST(DummyDataLayer, DefaultIsZerosAndShapes) {
  DummyDataLayer layer(
      LayerParam("name: 'dummy' type: 'DummyData' dummy_data_param { shape { dim: 2 dim: 3 } "
                 "shape { dim: 4 } }"));
  Blob a, b;
  layer.SetUp({}, {&a, &b});
  EXPECT_EQ(a.shape(), (std::vector<int>{2, 3}));
  EXPECT_EQ(b.shape(), (std::vector<int>{4}));
  layer.Forward({}, {&a, &b});
  EXPECT_EQ(Values(a), std::vector<float>(6, 0.f));
  EXPECT_EQ(Values(b), std::vector<float>(4, 0.f));
}

TEST(DummyDataLayer, LegacyDimsAndConstantFilledOnce) {
  DummyDataLayer layer(
      LayerParam("name: 'dummy' type: 'DummyData' dummy_data_param { num: 2 channels: 1 height: 2 "
                 "width: 3 num: 1 channels: 1 height: 1 width: 1 "
                 "data_filler { type: 'constant' value: 7 } }"));
  Blob a, b;
  layer.SetUp({}, {&a, &b});
  EXPECT_EQ(a.shape(), (std::vector<int>{2, 1, 2, 3}));
  EXPECT_EQ(b.shape(), (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(Values(a), std::vector<float>(12, 7.f));  // filled at setup
  a.mutable_cpu_data()[0] = -1.f;
  layer.Forward({}, {&a, &b});
  EXPECT_EQ(a.cpu_data()[0], -1.f) << "constant tops are not refilled (as in Caffe)";
  EXPECT_EQ(b.cpu_data()[0], 7.f);
}

TEST(DummyDataLayer, RandomFillerRefillsEveryForward) {
  DummyDataLayer layer(
      LayerParam("name: 'dummy' type: 'DummyData' top: 'x' top: 'y' dummy_data_param { "
                 "shape { dim: 50 } data_filler { type: 'gaussian' std: 1 } "
                 "data_filler { type: 'constant' value: 2 } }"));
  Blob x, y;
  layer.SetUp({}, {&x, &y});
  layer.Forward({}, {&x, &y});
  const std::vector<float> first = Values(x);
  layer.Forward({}, {&x, &y});
  EXPECT_NE(Values(x), first);
  EXPECT_EQ(Values(y), std::vector<float>(50, 2.f));
}

TEST(DummyDataLayer, BadParameters) {
  Blob a, b, c;
  DummyDataLayer fillers(
      LayerParam("name: 'dd' type: 'DummyData' dummy_data_param { shape { dim: 1 } "
                 "data_filler { value: 1 } data_filler { value: 2 } }"));
  EXPECT_ERROR_WITH(fillers.SetUp({}, {&a, &b, &c}), "dd", "data_filler");
  DummyDataLayer both(LayerParam(
      "name: 'dd2' type: 'DummyData' dummy_data_param { shape { dim: 1 } num: 1 channels: 1 "
      "height: 1 width: 1 }"));
  EXPECT_ERROR_WITH(both.SetUp({}, {&a}), "dd2");
  DummyDataLayer shapes(LayerParam(
      "name: 'dd3' type: 'DummyData' dummy_data_param { shape { dim: 1 } shape { dim: 2 } }"));
  EXPECT_ERROR_WITH(shapes.SetUp({}, {&a, &b, &c}), "dd3", "shape");
}

// ---------------------------------------------------------------------------------------
// MemoryData
// ---------------------------------------------------------------------------------------

TEST(MemoryDataLayer, BatchesInOrderAndWrap) {
  MemoryDataLayer layer(
      LayerParam("name: 'mem' type: 'MemoryData' memory_data_param { batch_size: 2 channels: 1 "
                 "height: 1 width: 3 }"));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  EXPECT_EQ(data.shape(), (std::vector<int>{2, 1, 1, 3}));
  EXPECT_EQ(label.shape(), (std::vector<int>{2}));
  EXPECT_ERROR_WITH(layer.Forward({}, {&data, &label}), "mem", "Reset");

  std::vector<float> items(18), labels(6);
  for (int i = 0; i < 18; ++i) items[i] = static_cast<float>(i);
  for (int i = 0; i < 6; ++i) labels[i] = 10.f + i;
  layer.Reset(items.data(), labels.data(), 6);
  for (int round = 0; round < 2; ++round)
    for (int b = 0; b < 3; ++b) {
      layer.Forward({}, {&data, &label});
      EXPECT_EQ(Values(data), std::vector<float>(items.begin() + 6 * b, items.begin() + 6 * b + 6));
      EXPECT_EQ(Values(label), (std::vector<float>{10.f + 2 * b, 11.f + 2 * b}));
    }
  layer.SeekBatch(2);
  layer.Forward({}, {&data, &label});
  EXPECT_EQ(Values(label), (std::vector<float>{14.f, 15.f}));
}

TEST(MemoryDataLayer, CountMustBeAMultipleOfTheBatch) {
  MemoryDataLayer layer(
      LayerParam("name: 'mem' type: 'MemoryData' memory_data_param { batch_size: 4 channels: 1 "
                 "height: 1 width: 1 }"));
  Blob data, label;
  layer.SetUp({}, {&data, &label});
  std::vector<float> items(6), labels(6);
  EXPECT_ERROR_WITH(layer.Reset(items.data(), labels.data(), 6), "mem", "6", "4");
  MemoryDataLayer zero(
      LayerParam("name: 'mem0' type: 'MemoryData' memory_data_param { "
                 "batch_size: 4 channels: 0 height: 1 width: 1 }"));
  EXPECT_ERROR_WITH(zero.SetUp({}, {&data, &label}), "mem0");
}

// ---------------------------------------------------------------------------------------
// Data (LMDB)
// ---------------------------------------------------------------------------------------

constexpr int kC = 2, kH = 3, kW = 4, kItem = kC * kH * kW;

uint8_t ItemPixel(int item, int j) {
  return static_cast<uint8_t>((item * 37 + j * 5) % 251);
}

// An LMDB of n Datums kC x kH x kW; item i has label i and pixels ItemPixel(i, j).
std::string WriteDb(const std::string& dir, int n, const std::string& name = "db") {
  const std::string path = dir + "/" + name;
  testing::WriteDatumLmdb(
      path, n, kC, kH, kW, ItemPixel, [](int i) { return i; },
      /*commit_every=*/3);
  return path;
}

std::unique_ptr<DataLayer> MakeDataLayer(const std::string& source, int batch_size,
                                         const std::string& extra = "",
                                         const std::string& name = "data") {
  return std::make_unique<DataLayer>(LayerParam(
      "name: '" + name + "' type: 'Data' top: 'data' top: 'label' data_param { source: '" + source +
      "' backend: LMDB batch_size: " + std::to_string(batch_size) + " } " + extra));
}

struct BatchValues {
  std::vector<float> data, label;
  bool operator==(const BatchValues& o) const { return data == o.data && label == o.label; }
};

BatchValues ForwardOnce(DataLayer* layer, Blob* data, Blob* label) {
  layer->Forward({}, {data, label});
  return {Values(*data), Values(*label)};
}

TEST(DataLayer, BatchesFollowTheDatabaseAndWrap) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 10);
  auto layer = MakeDataLayer(db, 4);
  Blob data, label;
  layer->SetUp({}, {&data, &label});
  EXPECT_EQ(data.shape(), (std::vector<int>{4, kC, kH, kW}));
  EXPECT_EQ(label.shape(), (std::vector<int>{4}));
  // Items: 0-3, 4-7, 8 9 0 1 (wrap), 2-5, ...
  for (int b = 0; b < 6; ++b) {
    const BatchValues batch = ForwardOnce(layer.get(), &data, &label);
    for (int i = 0; i < 4; ++i) {
      const int item = (b * 4 + i) % 10;
      ASSERT_EQ(batch.label[i], static_cast<float>(item)) << "batch " << b;
      for (int j = 0; j < kItem; ++j)
        ASSERT_EQ(batch.data[i * kItem + j], ItemPixel(item, j)) << "batch " << b;
    }
  }
  EXPECT_EQ(layer->next_batch(), 6);
}

TEST(DataLayer, RandSkipScaleAndSingleTop) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 10);
  DataLayer layer(LayerParam("name: 'd' type: 'Data' top: 'data' data_param { source: '" + db +
                             "' backend: LMDB batch_size: 3 rand_skip: 8 prefetch: 1 } "
                             "transform_param { scale: 0.5 }"));
  Blob data;
  layer.SetUp({}, {&data});
  layer.Forward({}, {&data});
  const int items[3] = {8, 9, 0};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < kItem; ++j)
      ASSERT_EQ(data.cpu_data()[i * kItem + j], ItemPixel(items[i], j) * 0.5f);
}

TEST(DataLayer, SeekBatchEqualsReadingAndIsDeterministic) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 7);
  const std::string transform = "transform_param { crop_size: 2 mirror: true }";
  Context::set_random_seed(99);
  std::vector<BatchValues> sequential;
  {
    auto layer = MakeDataLayer(db, 3, transform);
    Blob data, label;
    layer->SetUp({}, {&data, &label});
    EXPECT_EQ(data.shape(), (std::vector<int>{3, kC, 2, 2}));
    for (int b = 0; b < 8; ++b) sequential.push_back(ForwardOnce(layer.get(), &data, &label));
  }
  // Random crops and mirrors do vary between batches that hold the same items.
  // (7 items, batch 3: batch 7 starts at item 0 again, like batch 0.)
  EXPECT_EQ(sequential[0].label, (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(sequential[7].label, (std::vector<float>{0, 1, 2}));
  EXPECT_NE(sequential[0].data, sequential[7].data);

  // The same seed gives the same batches, in any order, and from any starting point (the
  // transformer's seed is drawn at setup, as in Caffe, so the generator is seeded again).
  Context::set_random_seed(99);
  {
    auto layer = MakeDataLayer(db, 3, transform);
    Blob data, label;
    layer->SetUp({}, {&data, &label});
    layer->SeekBatch(5);
    EXPECT_EQ(ForwardOnce(layer.get(), &data, &label), sequential[5]);
    EXPECT_EQ(ForwardOnce(layer.get(), &data, &label), sequential[6]);
    layer->SeekBatch(2);
    EXPECT_EQ(ForwardOnce(layer.get(), &data, &label), sequential[2]);
    layer->SeekBatch(0);
    for (int b = 0; b < 8; ++b) EXPECT_EQ(ForwardOnce(layer.get(), &data, &label), sequential[b]);
  }
  // Another seed: other crops.
  Context::set_random_seed(100);
  {
    auto layer = MakeDataLayer(db, 3, transform);
    Blob data, label;
    layer->SetUp({}, {&data, &label});
    bool any_different = false;
    for (int b = 0; b < 8; ++b)
      any_different |= !(ForwardOnce(layer.get(), &data, &label) == sequential[b]);
    EXPECT_TRUE(any_different);
  }
  Context::set_random_seed(1701);  // test_main's seed
}

TEST(DataLayer, CropsAreCropsOfTheRightItem) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 5);
  auto layer = MakeDataLayer(db, 5, "transform_param { crop_size: 2 mirror: true }");
  Blob data, label;
  layer->SetUp({}, {&data, &label});
  for (int round = 0; round < 3; ++round) {
    layer->Forward({}, {&data, &label});
    for (int i = 0; i < 5; ++i) {
      bool found = false;
      for (int ho = 0; ho <= kH - 2 && !found; ++ho)
        for (int wo = 0; wo <= kW - 2 && !found; ++wo)
          for (int m = 0; m < 2 && !found; ++m) {
            bool same = true;
            for (int c = 0; c < kC; ++c)
              for (int h = 0; h < 2; ++h)
                for (int w = 0; w < 2; ++w) {
                  const int src = (c * kH + h + ho) * kW + w + wo;
                  const int dst = i * kC * 4 + (c * 2 + h) * 2 + (m ? 1 - w : w);
                  same &= data.cpu_data()[dst] == ItemPixel(i, src);
                }
            found = same;
          }
      EXPECT_TRUE(found) << "item " << i;
    }
  }
}

// Caffe's DataTransformer draws mirror (Rand(2)), then h_off and w_off (Rand(H - crop + 1),
// Rand(W - crop + 1)) per item, Rand(n) = rng() % n, from one Mersenne Twister seeded by the
// second of the two seeds a prefetching data layer takes from the main generator at setup
// (InitRand runs twice); the prefetch thread's seed is the third. The crops and mirrors are
// those, batch after batch, and again after a seek.
TEST(DataLayer, CropsAndMirrorsAreCaffes) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 5);
  Context::set_random_seed(5);
  std::mt19937 main_rng = Context::rng();  // what setup will draw from
  main_rng();                              // the transformer's first seed, replaced
  std::mt19937 caffe(static_cast<uint32_t>(main_rng()));
  auto layer = MakeDataLayer(db, 3, "transform_param { crop_size: 2 mirror: true }");
  Blob data, label;
  layer->SetUp({}, {&data, &label});
  std::vector<std::vector<float>> expected;
  for (int b = 0; b < 4; ++b) {
    std::vector<float> batch;
    for (int i = 0; i < 3; ++i) {
      const int item = (b * 3 + i) % 5;
      const bool mirror = caffe() % 2 != 0;
      const int h_off = static_cast<int>(caffe() % (kH - 2 + 1));
      const int w_off = static_cast<int>(caffe() % (kW - 2 + 1));
      for (int c = 0; c < kC; ++c)
        for (int h = 0; h < 2; ++h)
          for (int w = 0; w < 2; ++w)
            batch.push_back(
                ItemPixel(item, (c * kH + h + h_off) * kW + (mirror ? 1 - w : w) + w_off));
    }
    expected.push_back(batch);
  }
  for (int b = 0; b < 4; ++b)
    EXPECT_EQ(ForwardOnce(layer.get(), &data, &label).data, expected[b]) << b;
  layer->SeekBatch(1);
  EXPECT_EQ(ForwardOnce(layer.get(), &data, &label).data, expected[1]);
  EXPECT_EQ(ForwardOnce(layer.get(), &data, &label).data, expected[2]);
  Context::set_random_seed(1701);  // test_main's seed
}

TEST(DataLayer, MissingDatabaseNamesThePath) {
  const std::string path = "/tmp/crema_missing_lmdb_31337";
  auto layer = MakeDataLayer(path, 2, "", "mnist");
  Blob data, label;
  EXPECT_ERROR_WITH(layer->SetUp({}, {&data, &label}), path, "mnist");
}

TEST(DataLayer, LevelDbIsRefused) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 2);
  DataLayer layer(LayerParam("name: 'd' type: 'Data' top: 'data' data_param { source: '" + db +
                             "' backend: LEVELDB batch_size: 1 }"));
  Blob data;
  EXPECT_ERROR_WITH(layer.SetUp({}, {&data}), "LMDB only");
}

TEST(DataLayer, BadParameters) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 2);
  Blob data, label;
  auto zero = MakeDataLayer(db, 0, "", "zero");
  EXPECT_ERROR_WITH(zero->SetUp({}, {&data, &label}), "zero", "batch_size");
  auto crop = MakeDataLayer(db, 1, "transform_param { crop_size: 5 }", "crop");
  EXPECT_ERROR_WITH(crop->SetUp({}, {&data, &label}), "crop", "crop_size");
}

TEST(DataLayer, EntryOfAnotherShapeNamesTheKey) {
  TempDir dir;
  const std::string path = dir.path() + "/mixed";
  {
    LMDBWriter writer(path);
    for (int i = 0; i < 4; ++i) {
      pb::Datum datum;
      datum.set_channels(1);
      datum.set_height(2);
      datum.set_width(i == 2 ? 3 : 2);
      datum.set_data(std::string(i == 2 ? 6 : 4, '\1'));
      writer.Put("key" + std::to_string(i), datum.SerializeAsString());
    }
    writer.Close();
  }
  auto layer = MakeDataLayer(path, 2, "", "mixed_layer");
  Blob data, label;
  layer->SetUp({}, {&data, &label});
  layer->Forward({}, {&data, &label});  // key0, key1
  EXPECT_ERROR_WITH(layer->Forward({}, {&data, &label}), "key2", "mixed_layer");
  // The error sticks until the layer is repositioned.
  EXPECT_THROW(layer->Forward({}, {&data, &label}), Error);
  layer->SeekBatch(0);
  layer->Forward({}, {&data, &label});
  EXPECT_EQ(Values(data), std::vector<float>(8, 1.f));

  // With a crop every entry fits.
  auto cropped = MakeDataLayer(path, 2, "transform_param { crop_size: 2 }", "cropped");
  cropped->SetUp({}, {&data, &label});
  for (int b = 0; b < 3; ++b) cropped->Forward({}, {&data, &label});
}

TEST(DataLayer, CorruptEntryIsAnErrorNotACrash) {
  TempDir dir;
  const std::string path = dir.path() + "/corrupt";
  {
    LMDBWriter writer(path);
    pb::Datum datum;
    datum.set_channels(1);
    datum.set_height(1);
    datum.set_width(1);
    datum.set_data("x");
    writer.Put("a", datum.SerializeAsString());
    writer.Put("b", std::string("\x22\x7f\x01\x02", 4));  // bytes field cut short
    writer.Close();
  }
  auto layer = MakeDataLayer(path, 2, "", "corrupt_layer");
  Blob data, label;
  layer->SetUp({}, {&data, &label});
  EXPECT_ERROR_WITH(layer->Forward({}, {&data, &label}), "'b'", "corrupt_layer", path);
}

TEST(DataLayer, DestroyWhileProducing) {
  TempDir dir;
  const std::string db = WriteDb(dir.path(), 50);
  for (int prefetch : {1, 2, 8}) {
    auto layer = std::make_unique<DataLayer>(
        LayerParam("name: 'p' type: 'Data' top: 'data' top: 'label' data_param { source: '" + db +
                   "' backend: LMDB batch_size: 4 prefetch: " + std::to_string(prefetch) + " }"));
    Blob data, label;
    layer->SetUp({}, {&data, &label});
    layer->Forward({}, {&data, &label});
    EXPECT_EQ(label.cpu_data()[0], 0.f);
    layer->Forward({}, {&data, &label});
    EXPECT_EQ(label.cpu_data()[0], 4.f);
    layer.reset();  // joins the producer, which may be blocked on a full queue
  }
}

}  // namespace
}  // namespace crema
