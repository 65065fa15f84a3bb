// Accuracy: top-1 / top-k with ties, ignore_label, per-class output, spatial labels,
// no backward, bad parameters.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/layer_registry.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::ErrorOf;
using testing::MakeLayer;
using testing::SetValues;

using Shape = std::vector<int>;

// Five samples, three classes:
//   A [0.5 0.5 0.1] label 1: class 0 ties with the label -> ranked above it: top-1 miss,
//                            top-2 hit
//   B [0.2 0.3 0.3] label 0: two classes above -> miss for k = 1 and 2
//   C [0.1 0.7 0.2] label 2: one class above   -> top-1 miss, top-2 hit
//   D [0.3 0.3 0.3] label 7: ignored (ignore_label: 7)
//   E [0.9 0.05 0.05] label 0: hit
struct AccuracyCase {
  Blob scores{Shape{5, 3}};
  Blob labels{Shape{5}};
  AccuracyCase() {
    SetValues(&scores, {0.5f, 0.5f, 0.1f, 0.2f, 0.3f, 0.3f, 0.1f, 0.7f, 0.2f, 0.3f, 0.3f, 0.3f,
                        0.9f, 0.05f, 0.05f});
    SetValues(&labels, {1, 0, 2, 7, 0});
  }
};

TEST(AccuracyLayer, Top1WithTiesAndIgnore) {
  auto layer = MakeLayer("name: 'acc' type: 'Accuracy' accuracy_param { ignore_label: 7 }");
  EXPECT_STREQ(layer->type(), "Accuracy");
  AccuracyCase c;
  Blob top;
  layer->SetUp({&c.scores, &c.labels}, {&top});
  EXPECT_EQ(layer->Forward({&c.scores, &c.labels}, {&top}), 0.f);  // not a loss
  EXPECT_EQ(top.num_axes(), 0);
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.25f);  // E only, of 4 counted
}

TEST(AccuracyLayer, Top2WithTiesAndIgnore) {
  auto layer =
      MakeLayer("name: 'acc' type: 'Accuracy' accuracy_param { top_k: 2 ignore_label: 7 }");
  AccuracyCase c;
  Blob top, per_class;
  layer->SetUp({&c.scores, &c.labels}, {&top, &per_class});
  layer->Forward({&c.scores, &c.labels}, {&top, &per_class});
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.75f);  // A, C, E of 4
  ASSERT_EQ(per_class.shape(), Shape{3});
  EXPECT_FLOAT_EQ(per_class.cpu_data()[0], 0.5f);  // B miss, E hit
  EXPECT_FLOAT_EQ(per_class.cpu_data()[1], 1.f);   // A
  EXPECT_FLOAT_EQ(per_class.cpu_data()[2], 1.f);   // C
  // A second forward must not accumulate into the per-class counts.
  layer->Forward({&c.scores, &c.labels}, {&top, &per_class});
  EXPECT_FLOAT_EQ(per_class.cpu_data()[0], 0.5f);
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.75f);
}

TEST(AccuracyLayer, WithoutIgnoreLabelTheLabelIsChecked) {
  auto layer = MakeLayer("name: 'acc5' type: 'Accuracy'");
  AccuracyCase c;
  Blob top;
  layer->SetUp({&c.scores, &c.labels}, {&top});
  const std::string msg = ErrorOf([&] { layer->Forward({&c.scores, &c.labels}, {&top}); });
  EXPECT_NE(msg.find("acc5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label 7"), std::string::npos) << msg;
}

TEST(AccuracyLayer, PerClassWithUnseenClass) {
  auto layer = MakeLayer("name: 'acc' type: 'Accuracy'");
  Blob scores(Shape{2, 4}), labels(Shape{2}), top, per_class;
  SetValues(&scores, {1, 0, 0, 0, 0, 0, 3, 1});
  SetValues(&labels, {0, 3});
  layer->SetUp({&scores, &labels}, {&top, &per_class});
  layer->Forward({&scores, &labels}, {&top, &per_class});
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.5f);
  const float expected[] = {1.f, 0.f, 0.f, 0.f};  // classes 1, 2 unseen -> 0; class 3 missed
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(per_class.cpu_data()[i], expected[i]) << i;
}

