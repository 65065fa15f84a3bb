// Upgrades of legacy net and solver definitions, checked against hand-written golden
// files under tests/data/upgrade/.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/io.hpp"
#include "crema/upgrade_proto.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::TempDir;

std::string DataPath(const std::string& name) {
  return std::string(CREMA_SOURCE_DIR) + "/tests/data/upgrade/" + name;
}

// Exact comparison, with the differences spelled out on failure.
::testing::AssertionResult SameMessage(const google::protobuf::Message& expected,
                                       const google::protobuf::Message& actual) {
  google::protobuf::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(expected, actual)) return ::testing::AssertionSuccess();
  std::string text;
  google::protobuf::TextFormat::PrintToString(actual, &text);
  return ::testing::AssertionFailure() << "differences:\n" << report << "actual:\n" << text;
}

// Reads `<name>.prototxt` without upgrading, upgrades it, and compares the result with
// `<name>.expected.prototxt`. The golden file itself must need no upgrade, and a second
// upgrade must change nothing.
void CheckNetGolden(const std::string& name) {
  const std::string input_path = DataPath(name + ".prototxt");
  pb::NetParameter net;
  ReadProtoFromTextFile(input_path, &net);
  ASSERT_TRUE(NetNeedsUpgrade(net)) << input_path;
  EXPECT_TRUE(UpgradeNetAsNeeded(input_path, &net));

  pb::NetParameter expected;
  ReadProtoFromTextFile(DataPath(name + ".expected.prototxt"), &expected);
  EXPECT_FALSE(NetNeedsUpgrade(expected)) << "golden file for " << name << " is itself legacy";
  EXPECT_TRUE(SameMessage(expected, net)) << name;

  EXPECT_FALSE(NetNeedsUpgrade(net));
  pb::NetParameter again(net);
  EXPECT_FALSE(UpgradeNetAsNeeded(input_path, &again));
  EXPECT_TRUE(SameMessage(net, again));
}

// Expects `fn` to throw crema::Error whose message contains every string in `parts`.
template <typename Fn>
void ExpectErrorContaining(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected crema::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one paragraph: " << message;
  }
}

pb::NetParameter ParseNet(const std::string& text) {
  pb::NetParameter net;
  ReadProtoFromTextString(text, &net, "inline.prototxt");
  return net;
}

// ---- Golden files ----

TEST(Upgrade, V1LeNetGolden) {
  CheckNetGolden("v1_lenet");
}

TEST(Upgrade, V0PaddingLayerGolden) {
  CheckNetGolden("v0_padding");
}

TEST(Upgrade, V0DataLayerGolden) {
  CheckNetGolden("v0_data");
}

TEST(Upgrade, InputDimGolden) {
  CheckNetGolden("deploy_input_dim");
}

TEST(Upgrade, InputShapeGolden) {
  CheckNetGolden("deploy_input_shape");
}

TEST(Upgrade, V1DataTransformGolden) {
  CheckNetGolden("v1_data_transform");
}

TEST(Upgrade, V2DataTransformGolden) {
  CheckNetGolden("v2_data_transform");
}

TEST(Upgrade, V1SharedParamsGolden) {
  CheckNetGolden("v1_shared_params");
}

TEST(Upgrade, BatchNormThreeParamsGolden) {
  CheckNetGolden("batchnorm_3params");
}

TEST(Upgrade, SolverTypeGolden) {
  const std::string path = DataPath("solver_nesterov.prototxt");
  pb::SolverParameter solver;
  ReadProtoFromTextFile(path, &solver);
  ASSERT_TRUE(SolverNeedsTypeUpgrade(solver));
  EXPECT_TRUE(UpgradeSolverAsNeeded(path, &solver));
  pb::SolverParameter expected;
  ReadProtoFromTextFile(DataPath("solver_nesterov.expected.prototxt"), &expected);
  EXPECT_TRUE(SameMessage(expected, solver));
  EXPECT_FALSE(SolverNeedsTypeUpgrade(solver));
  EXPECT_FALSE(UpgradeSolverAsNeeded(path, &solver));
}

// ---- Individual steps ----

