// Net assembly: state rules, split insertion, in-place layers, backward-need inference,
// loss weights, parameter sharing, weight copying and serialisation.
#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdlib>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "crema/math_functions.hpp"
#include "crema/net.hpp"
#include "tests/gradient_checker.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

pb::NetParameter parse_net(const std::string& text, Phase phase = Phase::TRAIN) {
  pb::NetParameter param;
  ReadProtoFromTextString(text, &param, "test net");
  param.mutable_state()->set_phase(static_cast<pb::Phase>(phase));
  return param;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string error_of(const std::string& net_text) {
  try {
    Net net(parse_net(net_text));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// x (2x3, Input) -> ip (InnerProduct 2) -> loss (EuclideanLoss against y).
const char* kLeastSquares = R"(
  name: "ls"
  layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
  layer { name: "y" type: "Input" top: "y" input_param { shape { dim: 2 dim: 2 } } }
  layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
          inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 }
                                bias_filler { type: "constant" value: 0.5 } } }
  layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "y" top: "loss" }
)";

TEST(Net, StateRulesFilterLayers) {
  const std::string text = R"(
    layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 1 } } }
    layer { name: "train_only" type: "ReLU" bottom: "a" top: "b" include { phase: TRAIN } }
    layer { name: "test_only" type: "ReLU" bottom: "a" top: "c" include { phase: TEST } }
    layer { name: "level2" type: "ReLU" bottom: "a" top: "d" include { min_level: 2 } }
    layer { name: "staged" type: "ReLU" bottom: "a" top: "e" include { stage: "deploy" } }
    layer { name: "not_staged" type: "ReLU" bottom: "a" top: "f" exclude { stage: "deploy" } }
  )";
  pb::NetParameter param = parse_net(text, Phase::TRAIN), filtered;
  Net::FilterNet(param, &filtered);
  std::vector<std::string> names;
  for (const auto& l : filtered.layer()) names.push_back(l.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "train_only", "not_staged"}));

  param.mutable_state()->set_phase(pb::TEST);
  param.mutable_state()->set_level(3);
  param.mutable_state()->add_stage("deploy");
  Net::FilterNet(param, &filtered);
  names.clear();
  for (const auto& l : filtered.layer()) names.push_back(l.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "test_only", "level2", "staged"}));

  pb::NetStateRule rule;
  rule.set_max_level(1);
  rule.add_not_stage("x");
  pb::NetState state;
  state.set_level(1);
  EXPECT_TRUE(Net::StateMeetsRule(state, rule, "l"));
  state.add_stage("x");
  EXPECT_FALSE(Net::StateMeetsRule(state, rule, "l"));

  EXPECT_TRUE(contains(error_of(R"(
    layer { name: "both" type: "Input" top: "a" input_param { shape { dim: 1 } }
            include { phase: TRAIN } exclude { phase: TEST } })"),
                       "both"));
}

TEST(Net, SplitsAreInsertedAndGradientsSummed) {
  // x feeds two InnerProducts whose outputs are added: dL/dx must sum both paths.
  const std::string text = R"(
    force_backward: true
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "a"
            inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
    layer { name: "ip2" type: "InnerProduct" bottom: "x" top: "b"
            inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
    layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }
    layer { name: "loss" type: "EuclideanLoss" bottom: "s" bottom: "a" top: "loss" }
  )";
  pb::NetParameter param = parse_net(text), split;
  InsertSplits(param, &split);
  // x is read twice; a is read twice.
  ASSERT_EQ(split.layer_size(), 7);
  EXPECT_EQ(split.layer(1).name(), "x_x_0_split");
  EXPECT_EQ(split.layer(1).type(), "Split");
  EXPECT_EQ(split.layer(1).top(1), "x_x_0_split_1");
  EXPECT_EQ(split.layer(2).bottom(0), "x_x_0_split_0");
  EXPECT_EQ(split.layer(3).name(), "a_ip1_0_split");

  Net net(param);
  testing::FillGaussian(net.blob_by_name("x").get());
  net.ForwardBackward();
  // Reference: dL/dx = W1^T dL/da_total + W2^T dL/db, recomputed from the layer diffs.
  const Blob& x = *net.blob_by_name("x");
  const Blob& w1 = *net.layer_by_name("ip1")->blobs()[0];
  const Blob& w2 = *net.layer_by_name("ip2")->blobs()[0];
  const Blob& da = *net.blob_by_name("a_ip1_0_split_0");
  const Blob& da2 = *net.blob_by_name("a_ip1_0_split_1");
  const Blob& db = *net.blob_by_name("b");
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 3; ++k) {
      double expected = 0;
      for (int o = 0; o < 2; ++o) {
        expected +=
            w1.cpu_data()[o * 3 + k] * (da.cpu_diff()[n * 2 + o] + da2.cpu_diff()[n * 2 + o]);
        expected += w2.cpu_data()[o * 3 + k] * db.cpu_diff()[n * 2 + o];
      }
      EXPECT_NEAR(x.cpu_diff()[n * 3 + k], expected, 1e-5);
    }
  }
}

