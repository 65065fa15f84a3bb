// The `crema` command on bad input: every user mistake ends with a clear one-paragraph
// message naming the file (line:column), layer or shapes, and exit status 1 — never an
// abort or a stack trace.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "crema.pb.h"
#include "crema/io.hpp"
#include "tests/test_util.hpp"

namespace {

using Result = crema::testing::CremaRun;
using crema::testing::RunCrema;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/crema_cli_XXXXXX";
    dir_ = mkdtemp(dir_template);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // A user error: exit 1, the expected words, and no sign of an abort.
  void expect_user_error(const Result& r, const std::vector<std::string>& words) {
    EXPECT_EQ(r.status, 1) << r.output;
    for (const auto& w : words)
      EXPECT_NE(r.output.find(w), std::string::npos) << w << "\n" << r.output;
    EXPECT_EQ(r.output.find("Check failed"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("*** "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  }

  std::string dir_;
};

const char* kSmallNet = R"(name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
)";

TEST_F(CliTest, HelpListsCommands) {
  Result r = RunCrema("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* command : {"train", "test", "time", "device_query", "upgrade_net_proto_text"})
    EXPECT_NE(r.output.find(command), std::string::npos) << command;
  r = RunCrema("train --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("--solver"), std::string::npos);
  expect_user_error(RunCrema("trian"), {"unknown command 'trian'"});
  expect_user_error(RunCrema("train"), {"--solver"});
}

TEST_F(CliTest, MalformedPrototxtGivesLineAndColumn) {
  const std::string path =
      write("bad.prototxt",
            "name: \"x\"\nlayer {\n  name: \"a\"\n  type: \"Input\"\n  top: \"a\" }\n}\n");
  expect_user_error(RunCrema("time --model " + path), {path + ":6:1"});
}

TEST_F(CliTest, UnknownFieldIsNamed) {
  const std::string path = write("field.prototxt", "layer {\n  name: \"a\"\n  typo_field: 3\n}\n");
  expect_user_error(RunCrema("time --model " + path), {path + ":3:3", "typo_field"});
}

TEST_F(CliTest, UnknownLayerTypeListsKnownTypes) {
  const std::string path =
      write("type.prototxt", "layer { name: \"a\" type: \"Convolutoin\" top: \"a\" }\n");
  expect_user_error(RunCrema("time --model " + path),
                    {"'a'", "Convolutoin", "Convolution", "InnerProduct", "ReLU"});
}

TEST_F(CliTest, MissingBottomIsNamed) {
  const std::string path = write(
      "bottom.prototxt", "layer { name: \"r\" type: \"ReLU\" bottom: \"ghost\" top: \"r\" }\n");
  expect_user_error(RunCrema("time --model " + path), {"'r'", "ghost"});
}

TEST_F(CliTest, ShapeMismatchNamesLayerAndBothShapes) {
  const std::string path = write("shape.prototxt", R"(
layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 2 dim: 5 } } }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "c" concat_param { axis: 0 } }
)");
  expect_user_error(RunCrema("time --model " + path), {"'cat'", "2 3 (6)", "2 5 (10)"});
}

TEST_F(CliTest, MissingFilesAreNamed) {
  expect_user_error(RunCrema("time --model " + dir_ + "/absent.prototxt"),
                    {dir_ + "/absent.prototxt"});
  const std::string net = write("data.prototxt", R"(
layer { name: "d" type: "Data" top: "data" top: "label"
        data_param { source: "/nonexistent/crema_lmdb" batch_size: 4 backend: LMDB } }
)");
  expect_user_error(RunCrema("time --model " + net), {"/nonexistent/crema_lmdb"});
  const std::string model = write("small.prototxt", kSmallNet);
  expect_user_error(RunCrema("test --model " + model + " --weights " + dir_ + "/none.caffemodel"),
                    {dir_ + "/none.caffemodel"});
  expect_user_error(RunCrema("train --solver " + dir_ + "/no_solver.prototxt"),
                    {dir_ + "/no_solver.prototxt"});
}