TEST(Upgrade, EveryV1LayerTypeHasAName) {
  const google::protobuf::EnumDescriptor* types = pb::V1LayerParameter::LayerType_descriptor();
  ASSERT_EQ(types->value_count(), 40);
  for (int i = 0; i < types->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* value = types->value(i);
    const std::string name = UpgradeV1LayerType(value->number());
    if (value->number() == pb::V1LayerParameter::NONE) {
      EXPECT_EQ(name, "");
    } else {
      EXPECT_FALSE(name.empty()) << value->name();
    }
  }
  EXPECT_EQ(UpgradeV1LayerType(pb::V1LayerParameter::SOFTMAX_LOSS), "SoftmaxWithLoss");
  EXPECT_EQ(UpgradeV1LayerType(pb::V1LayerParameter::IM2COL), "Im2col");
  EXPECT_EQ(UpgradeV1LayerType(pb::V1LayerParameter::HDF5_DATA), "HDF5Data");
  EXPECT_EQ(UpgradeV1LayerType(pb::V1LayerParameter::DECONVOLUTION), "Deconvolution");
  EXPECT_EQ(UpgradeV1LayerType(pb::V1LayerParameter::ABSVAL), "AbsVal");
  EXPECT_THROW(UpgradeV1LayerType(1000), Error);
}

TEST(Upgrade, V0LayerTypes) {
  EXPECT_EQ(UpgradeV0LayerType("f", "conv"), pb::V1LayerParameter::CONVOLUTION);
  EXPECT_EQ(UpgradeV0LayerType("f", "images"), pb::V1LayerParameter::IMAGE_DATA);
  EXPECT_EQ(UpgradeV0LayerType("f", "innerproduct"), pb::V1LayerParameter::INNER_PRODUCT);
  EXPECT_EQ(UpgradeV0LayerType("f", "softmax_loss"), pb::V1LayerParameter::SOFTMAX_LOSS);
  ExpectErrorContaining([] { UpgradeV0LayerType("old.prototxt", "warp"); },
                        {"old.prototxt", "\"warp\""});
}

TEST(Upgrade, V0UnknownTypeNamesFileAndType) {
  pb::NetParameter net =
      ParseNet("layers { layer { name: 'mystery' type: 'frobnicate' } top: 'x' }");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("old.prototxt", &net); },
                        {"old.prototxt", "frobnicate"});
}

TEST(Upgrade, V0SettingForWrongTypeIsDropped) {
  // Caffe drops settings that mean nothing for the layer type and carries on.
  pb::NetParameter net = ParseNet(
      "input: 'x' layers { layer { name: 'r' type: 'relu' num_output: 3 } bottom: 'x' "
      "top: 'x' }");
  EXPECT_TRUE(UpgradeNetAsNeeded("old.prototxt", &net));
  ASSERT_EQ(net.layer_size(), 1);
  EXPECT_EQ(net.layer(0).type(), "ReLU");
  EXPECT_FALSE(net.layer(0).has_inner_product_param());
  EXPECT_FALSE(net.layer(0).has_convolution_param());
}

TEST(Upgrade, V0PaddingIntoNonConvIsAnError) {
  pb::NetParameter net = ParseNet(
      "input: 'x' "
      "layers { layer { name: 'pad' type: 'padding' pad: 1 } bottom: 'x' top: 'p' } "
      "layers { layer { name: 'act' type: 'relu' } bottom: 'p' top: 'y' }");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("pad.prototxt", &net); },
                        {"pad.prototxt", "'pad'", "'act'", "relu"});
}

TEST(Upgrade, V0UnknownBottomIsAnError) {
  pb::NetParameter net = ParseNet(
      "layers { layer { name: 'c' type: 'conv' num_output: 1 kernelsize: 1 } "
      "bottom: 'nowhere' top: 'y' }");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("v0.prototxt", &net); },
                        {"v0.prototxt", "'c'", "nowhere"});
}

TEST(Upgrade, V0PaddingLayersStepAlone) {
  pb::NetParameter net = ParseNet(
      "input: 'x' "
      "layers { layer { name: 'pad' type: 'padding' pad: 3 } bottom: 'x' top: 'p' } "
      "layers { layer { name: 'c' type: 'conv' pad: 0 } bottom: 'p' top: 'y' }");
  UpgradeV0PaddingLayers("f", &net);
  ASSERT_EQ(net.layers_size(), 1);
  EXPECT_EQ(net.layers(0).layer().name(), "c");
  EXPECT_EQ(net.layers(0).layer().pad(), 3u);
  ASSERT_EQ(net.layers(0).bottom_size(), 1);
  EXPECT_EQ(net.layers(0).bottom(0), "x");
  EXPECT_EQ(net.input_size(), 1);
}

TEST(Upgrade, MixedLayerAndLayersIsAnError) {
  pb::NetParameter net = ParseNet(
      "name: 'mixed' layer { name: 'new' type: 'ReLU' } "
      "layers { name: 'old' type: RELU }");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("mixed.prototxt", &net); },
                        {"mixed.prototxt", "layers"});
}