TEST(Net, LossWeightOnConsumedTopGoesThroughSplit) {
  const std::string text = R"(
    layer { name: "x" type: "DummyData" top: "x" top: "y"
            dummy_data_param { shape { dim: 2 dim: 2 } shape { dim: 2 dim: 2 }
                               data_filler { type: "gaussian" } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "x" bottom: "y" top: "loss" }
    layer { name: "relu" type: "ReLU" bottom: "loss" top: "r" }
  )";
  pb::NetParameter param = parse_net(text), split;
  InsertSplits(param, &split);
  // The loss weight was not given explicitly, so no split for it; now give one.
  param.mutable_layer(1)->add_loss_weight(2.0);
  InsertSplits(param, &split);
  ASSERT_EQ(split.layer_size(), 4);
  EXPECT_EQ(split.layer(1).loss_weight_size(), 0);
  EXPECT_EQ(split.layer(2).type(), "Split");
  ASSERT_EQ(split.layer(2).loss_weight_size(), 2);
  EXPECT_EQ(split.layer(2).loss_weight(0), 2.0f);
  EXPECT_EQ(split.layer(2).loss_weight(1), 0.0f);
  EXPECT_EQ(split.layer(3).bottom(0), "loss_loss_0_split_1");
}

TEST(Net, InPlaceLayersShareTheBlob) {
  Net net(parse_net(R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "relu" type: "ReLU" bottom: "x" top: "x" }
  )"));
  EXPECT_EQ(net.top_vecs()[1][0], net.bottom_vecs()[1][0]);
  EXPECT_EQ(net.blobs().size(), 1u);
  EXPECT_EQ(net.output_blobs()[0], net.blob_by_name("x").get());
  EXPECT_EQ(net.input_blobs().size(), 1u);
}

TEST(Net, BackwardNeedAndPropagateDown) {
  Net net(parse_net(kLeastSquares));
  // Inputs need no gradient; ip has parameters, so it needs backward; the loss too.
  EXPECT_FALSE(net.layer_need_backward()[0]);
  EXPECT_TRUE(net.layer_need_backward()[2]);
  EXPECT_TRUE(net.layer_need_backward()[3]);
  EXPECT_FALSE(net.bottom_need_backward()[2][0]);  // x
  EXPECT_TRUE(net.bottom_need_backward()[3][0]);   // ip
  EXPECT_FALSE(net.bottom_need_backward()[3][1]);  // y

  pb::NetParameter forced = parse_net(kLeastSquares);
  forced.set_force_backward(true);
  Net forced_net(forced);
  EXPECT_TRUE(forced_net.bottom_need_backward()[2][0]);
  EXPECT_TRUE(forced_net.bottom_need_backward()[3][1]);  // EuclideanLoss allows both bottoms

  pb::NetParameter frozen = parse_net(kLeastSquares);
  frozen.mutable_layer(3)->add_propagate_down(false);
  frozen.mutable_layer(3)->add_propagate_down(false);
  Net frozen_net(frozen);
  EXPECT_FALSE(frozen_net.layer_need_backward()[2]);  // nothing reaches ip any more
}

