// With the same random_seed, crema's uniform-based fillers (uniform, xavier,
// positive_unitball) give the weights BVLC Caffe gives: the same generator seeded the same
// way, the same draw formula, and the same draws taken by the layers set up before
// (data layers' seeds, the dropped fills of unrolled recurrent layers). The expected
// numbers below were written by BVLC Caffe (master 9b89154, CPU build, `caffe train` with
// max_iter: 0 and random_seed: 1701) on the same nets: they are facts about Caffe, not
// about crema's code.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/db.hpp"
#include "crema/net.hpp"
#include "test_util.hpp"

namespace crema {
namespace {
using testing::NetParam;
using testing::TempDir;
using testing::Values;

// An LMDB of `n` Datums of shape channels x size x size (the pixel values do not matter:
// only the shapes and the transformations decide what the data layers draw).
std::string WriteDatums(const std::string& dir, int channels, int size, int n) {
  const std::string path = dir + "/lmdb";
  testing::WriteDatumLmdb(
      path, n, channels, size, size, [](int, int) { return 0x40; }, [](int i) { return i % 10; });
  return path;
}

// The first values of parameter blob `index` of layer `layer`.
std::vector<float> Head(const Net& net, const std::string& layer, int index, size_t n) {
  const std::shared_ptr<Layer> l = net.layer_by_name(layer);
  EXPECT_TRUE(l) << layer;
  if (!l) return {};
  const std::vector<float> all = Values(*l->blobs().at(index));
  return std::vector<float>(all.begin(), all.begin() + std::min(n, all.size()));
}

void ExpectHead(const Net& net, const std::string& layer, int index,
                const std::vector<float>& caffe) {
  EXPECT_EQ(Head(net, layer, index, caffe.size()), caffe) << layer << " blob " << index;
}

class CaffeStreamTest : public ::testing::Test {
 protected:
  void SetUp() override { Context::set_random_seed(1701); }
  void TearDown() override { Context::set_random_seed(saved_seed_); }
  int64_t saved_seed_ = Context::random_seed();
};

// LeNet: one Data layer (one seed, for its prefetch thread), then xavier everywhere.
TEST_F(CaffeStreamTest, LeNetXavierWeights) {
  TempDir dir;
  const std::string lmdb = WriteDatums(dir.path(), 1, 28, 2);
  Net net(NetParam(R"(
    state { phase: TRAIN }
    layer { name: "d" type: "Data" top: "data" top: "label"
            transform_param { scale: 0.00390625 }
            data_param { source: ")" +
                   lmdb + R"(" batch_size: 2 backend: LMDB } }
    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
            convolution_param { num_output: 20 kernel_size: 5
              weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
    layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
            pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
            convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
    layer { name: "ip2" type: "InnerProduct" bottom: "conv2" top: "ip2"
            inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" })"));
  ExpectHead(net, "conv1", 0, {0.0129828453f, -0.266474158f, 0.212474167f, 0.0129861832f});
  ExpectHead(net, "conv2", 0, {0.0431194678f, 0.0336772874f, -0.0197863653f, 0.0672082826f});
}

// Three Data layers whose transformers draw (crop in TRAIN, mirror) take 3 seeds each; then
// xavier with both variance norms, uniform with bounds, and positive_unitball (a float sum
// per row, as Caffe's).
TEST_F(CaffeStreamTest, DataLayerSeedsAndUniformFillers) {
  TempDir dir;
  const std::string lmdb = WriteDatums(dir.path(), 3, 32, 4);
  const std::string data = R"(" batch_size: 4 backend: LMDB } })";
  Net net(NetParam(R"(
    state { phase: TRAIN }
    layer { name: "d" type: "Data" top: "data" top: "label"
            transform_param { scale: 0.00390625 crop_size: 28 mirror: true }
            data_param { source: ")" +
                   lmdb + data + R"(
    layer { name: "d2" type: "Data" top: "data2" top: "label2"
            transform_param { crop_size: 20 } data_param { source: ")" +
                   lmdb + data + R"(
    layer { name: "d3" type: "Data" top: "data3" top: "label3"
            transform_param { mirror: true } data_param { source: ")" +
                   lmdb + data + R"(
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 8 kernel_size: 3
              weight_filler { type: "xavier" variance_norm: AVERAGE }
              bias_filler { type: "uniform" min: -0.5 max: 0.25 } } }
    layer { name: "sc" type: "Scale" bottom: "conv" top: "sc"
            scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 1.5 }
                          bias_filler { type: "xavier" } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "sc" top: "ip1"
            inner_product_param { num_output: 16 weight_filler { type: "positive_unitball" }
                                  bias_filler { type: "uniform" } } }
    layer { name: "conv2" type: "Convolution" bottom: "data2" top: "conv2"
            convolution_param { num_output: 4 kernel_size: 3
                                weight_filler { type: "xavier" variance_norm: FAN_OUT } } }
    layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
            inner_product_param { num_output: 10 weight_filler { type: "uniform" min: -3 max: 3 } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
    layer { name: "sil" type: "Silence" bottom: "conv2" bottom: "label2" bottom: "data3"
            bottom: "label3" })"));
  ExpectHead(net, "conv", 0, {-0.012308538f, 0.162419543f, 0.221506462f, -0.141386747f});
  ExpectHead(net, "conv", 1, {0.151605844f, 0.0169762373f, -0.346926391f, 0.201144934f});
  ExpectHead(net, "sc", 0, {0.564347684f, 1.26993477f, 0.545682311f, 0.606479883f});
  ExpectHead(net, "sc", 1, {-0.655679107f, -0.0146605968f, -1.17420161f, 0.141670108f});
  ExpectHead(net, "ip1", 0, {0.000343689811f, 0.00027389219f, 5.7160767e-05f, 0.000329230708f});
  ExpectHead(net, "ip1", 1, {0.0443071276f, 0.511818826f, 0.664194584f, 0.524505913f});
  ExpectHead(net, "conv2", 0, {-0.238491058f, 0.0934745073f, -0.223657489f, 0.0357965529f});
  ExpectHead(net, "ip2", 0, {2.9052248f, -1.60396957f, -0.293017626f, -1.24997497f});
}

// Embed, Bias, Deconvolution, then RNN and LSTM over 3 steps: Caffe fills the step weights
// once per step (RNN: W_hh, W_ho, b_o; LSTM: W_hc) and keeps the first fill, so the layer
// after them sees the stream moved on by the dropped fills.
TEST_F(CaffeStreamTest, RecurrentLayersDropTheirExtraStepFills) {
  Net net(NetParam(R"(
    state { phase: TRAIN }
    layer { name: "in" type: "DummyData" top: "x" top: "cont" top: "ids" top: "img"
            dummy_data_param {
              shape { dim: 3 dim: 2 dim: 5 } shape { dim: 3 dim: 2 } shape { dim: 2 dim: 3 }
              shape { dim: 2 dim: 3 dim: 4 dim: 4 }
              data_filler { type: "constant" value: 0.5 } data_filler { type: "constant" value: 1 }
              data_filler { type: "constant" value: 1 }
              data_filler { type: "constant" value: 0.1 } } }
    layer { name: "emb" type: "Embed" bottom: "ids" top: "emb"
            embed_param { num_output: 6 input_dim: 10
                          weight_filler { type: "uniform" min: -1 max: 1 }
                          bias_filler { type: "xavier" } } }
    layer { name: "bias" type: "Bias" bottom: "img" top: "b"
            bias_param { filler { type: "uniform" } } }
    layer { name: "deconv" type: "Deconvolution" bottom: "b" top: "dc"
            convolution_param { num_output: 2 kernel_size: 3 weight_filler { type: "xavier" }
                                bias_filler { type: "uniform" min: 1 max: 2 } } }
    layer { name: "rnn" type: "RNN" bottom: "x" bottom: "cont" top: "h"
            recurrent_param { num_output: 4 weight_filler { type: "xavier" }
                              bias_filler { type: "uniform" } } }
    layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h2"
            recurrent_param { num_output: 3 weight_filler { type: "uniform" min: -0.1 max: 0.1 }
                              bias_filler { type: "xavier" } } }
    layer { name: "ip" type: "InnerProduct" bottom: "emb" top: "ip"
            inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
    layer { name: "sil" type: "Silence" bottom: "dc" bottom: "h" bottom: "h2" bottom: "ip" })"));
  ExpectHead(net, "emb", 0, {-0.821133554f, 0.0374782085f, -0.769244611f, 0.613360167f});
  ExpectHead(net, "emb", 1, {1.38000667f, -1.13669991f, -1.56439626f, -1.17540431f});
  ExpectHead(net, "bias", 0, {0.325532526f, 0.710003555f, 0.475283146f});
  ExpectHead(net, "deconv", 0, {0.115602016f, 0.342028081f, 0.22483319f, -0.385051399f});
  ExpectHead(net, "deconv", 1, {1.42536747f, 1.09563196f});
  ExpectHead(net, "rnn", 2, {0.73588866f, 0.147601783f, 0.733625114f, -0.597549081f});
  ExpectHead(net, "rnn", 4, {0.556245804f, 0.663968801f, 0.163065434f, 0.384009331f});
  ExpectHead(net, "lstm", 0, {-0.0251015574f, -0.064435035f, 0.0261831209f, -0.0358902141f});
  ExpectHead(net, "lstm", 2, {0.0456992611f, 0.0413002595f, 0.0376259312f, 0.0886133835f});
  ExpectHead(net, "ip", 0, {0.208726108f, -0.11234045f, 0.344137132f, 0.159664869f});
}

}  // namespace
}  // namespace crema