TEST(Upgrade, V1LayerKeepsBlobs) {
  pb::NetParameter net = ParseNet(
      "layers { name: 'ip' type: INNER_PRODUCT bottom: 'x' top: 'y' "
      "  blobs { shape { dim: 2 dim: 1 } data: 1.5 data: -2 } blobs { data: 0.25 } "
      "  include { phase: TRAIN min_level: 1 } exclude { stage: 'deploy' } "
      "  inner_product_param { num_output: 2 } }");
  ASSERT_TRUE(UpgradeV1Net("f", &net));
  ASSERT_EQ(net.layer_size(), 1);
  const pb::LayerParameter& layer = net.layer(0);
  ASSERT_EQ(layer.blobs_size(), 2);
  EXPECT_EQ(layer.blobs(0).shape().dim_size(), 2);
  EXPECT_FLOAT_EQ(layer.blobs(0).data(1), -2.f);
  EXPECT_FLOAT_EQ(layer.blobs(1).data(0), 0.25f);
  EXPECT_EQ(layer.param_size(), 0);
  ASSERT_EQ(layer.include_size(), 1);
  EXPECT_EQ(layer.include(0).min_level(), 1);
  ASSERT_EQ(layer.exclude_size(), 1);
  EXPECT_EQ(layer.exclude(0).stage(0), "deploy");
  EXPECT_EQ(net.layers_size(), 0);
}

TEST(Upgrade, InputCountMismatchIsAnError) {
  pb::NetParameter net = ParseNet(
      "input: 'a' input: 'b' input_dim: 1 input_dim: 2 "
      "input_dim: 3 input_dim: 4");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("deploy.prototxt", &net); },
                        {"deploy.prototxt", "input_dim"});
  pb::NetParameter shapes = ParseNet("input: 'a' input: 'b' input_shape { dim: 1 }");
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("deploy.prototxt", &shapes); },
                        {"deploy.prototxt", "input_shape"});
}

TEST(Upgrade, InputWithoutShapeIsDropped) {
  // Old .caffemodel files name their inputs but give no shape.
  pb::NetParameter net = ParseNet("input: 'data' layer { name: 'r' type: 'ReLU' }");
  EXPECT_TRUE(UpgradeNetAsNeeded("model.caffemodel", &net));
  EXPECT_EQ(net.input_size(), 0);
  ASSERT_EQ(net.layer_size(), 1);
  EXPECT_EQ(net.layer(0).name(), "r");
}

TEST(Upgrade, DataTransformConflictIsAnError) {
  pb::NetParameter net = ParseNet(
      "layers { name: 'd' type: DATA data_param { source: 's' scale: 0.5 } "
      "transform_param { scale: 0.25 } }");
  ASSERT_TRUE(NetNeedsDataUpgrade(net));
  ExpectErrorContaining([&] { UpgradeNetAsNeeded("conflict.prototxt", &net); },
                        {"conflict.prototxt", "'d'", "scale"});
}

TEST(Upgrade, DataTransformIgnoresOtherLayerTypes) {
  // Only the data layers' own parameter messages carry legacy transformation fields.
  pb::NetParameter net =
      ParseNet("layer { name: 'm' type: 'MemoryData' data_param { scale: 0.5 } }");
  EXPECT_FALSE(NetNeedsDataUpgrade(net));
  EXPECT_FALSE(NetNeedsUpgrade(net));
}

TEST(Upgrade, BatchNormUpgradeOnlyWithThreeParams) {
  pb::NetParameter two =
      ParseNet("layer { name: 'bn' type: 'BatchNorm' param { lr_mult: 1 } param { lr_mult: 1 } }");
  EXPECT_FALSE(NetNeedsBatchNormUpgrade(two));
  pb::NetParameter done = ParseNet(
      "layer { name: 'bn' type: 'BatchNorm' param { lr_mult: 0 decay_mult: 0 } "
      "param { lr_mult: 0 decay_mult: 0 } param { lr_mult: 0 decay_mult: 0 } }");
  EXPECT_FALSE(NetNeedsBatchNormUpgrade(done));
  pb::NetParameter old =
      ParseNet("layer { name: 'bn' type: 'BatchNorm' param {} param {} param {} }");
  ASSERT_TRUE(NetNeedsBatchNormUpgrade(old));
  UpgradeNetBatchNorm(&old);
  EXPECT_TRUE(SameMessage(done, old));
}