TEST(Net, LossWeightScalesLossAndGradients) {
  pb::NetParameter param = parse_net(kLeastSquares);
  Net net(param);
  param.mutable_layer(3)->add_loss_weight(3.0);
  Net weighted(param);
  weighted.ShareTrainedLayersWith(net);
  for (Net* n : {&net, &weighted}) {
    Context::reseed(11, 0);
    cpu_rng_gaussian(6, 0.f, 1.f, n->blob_by_name("x")->mutable_cpu_data());
    cpu_rng_gaussian(4, 0.f, 1.f, n->blob_by_name("y")->mutable_cpu_data());
  }
  const float loss = net.ForwardBackward();
  std::vector<float> grad(net.learnable_params()[0]->cpu_diff(),
                          net.learnable_params()[0]->cpu_diff() + 6);
  const float weighted_loss = weighted.ForwardBackward();
  EXPECT_NEAR(weighted_loss, 3 * loss, 1e-5);
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(weighted.learnable_params()[0]->cpu_diff()[i], 3 * grad[i], 1e-5);
  EXPECT_EQ(weighted.blob_loss_weights()[weighted.blob_names().size() - 1], 3.0f);
}

TEST(Net, ParameterSharingByName) {
  const std::string text = R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "a"
            param { name: "w" lr_mult: 2 } param { name: "b" }
            inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
    layer { name: "ip2" type: "InnerProduct" bottom: "a" top: "c"
            param { name: "w" } param { name: "b" decay_mult: 0 }
            inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
  )";
  Net net(parse_net(text));
  EXPECT_EQ(net.params().size(), 4u);
  EXPECT_EQ(net.learnable_params().size(), 2u);
  EXPECT_EQ(net.param_owners(), (std::vector<int>{-1, -1, 0, 1}));
  EXPECT_EQ(net.params()[2]->cpu_data(), net.params()[0]->cpu_data());
  EXPECT_EQ(net.params()[2]->cpu_diff(), net.params()[0]->cpu_diff());
  EXPECT_EQ(net.params_lr()[0], 2.0f);
  EXPECT_EQ(net.params_weight_decay()[1], 0.0f);

  // STRICT (default) needs equal shapes; PERMISSIVE only equal counts.
  const std::string mismatch = R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 6 } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "a" param { name: "w" }
            inner_product_param { num_output: 3 bias_term: false } }
    layer { name: "ip2" type: "InnerProduct" bottom: "a" top: "c" param { name: "w" MODE }
            inner_product_param { num_output: 6 bias_term: false } }
  )";
  std::string strict = mismatch;
  strict.replace(strict.find("MODE"), 4, "");
  const std::string message = error_of(strict);
  EXPECT_TRUE(contains(message, "ip2")) << message;
  EXPECT_TRUE(contains(message, "3 6 (18)")) << message;
  EXPECT_TRUE(contains(message, "6 3 (18)")) << message;
  std::string permissive = mismatch;
  permissive.replace(permissive.find("MODE"), 4, "share_mode: PERMISSIVE");
  EXPECT_EQ(error_of(permissive), "");

  std::string lr_conflict = text;
  lr_conflict.replace(lr_conflict.find("param { name: \"w\" }"), 19,
                      "param { name: \"w\" lr_mult: 3 }");
  EXPECT_TRUE(contains(error_of(lr_conflict), "lr_mult"));
}