TEST(AccuracyLayer, SpatialLabels) {
  // (N=1, C=3, H=1, W=2): labels per pixel along axis 1.
  auto layer = MakeLayer("name: 'acc' type: 'Accuracy'");
  Blob scores(Shape{1, 3, 1, 2}), labels(Shape{1, 1, 1, 2}), top;
  // pixel 0: [0.1 0.8 0.1] -> argmax 1; pixel 1: [0.6 0.3 0.1] -> argmax 0
  SetValues(&scores, {0.1f, 0.6f, 0.8f, 0.3f, 0.1f, 0.1f});
  SetValues(&labels, {1, 2});
  layer->SetUp({&scores, &labels}, {&top});
  layer->Forward({&scores, &labels}, {&top});
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.5f);
}

TEST(AccuracyLayer, LastAxis) {
  auto layer = MakeLayer("name: 'acc' type: 'Accuracy' accuracy_param { axis: -1 }");
  Blob scores(Shape{2, 2, 3}), labels(Shape{2, 2}), top;
  SetValues(&scores, {0, 1, 2, 5, 4, 3, 1, 1, 0, 0, 0, 9});
  SetValues(&labels, {2, 0, 0, 1});  // hit, hit, miss (tie), miss
  layer->SetUp({&scores, &labels}, {&top});
  layer->Forward({&scores, &labels}, {&top});
  EXPECT_FLOAT_EQ(top.cpu_data()[0], 0.5f);
}

TEST(AccuracyLayer, AllIgnoredGivesZero) {
  auto layer = MakeLayer("name: 'acc' type: 'Accuracy' accuracy_param { ignore_label: 0 }");
  Blob scores(Shape{2, 3}), labels(Shape{2}), top;
  SetValues(&scores, {1, 2, 3, 4, 5, 6});
  SetValues(&labels, {0, 0});
  layer->SetUp({&scores, &labels}, {&top});
  layer->Forward({&scores, &labels}, {&top});
  EXPECT_EQ(top.cpu_data()[0], 0.f);
}

TEST(AccuracyLayer, BackwardThrows) {
  auto layer = MakeLayer("name: 'acc3' type: 'Accuracy'");
  Blob scores(Shape{2, 3}), labels(Shape{2}), top;
  SetValues(&scores, {1, 2, 3, 4, 5, 6});
  SetValues(&labels, {0, 1});
  layer->SetUp({&scores, &labels}, {&top});
  layer->Forward({&scores, &labels}, {&top});
  EXPECT_NO_THROW(layer->Backward({&top}, {false, false}, {&scores, &labels}));
  const std::string msg = ErrorOf([&] {
    layer->Backward({&top}, {true, false}, {&scores, &labels});
  });
  EXPECT_NE(msg.find("acc3"), std::string::npos) << msg;
}

TEST(AccuracyLayer, BadParameters) {
  Blob scores(Shape{2, 3}), labels(Shape{2}), top;
  auto big_k = MakeLayer("name: 'acc_k' type: 'Accuracy' accuracy_param { top_k: 4 }");
  std::string msg = ErrorOf([&] { big_k->SetUp({&scores, &labels}, {&top}); });
  EXPECT_NE(msg.find("acc_k"), std::string::npos) << msg;
  EXPECT_NE(msg.find("top_k"), std::string::npos) << msg;

  Blob wrong_labels(Shape{3});
  auto layer = MakeLayer("name: 'acc_n' type: 'Accuracy'");
  msg = ErrorOf([&] { layer->SetUp({&scores, &wrong_labels}, {&top}); });
  EXPECT_NE(msg.find("acc_n"), std::string::npos) << msg;
  EXPECT_NE(msg.find(scores.shape_string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(wrong_labels.shape_string()), std::string::npos) << msg;
}

}  // namespace
}  // namespace crema
