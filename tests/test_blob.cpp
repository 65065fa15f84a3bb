#include <gtest/gtest.h>

#include "crema.pb.h"
#include "crema/blob.hpp"

namespace crema {
namespace {

TEST(Blob, ShapeCountAndLegacyView) {
  Blob blob(2, 3, 4, 5);
  EXPECT_EQ(blob.count(), 120);
  EXPECT_EQ(blob.count(1), 60);
  EXPECT_EQ(blob.count(1, 3), 12);
  EXPECT_EQ(blob.num(), 2);
  EXPECT_EQ(blob.channels(), 3);
  EXPECT_EQ(blob.height(), 4);
  EXPECT_EQ(blob.width(), 5);
  EXPECT_EQ(blob.shape(-1), 5);
  EXPECT_EQ(blob.offset(1, 2, 3, 4), 119);
  EXPECT_EQ(blob.offset({1, 2}), 1 * 60 + 2 * 20);
  Blob vec(std::vector<int>{7});
  EXPECT_EQ(vec.num(), 7);
  EXPECT_EQ(vec.channels(), 1);
  EXPECT_THROW(blob.CanonicalAxisIndex(4), Error);
  EXPECT_EQ(blob.shape_string(), "2 3 4 5 (120)");
}

TEST(Blob, ReshapeWithinCapacityKeepsMemory) {
  Blob blob(std::vector<int>{4, 10});
  const float* before = blob.mutable_cpu_data();
  blob.Reshape(std::vector<int>{2, 10});
  EXPECT_EQ(blob.mutable_cpu_data(), before);
  blob.Reshape(std::vector<int>{4, 10});
  EXPECT_EQ(blob.mutable_cpu_data(), before);
  blob.Reshape(std::vector<int>{8, 10});
  EXPECT_EQ(blob.count(), 80);
}

TEST(Blob, UpdateSubtractsDiff) {
  Blob blob(std::vector<int>{3});
  float* data = blob.mutable_cpu_data();
  float* diff = blob.mutable_cpu_diff();
  for (int i = 0; i < 3; ++i) {
    data[i] = i + 1.f;
    diff[i] = 0.5f * i;
  }
  blob.Update();
  EXPECT_FLOAT_EQ(blob.cpu_data()[0], 1.f);
  EXPECT_FLOAT_EQ(blob.cpu_data()[2], 2.f);
  EXPECT_FLOAT_EQ(blob.asum_diff(), 1.5f);
  EXPECT_FLOAT_EQ(blob.sumsq_data(), 1.f + 1.5f * 1.5f + 4.f);
}

TEST(Blob, ProtoRoundTripWithDiff) {
  Blob blob(std::vector<int>{2, 3});
  for (int i = 0; i < 6; ++i) {
    blob.mutable_cpu_data()[i] = i * 1.5f;
    blob.mutable_cpu_diff()[i] = -i;
  }
  pb::BlobProto proto;
  blob.ToProto(&proto, true);
  EXPECT_EQ(proto.shape().dim_size(), 2);
  EXPECT_FALSE(proto.has_num());
  Blob copy;
  copy.FromProto(proto);
  EXPECT_EQ(copy.shape(), blob.shape());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(copy.cpu_data()[i], blob.cpu_data()[i]);
    EXPECT_EQ(copy.cpu_diff()[i], blob.cpu_diff()[i]);
  }
}

TEST(Blob, LegacyFourDProtoAndDoubleData) {
  pb::BlobProto proto;
  proto.set_num(1);
  proto.set_channels(1);
  proto.set_height(2);
  proto.set_width(3);
  for (int i = 0; i < 6; ++i) proto.add_double_data(i + 0.25);
  Blob matrix(std::vector<int>{2, 3});
  EXPECT_TRUE(matrix.ShapeEquals(proto));  // compared on the legacy 4-D view
  matrix.FromProto(proto, /*reshape=*/false);
  EXPECT_FLOAT_EQ(matrix.cpu_data()[5], 5.25f);
  Blob fresh;
  fresh.FromProto(proto);
  EXPECT_EQ(fresh.shape(), (std::vector<int>{1, 1, 2, 3}));
}

TEST(Blob, ShapeMismatchNamesBothShapes) {
  Blob stored(std::vector<int>{4, 5});
  pb::BlobProto proto;
  stored.ToProto(&proto);
  Blob target(std::vector<int>{5, 4});
  try {
    target.FromProto(proto, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 5 (20)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("5 4 (20)"), std::string::npos) << e.what();
  }
  proto.mutable_data()->RemoveLast();
  Blob any;
  EXPECT_THROW(any.FromProto(proto), Error);  // 19 values for 20 elements
}

TEST(Blob, ShareDataAndCopy) {
  Blob a(std::vector<int>{4}), b(std::vector<int>{4});
  a.mutable_cpu_data()[2] = 7.f;
  b.ShareData(a);
  EXPECT_EQ(b.cpu_data()[2], 7.f);
  Blob c;
  EXPECT_THROW(c.CopyFrom(a), Error);
  c.CopyFrom(a, false, true);
  EXPECT_EQ(c.cpu_data()[2], 7.f);
}

}  // namespace
}  // namespace crema