TEST(Net, OutputsAreSortedByName) {
  Net net(parse_net(R"(
    layer { name: "x" type: "Input" top: "zeta" top: "alpha"
            input_param { shape { dim: 1 } } }
  )"));
  ASSERT_EQ(net.output_blobs().size(), 2u);
  EXPECT_EQ(net.blob_names()[net.output_blob_indices()[0]], "alpha");
}

TEST(Net, BadGraphsAreClearErrors) {
  std::string message = error_of(R"(
    layer { name: "relu" type: "ReLU" bottom: "nothing" top: "r" })");
  EXPECT_TRUE(contains(message, "relu") && contains(message, "nothing")) << message;

  message = error_of(R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 } } }
    layer { name: "conv" type: "Convolutoin" bottom: "x" top: "y" })");
  EXPECT_TRUE(contains(message, "Convolutoin")) << message;
  EXPECT_TRUE(contains(message, "Convolution")) << message;  // the known types are listed
  EXPECT_TRUE(contains(message, "ReLU")) << message;

  message = error_of(R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 } } }
    layer { name: "r1" type: "ReLU" bottom: "x" top: "y" }
    layer { name: "r2" type: "ReLU" bottom: "x" top: "y" })");
  EXPECT_TRUE(contains(message, "r2") && contains(message, "more than one")) << message;

  message = error_of(R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "y" type: "Input" top: "y" input_param { shape { dim: 2 dim: 4 } } }
    layer { name: "add" type: "Eltwise" bottom: "x" bottom: "y" top: "z" })");
  EXPECT_TRUE(contains(message, "add") && contains(message, "2 3 (6)") &&
              contains(message, "2 4 (8)"))
      << message;
}

TEST(Net, ReshapeFollowsInputShape) {
  Net net(parse_net(kLeastSquares));
  net.blob_by_name("x")->Reshape(std::vector<int>{5, 3});
  net.blob_by_name("y")->Reshape(std::vector<int>{5, 2});
  net.Reshape();
  EXPECT_EQ(net.blob_by_name("ip")->shape(), (std::vector<int>{5, 2}));
  net.Forward();
}

TEST(Net, CopyTrainedLayersByNameAndRefuseShapeMismatch) {
  Net source(parse_net(kLeastSquares));
  pb::NetParameter weights;
  source.ToProto(&weights);
  ASSERT_EQ(weights.layer_size(), 4);
  EXPECT_EQ(weights.layer(2).blobs_size(), 2);

  // A net with an extra layer and without "y": the copy matches by name.
  pb::NetParameter target_param = parse_net(kLeastSquares);
  target_param.mutable_layer(2)->mutable_inner_product_param()->mutable_weight_filler()->set_std(5);
  Net target(target_param);
  target.CopyTrainedLayersFrom(weights);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(target.learnable_params()[0]->cpu_data()[i],
              source.learnable_params()[0]->cpu_data()[i]);

  // Different num_output: refused, naming the layer, both shapes and the rename hint.
  pb::NetParameter other = parse_net(kLeastSquares);
  other.mutable_layer(2)->mutable_inner_product_param()->set_num_output(4);
  other.mutable_layer(1)->mutable_input_param()->mutable_shape(0)->set_dim(1, 4);
  Net different(other);
  try {
    different.CopyTrainedLayersFrom(weights);
    FAIL() << "expected a shape mismatch";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "'ip'")) << message;
    EXPECT_TRUE(contains(message, "2 3 (6)") && contains(message, "4 3 (12)")) << message;
    EXPECT_TRUE(contains(message, "rename")) << message;
  }
}

TEST(Net, CaffemodelFileRoundTrip) {
  Net source(parse_net(kLeastSquares));
  pb::NetParameter weights;
  source.ToProto(&weights);
  char dir_template[] = "/tmp/crema_net_XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string path = dir + "/ls.caffemodel";
  WriteProtoToBinaryFile(weights, path);
  Net target(parse_net(kLeastSquares));
  target.CopyTrainedLayersFrom(path);
  for (size_t p = 0; p < source.learnable_params().size(); ++p)
    for (int i = 0; i < source.learnable_params()[p]->count(); ++i)
      EXPECT_EQ(target.learnable_params()[p]->cpu_data()[i],
                source.learnable_params()[p]->cpu_data()[i]);
  // A truncated file is an error naming it.
  std::string bytes;
  weights.SerializeToString(&bytes);
  FILE* f = fopen(path.c_str(), "wb");
  fwrite(bytes.data(), 1, bytes.size() / 2, f);
  fclose(f);
  try {
    target.CopyTrainedLayersFrom(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), path)) << e.what();
  }
  std::remove(path.c_str());
  rmdir(dir.c_str());
}