TEST(Upgrade, SolverTypeNames) {
  const std::pair<pb::SolverParameter::SolverType, const char*> cases[] = {
      {pb::SolverParameter::SGD, "SGD"},           {pb::SolverParameter::NESTEROV, "Nesterov"},
      {pb::SolverParameter::ADAGRAD, "AdaGrad"},   {pb::SolverParameter::RMSPROP, "RMSProp"},
      {pb::SolverParameter::ADADELTA, "AdaDelta"}, {pb::SolverParameter::ADAM, "Adam"},
  };
  for (const auto& c : cases) {
    pb::SolverParameter solver;
    solver.set_solver_type(c.first);
    UpgradeSolverType("s.prototxt", &solver);
    EXPECT_EQ(solver.type(), c.second);
    EXPECT_FALSE(solver.has_solver_type());
  }
}

TEST(Upgrade, SolverWithBothTypesIsAnError) {
  pb::SolverParameter solver;
  ReadProtoFromTextString("type: 'Adam' solver_type: ADAM", &solver, "both.prototxt");
  ExpectErrorContaining([&] { UpgradeSolverAsNeeded("both.prototxt", &solver); },
                        {"both.prototxt", "solver_type", "type"});
}

// ---- Through the file readers ----

TEST(Upgrade, ReadNetParamsFromTextFileUpgrades) {
  pb::NetParameter net;
  ReadNetParamsFromTextFile(DataPath("v1_lenet.prototxt"), &net);
  pb::NetParameter expected;
  ReadProtoFromTextFile(DataPath("v1_lenet.expected.prototxt"), &expected);
  EXPECT_TRUE(SameMessage(expected, net));
}

TEST(Upgrade, ReadNetParamsFromBinaryFileUpgradesV1Weights) {
  TempDir scratch;
  const std::string& dir = scratch.path();
  // A V1 .caffemodel: `layers` with weights and legacy inputs without shapes.
  pb::NetParameter old = ParseNet(
      "name: 'old' input: 'data' "
      "layers { name: 'conv' type: CONVOLUTION bottom: 'data' top: 'conv' "
      "  blobs { num: 2 channels: 1 height: 1 width: 1 data: 3 data: 4 } "
      "  blobs { num: 1 channels: 1 height: 1 width: 2 data: 0 data: 1 } "
      "  convolution_param { num_output: 2 kernel_size: 1 } }");
  const std::string path = dir + "/old.caffemodel";
  WriteProtoToBinaryFile(old, path);

  pb::NetParameter net;
  ReadNetParamsFromBinaryFile(path, &net);
  EXPECT_EQ(net.input_size(), 0);
  EXPECT_EQ(net.layers_size(), 0);
  ASSERT_EQ(net.layer_size(), 1);
  EXPECT_EQ(net.layer(0).type(), "Convolution");
  ASSERT_EQ(net.layer(0).blobs_size(), 2);
  EXPECT_EQ(net.layer(0).blobs(0).num(), 2);
  EXPECT_FLOAT_EQ(net.layer(0).blobs(0).data(1), 4.f);
  EXPECT_FLOAT_EQ(net.layer(0).blobs(1).data(1), 1.f);
}

TEST(Upgrade, ReadSolverParamsUpgradesAndSetsSnapshotPrefix) {
  TempDir scratch;
  const std::string& dir = scratch.path();
  const std::string path = dir + "/my_solver.prototxt";
  pb::SolverParameter written;
  ReadProtoFromTextString("net: 'n.prototxt' solver_type: ADAGRAD", &written, "inline");
  WriteProtoToTextFile(written, path);

  pb::SolverParameter solver;
  ReadSolverParamsFromTextFile(path, &solver);
  EXPECT_EQ(solver.type(), "AdaGrad");
  EXPECT_FALSE(solver.has_solver_type());
  EXPECT_EQ(solver.snapshot_prefix(), dir + "/my_solver");

  // A directory as prefix gets the solver file's stem appended.
  written.set_snapshot_prefix(dir);
  WriteProtoToTextFile(written, path);
  ReadSolverParamsFromTextFile(path, &solver);
  EXPECT_EQ(solver.snapshot_prefix(), dir + "/my_solver");

  // Any other prefix is kept as given.
  written.set_snapshot_prefix(dir + "/snaps/run1");
  WriteProtoToTextFile(written, path);
  ReadSolverParamsFromTextFile(path, &solver);
  EXPECT_EQ(solver.snapshot_prefix(), dir + "/snaps/run1");
}

}  // namespace
}  // namespace crema