TEST_F(CliTest, CorruptAndMismatchedWeights) {
  const std::string model = write("small.prototxt", kSmallNet);
  const std::string garbage =
      write("garbage.caffemodel", std::string("\x0a\xff\xff\xff\x0f junk", 10));
  expect_user_error(RunCrema("test --iterations 1 --model " + model + " --weights " + garbage),
                    {garbage});

  // Weights written for conv with 6 outputs do not fit a conv with 4.
  crema::pb::NetParameter weights;
  auto* layer = weights.add_layer();
  layer->set_name("conv");
  layer->set_type("Convolution");
  auto* w = layer->add_blobs();
  for (int d : {6, 1, 3, 3}) w->mutable_shape()->add_dim(d);
  for (int i = 0; i < 54; ++i) w->add_data(0.f);
  auto* b = layer->add_blobs();
  b->mutable_shape()->add_dim(6);
  for (int i = 0; i < 6; ++i) b->add_data(0.f);
  const std::string path = dir_ + "/wrong.caffemodel";
  crema::WriteProtoToBinaryFile(weights, path);
  expect_user_error(RunCrema("test --iterations 1 --model " + model + " --weights " + path),
                    {path, "'conv'", "6 1 3 3 (54)", "4 1 3 3 (36)", "rename"});
}

TEST_F(CliTest, GpuFlagOnCpuBuild) {
#ifdef CREMA_WITH_CUDA
  GTEST_SKIP() << "this build has CUDA; the CPU-only message is not reachable";
#else
  const std::string model = write("small.prototxt", kSmallNet);
  expect_user_error(RunCrema("time --gpu 0 --model " + model), {"without CUDA"});
  expect_user_error(RunCrema("device_query"), {"without CUDA"});
#endif
}

TEST_F(CliTest, TimeAndUpgradeWork) {
  const std::string model = write("small.prototxt", kSmallNet);
  Result r = RunCrema("time --iterations 2 --model " + model);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Average Forward-Backward"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conv"), std::string::npos);

  const std::string old_net = write("v1.prototxt", R"(name: "old"
input: "data"
input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip" blobs_lr: 1 blobs_lr: 2
         inner_product_param { num_output: 2 } }
layers { name: "relu" type: RELU bottom: "ip" top: "ip" }
)");
  const std::string upgraded = dir_ + "/new.prototxt";
  r = RunCrema("upgrade_net_proto_text " + old_net + " " + upgraded);
  EXPECT_EQ(r.status, 0) << r.output;
  crema::pb::NetParameter param;
  crema::ReadProtoFromTextFile(upgraded, &param);
  ASSERT_EQ(param.layer_size(), 3);
  EXPECT_EQ(param.layer(0).type(), "Input");
  EXPECT_EQ(param.layer(1).type(), "InnerProduct");
  EXPECT_EQ(param.layer(1).param(1).lr_mult(), 2.f);
  EXPECT_EQ(param.layers_size(), 0);
  expect_user_error(RunCrema("upgrade_net_proto_text " + old_net), {"INPUT OUTPUT"});
}

TEST_F(CliTest, TrainRefusesSnapshotWithWeights) {
  const std::string solver = write("solver.prototxt", "net: \"x\"\n");
  expect_user_error(RunCrema("train --solver " + solver + " --snapshot a --weights b"),
                    {"not both"});
}

TEST_F(CliTest, TrainSnapshotResumeAndFineTune) {
  const std::string net = write("train_net.prototxt", R"(name: "tiny"
layer { name: "data" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 4 dim: 6 } shape { dim: 4 }
                           data_filler { type: "gaussian" } data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
)");
  const std::string solver =
      write("solver.prototxt",
            "net: \"" + net + "\"\n" +
                "base_lr: 0.1\nmomentum: 0.9\nlr_policy: \"fixed\"\nmax_iter: 4\ndisplay: 1\n" +
                "snapshot: 2\nsnapshot_prefix: \"" + dir_ + "/tiny\"\nrandom_seed: 3\n");
  Result r = RunCrema("train --solver=" + solver);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Iteration 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Trained 4 iterations"), std::string::npos) << r.output;
  for (const char* suffix :
       {"_iter_2.caffemodel", "_iter_2.solverstate", "_iter_4.caffemodel", "_iter_4.solverstate"})
    EXPECT_TRUE(crema::FileExists(dir_ + "/tiny" + suffix)) << suffix;

  r = RunCrema("train --solver " + solver + " --snapshot " + dir_ + "/tiny_iter_2.solverstate");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Trained 4 iterations"), std::string::npos) << r.output;

  r = RunCrema("train --solver " + solver + " --weights " + dir_ + "/tiny_iter_4.caffemodel");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Fine-tuning from"), std::string::npos) << r.output;

  r = RunCrema("test --iterations 2 --model " + net + " --weights " + dir_ +
               "/tiny_iter_4.caffemodel");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("loss = "), std::string::npos) << r.output;
}

}  // namespace