TEST(Net, WholeNetGradientMatchesFiniteDifferences) {
  pb::NetParameter param = parse_net(kLeastSquares);
  Net net(param);
  testing::FillGaussian(net.blob_by_name("x").get(), 1.f, 3);
  testing::FillGaussian(net.blob_by_name("y").get(), 1.f, 4);
  net.ClearParamDiffs();
  net.ForwardBackward();
  Blob* w = net.learnable_params()[0];
  std::vector<float> analytic(w->cpu_diff(), w->cpu_diff() + w->count());
  const float h = 1e-2f;
  for (int i = 0; i < w->count(); ++i) {
    const float original = w->cpu_data()[i];
    w->mutable_cpu_data()[i] = original + h;
    float plus = 0, minus = 0;
    net.Forward(&plus);
    w->mutable_cpu_data()[i] = original - h;
    net.Forward(&minus);
    w->mutable_cpu_data()[i] = original;
    EXPECT_NEAR(analytic[i], (plus - minus) / (2 * h),
                1e-3 * std::max(1.f, std::fabs(analytic[i])));
  }
}

TEST(Net, CaffeLayoutWeightsRoundTripThroughCaffemodel) {
  // InnerProduct with transpose keeps its weight as [K, N]; PReLU [C]; BatchNorm's three
  // statistics blobs [C], [C], [1]; Scale [C] + bias [C] — all as Caffe stores them.
  const std::string text = R"(
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }
    layer { name: "scale" type: "Scale" bottom: "x" top: "x"
            scale_param { bias_term: true filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
    layer { name: "prelu" type: "PReLU" bottom: "x" top: "p" prelu_param { filler { type: "gaussian" } } }
    layer { name: "ip" type: "InnerProduct" bottom: "p" top: "ip"
            inner_product_param { num_output: 5 transpose: true weight_filler { type: "gaussian" }
                                  bias_filler { type: "gaussian" } } }
  )";
  Net source(parse_net(text));
  testing::FillGaussian(source.blob_by_name("x").get());
  source.Forward();  // BatchNorm statistics become non-trivial
  pb::NetParameter weights;
  source.ToProto(&weights);
  auto shape_of = [&](const std::string& layer, int blob) {
    std::vector<int64_t> dims;
    for (const auto& l : weights.layer())
      if (l.name() == layer)
        for (auto d : l.blobs(blob).shape().dim()) dims.push_back(d);
    return dims;
  };
  EXPECT_EQ(shape_of("ip", 0), (std::vector<int64_t>{48, 5}));
  EXPECT_EQ(shape_of("prelu", 0), (std::vector<int64_t>{3}));
  EXPECT_EQ(shape_of("bn", 2), (std::vector<int64_t>{1}));
  EXPECT_EQ(shape_of("scale", 1), (std::vector<int64_t>{3}));

  testing::TempDir dir;
  const std::string path = dir.path() + "/layout.caffemodel";
  WriteProtoToBinaryFile(weights, path);
  Net target(parse_net(text));
  target.CopyTrainedLayersFrom(path);
  for (const char* name : {"bn", "scale", "prelu", "ip"}) {
    const auto& a = source.layer_by_name(name)->blobs();
    const auto& b = target.layer_by_name(name)->blobs();
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i]->shape(), b[i]->shape()) << name;
      for (int j = 0; j < a[i]->count(); ++j)
        EXPECT_EQ(a[i]->cpu_data()[j], b[i]->cpu_data()[j]) << name << " blob " << i;
    }
  }
}

// An error raised by shared code while a layer is set up (here the uniform filler's) names
// the layer; one that already names it is not prefixed twice.
TEST(Net, SetUpErrorsNameTheLayer) {
  const std::string input = R"(
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } } )";
  EXPECT_ERROR_WITH(Net(testing::NetParam(input + R"(
    layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y"
            inner_product_param { num_output: 2
              weight_filler { type: "uniform" min: 0 max: inf } } })")),
                    "Layer 'fc' (InnerProduct): uniform filler needs finite min <= max");
  try {
    Net(testing::NetParam(input + R"(
      layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" } )"));
    ADD_FAILURE() << "num_output 0 accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("Layer 'fc'"), 0u) << what;
    EXPECT_EQ(what.find("Layer 'fc'", 1), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace crema
