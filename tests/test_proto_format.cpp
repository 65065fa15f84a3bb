// The schema's wire and text compatibility with Caffe, and the protobuf file readers and
// writers. Binary inputs are assembled byte by byte from the protobuf wire format, so
// these tests do not merely check that crema agrees with itself.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include "crema.pb.h"
#include "crema/common.hpp"
#include "crema/io.hpp"

namespace crema {
namespace {

// ---- A tiny protobuf wire-format writer ----

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class Wire {
 public:
  Wire& Varint(uint64_t value) {
    while (value >= 0x80) {
      bytes_.push_back(static_cast<char>((value & 0x7F) | 0x80));
      value >>= 7;
    }
    bytes_.push_back(static_cast<char>(value));
    return *this;
  }
  Wire& Key(int field, WireType type) {
    return Varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
  }
  Wire& Fixed32(uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    return *this;
  }
  Wire& Fixed64(uint64_t value) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    return *this;
  }
  Wire& Float(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    return Fixed32(bits);
  }
  Wire& Double(double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    return Fixed64(bits);
  }
  Wire& Raw(const std::string& raw) {
    bytes_ += raw;
    return *this;
  }

  // Whole fields.
  Wire& VarintField(int field, uint64_t value) { return Key(field, kVarint).Varint(value); }
  Wire& FloatField(int field, float value) { return Key(field, kFixed32).Float(value); }
  Wire& BytesField(int field, const std::string& payload) {
    return Key(field, kLengthDelimited).Varint(payload.size()).Raw(payload);
  }
  Wire& MessageField(int field, const Wire& message) { return BytesField(field, message.str()); }
  Wire& PackedFloats(int field, const std::vector<float>& values) {
    Wire payload;
    for (float v : values) payload.Float(v);
    return BytesField(field, payload.str());
  }
  Wire& PackedDoubles(int field, const std::vector<double>& values) {
    Wire payload;
    for (double v : values) payload.Double(v);
    return BytesField(field, payload.str());
  }
  Wire& PackedVarints(int field, const std::vector<uint64_t>& values) {
    Wire payload;
    for (uint64_t v : values) payload.Varint(v);
    return BytesField(field, payload.str());
  }

  const std::string& str() const { return bytes_; }

 private:
  std::string bytes_;
};

std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

::testing::AssertionResult SameMessage(const google::protobuf::Message& expected,
                                       const google::protobuf::Message& actual) {
  google::protobuf::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(expected, actual)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << report;
}

// Each test gets its own scratch directory (ctest runs tests as parallel processes).
class ProtoIO : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/crema_proto_XXXXXX";
    ASSERT_NE(::mkdtemp(&pattern[0]), nullptr);
    dir_ = std::filesystem::path(pattern).lexically_normal().string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string WriteRaw(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good());
    return path;
  }
  std::string dir_;
};

// Expects `fn` to throw crema::Error whose message contains every string in `parts`.
template <typename Fn>
std::string ExpectErrorContaining(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one paragraph: " << message;
    return message;
  }
  ADD_FAILURE() << "expected crema::Error";
  return "";
}

// A small NetParameter with weights, used by the round-trip and truncation tests.
pb::NetParameter SampleNet() {
  pb::NetParameter net;
  net.set_name("sample");
  pb::LayerParameter* conv = net.add_layer();
  conv->set_name("conv1");
  conv->set_type("Convolution");
  conv->add_bottom("data");
  conv->add_top("conv1");
  conv->add_param()->set_lr_mult(1);
  conv->add_param()->set_lr_mult(2);
  pb::ConvolutionParameter* cp = conv->mutable_convolution_param();
  cp->set_num_output(2);
  cp->add_kernel_size(3);
  cp->mutable_weight_filler()->set_type("xavier");
  pb::BlobProto* weights = conv->add_blobs();
  for (int d : {2, 1, 3, 3}) weights->mutable_shape()->add_dim(d);
  for (int i = 0; i < 18; ++i) weights->add_data(0.125f * static_cast<float>(i) - 1.f);
  pb::BlobProto* bias = conv->add_blobs();
  bias->mutable_shape()->add_dim(2);
  bias->add_data(0.5f);
  bias->add_data(-0.5f);
  pb::LayerParameter* loss = net.add_layer();
  loss->set_name("loss");
  loss->set_type("SoftmaxWithLoss");
  loss->add_bottom("conv1");
  loss->add_bottom("label");
  loss->add_top("loss");
  loss->add_loss_weight(1);
  pb::NetStateRule* rule = loss->add_include();
  rule->set_phase(pb::TRAIN);
  return net;
}

// ---------------------------------------------------------------------------------------
// ProtoFormat: the wire layout matches Caffe's
// ---------------------------------------------------------------------------------------

TEST(ProtoFormat, BlobWithPackedFloatData) {
  Wire shape;
  shape.PackedVarints(1, {2, 3});  // BlobShape.dim, packed int64
  Wire blob;
  blob.MessageField(7, shape).PackedFloats(5, {1, -2, 3.5f, 0, 1e-3f, -7});
  pb::BlobProto proto;
  ASSERT_TRUE(proto.ParseFromString(blob.str()));
  ASSERT_EQ(proto.shape().dim_size(), 2);
  EXPECT_EQ(proto.shape().dim(0), 2);
  EXPECT_EQ(proto.shape().dim(1), 3);
  ASSERT_EQ(proto.data_size(), 6);
  EXPECT_FLOAT_EQ(proto.data(2), 3.5f);
  EXPECT_FLOAT_EQ(proto.data(4), 1e-3f);
  EXPECT_FLOAT_EQ(proto.data(5), -7.f);
  EXPECT_EQ(proto.diff_size(), 0);
}

TEST(ProtoFormat, BlobWithUnpackedFloatData) {
  // Writers may emit repeated scalars one element per key; a reader must accept both
  // forms, even mixed within one message (the values are concatenated).
  Wire blob;
  blob.FloatField(5, 0.25f).FloatField(5, -4.f).PackedFloats(5, {8, 9}).FloatField(5, 10);
  blob.FloatField(6, 1.5f).FloatField(6, 2.5f);                    // diff, unpacked
  blob.Key(8, kFixed64).Double(0.1).PackedDoubles(8, {0.2, 0.3});  // double_data
  pb::BlobProto proto;
  ASSERT_TRUE(proto.ParseFromString(blob.str()));
  ASSERT_EQ(proto.data_size(), 5);
  EXPECT_FLOAT_EQ(proto.data(0), 0.25f);
  EXPECT_FLOAT_EQ(proto.data(1), -4.f);
  EXPECT_FLOAT_EQ(proto.data(2), 8.f);
  EXPECT_FLOAT_EQ(proto.data(3), 9.f);
  EXPECT_FLOAT_EQ(proto.data(4), 10.f);
  ASSERT_EQ(proto.diff_size(), 2);
  EXPECT_FLOAT_EQ(proto.diff(1), 2.5f);
  ASSERT_EQ(proto.double_data_size(), 3);
  EXPECT_DOUBLE_EQ(proto.double_data(0), 0.1);
  EXPECT_DOUBLE_EQ(proto.double_data(2), 0.3);
}

TEST(ProtoFormat, UnknownFieldsAreSkipped) {
  Wire nested;
  nested.VarintField(1, 5).BytesField(2, "junk");
  Wire blob;
  blob.VarintField(999, 123456789)                 // unknown varint
      .PackedFloats(5, {1, 2})                     // data
      .BytesField(999, "something else entirely")  // unknown length-delimited
      .MessageField(1000, nested)                  // unknown nested message
      .Key(1001, kFixed32)
      .Fixed32(0xDEADBEEF)  // unknown fixed32
      .Key(1002, kFixed64)
      .Fixed64(0x0123456789ABCDEF)  // unknown fixed64
      .VarintField(2, 3)            // channels (legacy)
      .FloatField(5, 3);            // more data
  pb::BlobProto proto;
  ASSERT_TRUE(proto.ParseFromString(blob.str()));
  ASSERT_EQ(proto.data_size(), 3);
  EXPECT_FLOAT_EQ(proto.data(0), 1.f);
  EXPECT_FLOAT_EQ(proto.data(2), 3.f);
  EXPECT_EQ(proto.channels(), 3);
  EXPECT_FALSE(proto.has_shape());
}

TEST(ProtoFormat, LegacyFourDimensionalBlob) {
  Wire blob;
  blob.VarintField(1, 2).VarintField(2, 3).VarintField(3, 4).VarintField(4, 5);
  Wire values;
  for (int i = 0; i < 120; ++i) values.Float(static_cast<float>(i));
  blob.BytesField(5, values.str());
  pb::BlobProto proto;
  ASSERT_TRUE(proto.ParseFromString(blob.str()));
  EXPECT_FALSE(proto.has_shape());
  EXPECT_EQ(proto.num(), 2);
  EXPECT_EQ(proto.channels(), 3);
  EXPECT_EQ(proto.height(), 4);
  EXPECT_EQ(proto.width(), 5);
  ASSERT_EQ(proto.data_size(), 120);
  EXPECT_FLOAT_EQ(proto.data(119), 119.f);
}

TEST(ProtoFormat, BlobShapeDimsArePackedInt64) {
  pb::BlobShape shape;
  shape.add_dim(2);
  shape.add_dim(300);
  shape.add_dim(int64_t{1} << 33);
  Wire expected;
  expected.PackedVarints(1, {2, 300, uint64_t{1} << 33});
  EXPECT_EQ(Hex(shape.SerializeAsString()), Hex(expected.str()));
  // Unpacked dims are accepted too.
  Wire unpacked;
  unpacked.VarintField(1, 7).VarintField(1, 9);
  pb::BlobShape parsed;
  ASSERT_TRUE(parsed.ParseFromString(unpacked.str()));
  ASSERT_EQ(parsed.dim_size(), 2);
  EXPECT_EQ(parsed.dim(1), 9);
}

TEST(ProtoFormat, BlobSerializesLikeCaffe) {
  pb::BlobProto blob;
  blob.mutable_shape()->add_dim(2);
  blob.add_data(1.f);
  blob.add_data(-1.f);
  // Fields in number order: data (5, packed) before shape (7).
  Wire shape;
  shape.PackedVarints(1, {2});
  Wire expected;
  expected.PackedFloats(5, {1.f, -1.f}).MessageField(7, shape);
  EXPECT_EQ(Hex(blob.SerializeAsString()), Hex(expected.str()));
  EXPECT_EQ(Hex(expected.str()), "2a 08 00 00 80 3f 00 00 80 bf 3a 03 0a 01 02");
}

TEST(ProtoFormat, NetParameterWithLayerAndBlobs) {
  Wire shape;
  shape.PackedVarints(1, {3});
  Wire blob;
  blob.MessageField(7, shape).PackedFloats(5, {0.5f, 1.5f, 2.5f});
  Wire legacy_blob;
  legacy_blob.VarintField(1, 1).VarintField(2, 1).VarintField(3, 1).VarintField(4, 1);
  legacy_blob.FloatField(5, 42.f);
  Wire param;
  param.FloatField(3, 0.f).FloatField(4, 0.f);  // lr_mult, decay_mult
  Wire layer;
  layer.BytesField(1, "ip")
      .BytesField(2, "InnerProduct")
      .BytesField(3, "x")
      .BytesField(4, "y")
      .MessageField(6, param)
      .MessageField(7, blob)
      .MessageField(7, legacy_blob)
      .MessageField(117, Wire().VarintField(1, 3));  // inner_product_param.num_output
  Wire net;
  net.BytesField(1, "handmade").VarintField(5, 1).MessageField(100, layer);
  // The key of field 100 needs two varint bytes: (100 << 3) | 2 = 802.
  EXPECT_EQ(Hex(Wire().Key(100, kLengthDelimited).str()), "a2 06");

  pb::NetParameter proto;
  ASSERT_TRUE(proto.ParseFromString(net.str()));
  EXPECT_EQ(proto.name(), "handmade");
  EXPECT_TRUE(proto.force_backward());
  ASSERT_EQ(proto.layer_size(), 1);
  const pb::LayerParameter& l = proto.layer(0);
  EXPECT_EQ(l.name(), "ip");
  EXPECT_EQ(l.type(), "InnerProduct");
  EXPECT_EQ(l.bottom(0), "x");
  EXPECT_EQ(l.top(0), "y");
  ASSERT_EQ(l.param_size(), 1);
  EXPECT_TRUE(l.param(0).has_lr_mult());
  EXPECT_EQ(l.param(0).lr_mult(), 0.f);
  EXPECT_EQ(l.inner_product_param().num_output(), 3u);
  ASSERT_EQ(l.blobs_size(), 2);
  EXPECT_EQ(l.blobs(0).shape().dim(0), 3);
  EXPECT_FLOAT_EQ(l.blobs(0).data(2), 2.5f);
  EXPECT_EQ(l.blobs(1).num(), 1);
  EXPECT_FLOAT_EQ(l.blobs(1).data(0), 42.f);
}

TEST(ProtoFormat, V1LayersFieldNumbers) {
  // An old-style model: NetParameter.layers (2) holding V1LayerParameter with
  // name (4), type (5, enum), blobs (6), blobs_lr (7) and a V0 layer (1).
  Wire v0;
  v0.BytesField(1, "conv_v0").BytesField(2, "conv").VarintField(3, 4);
  Wire v1;
  v1.BytesField(2, "data")
      .BytesField(3, "conv")
      .BytesField(4, "conv")
      .VarintField(5, 4)  // CONVOLUTION
      .MessageField(6, Wire().PackedFloats(5, {1, 2}))
      .FloatField(7, 1.f)
      .FloatField(7, 2.f)
      .BytesField(1001, "shared")
      .VarintField(1002, 1)  // PERMISSIVE
      .MessageField(1, v0);
  Wire net;
  net.MessageField(2, v1).BytesField(3, "data").VarintField(4, 1).VarintField(4, 3);
  pb::NetParameter proto;
  ASSERT_TRUE(proto.ParseFromString(net.str()));
  ASSERT_EQ(proto.layers_size(), 1);
  const pb::V1LayerParameter& layer = proto.layers(0);
  EXPECT_EQ(layer.type(), pb::V1LayerParameter::CONVOLUTION);
  EXPECT_EQ(layer.name(), "conv");
  ASSERT_EQ(layer.blobs_lr_size(), 2);
  EXPECT_FLOAT_EQ(layer.blobs_lr(1), 2.f);
  EXPECT_EQ(layer.param(0), "shared");
  EXPECT_EQ(layer.blob_share_mode(0), pb::V1LayerParameter::PERMISSIVE);
  EXPECT_EQ(layer.layer().num_output(), 4u);
  EXPECT_EQ(proto.input(0), "data");
  ASSERT_EQ(proto.input_dim_size(), 2);
  EXPECT_EQ(proto.input_dim(1), 3);
}

TEST(ProtoFormat, DatumFieldLayout) {
  pb::Datum datum;
  datum.set_channels(3);
  datum.set_height(2);
  datum.set_width(1);
  datum.set_data(std::string("\x01\x02\x03\xfd\xfe\xff", 6));
  datum.set_label(7);
  datum.add_float_data(1.f);
  datum.add_float_data(2.f);
  datum.set_encoded(true);
  // float_data (6) is NOT packed in Caffe's schema: one key per value.
  EXPECT_EQ(Hex(datum.SerializeAsString()),
            "08 03 10 02 18 01 22 06 01 02 03 fd fe ff 28 07 "
            "35 00 00 80 3f 35 00 00 00 40 38 01");
  // And a record written by hand parses back.
  Wire bytes;
  bytes.VarintField(1, 1).VarintField(2, 2).VarintField(3, 2).BytesField(4, "abcd");
  bytes.VarintField(5, 9);
  pb::Datum parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes.str()));
  EXPECT_EQ(parsed.channels(), 1);
  EXPECT_EQ(parsed.width(), 2);
  EXPECT_EQ(parsed.data(), "abcd");
  EXPECT_EQ(parsed.label(), 9);
  EXPECT_FALSE(parsed.encoded());
}

TEST(ProtoFormat, KeyFieldNumbers) {
  const google::protobuf::Descriptor* layer = pb::LayerParameter::descriptor();
  const std::pair<const char*, int> layer_fields[] = {
      {"name", 1},
      {"type", 2},
      {"blobs", 7},
      {"phase", 10},
      {"transform_param", 100},
      {"loss_param", 101},
      {"accuracy_param", 102},
      {"convolution_param", 106},
      {"pooling_param", 121},
      {"batch_norm_param", 139},
      {"input_param", 143},
      {"recurrent_param", 146},
      {"clip_param", 148},
  };
  for (const auto& f : layer_fields) {
    const google::protobuf::FieldDescriptor* field = layer->FindFieldByName(f.first);
    ASSERT_NE(field, nullptr) << f.first;
    EXPECT_EQ(field->number(), f.second) << f.first;
  }
  EXPECT_EQ(pb::NetParameter::descriptor()->FindFieldByName("layer")->number(), 100);
  EXPECT_EQ(pb::NetParameter::descriptor()->FindFieldByName("layers")->number(), 2);
  EXPECT_EQ(pb::SolverParameter::descriptor()->FindFieldByName("type")->number(), 40);
  EXPECT_EQ(pb::SolverParameter::descriptor()->FindFieldByName("solver_type")->number(), 30);
  EXPECT_EQ(pb::V1LayerParameter::descriptor()->FindFieldByName("blob_share_mode")->number(), 1002);
  EXPECT_EQ(pb::V1LayerParameter::LayerType_descriptor()->value_count(), 40);
  EXPECT_EQ(pb::V1LayerParameter::DECONVOLUTION, 39);
  EXPECT_EQ(pb::TRAIN, 0);
  EXPECT_EQ(pb::TEST, 1);
}

TEST(ProtoFormat, DefaultsMatchCaffe) {
  EXPECT_EQ(pb::FillerParameter().type(), "constant");
  EXPECT_EQ(pb::FillerParameter().sparse(), -1);
  EXPECT_EQ(pb::NetState().phase(), pb::TEST);
  EXPECT_EQ(pb::ParamSpec().lr_mult(), 1.f);
  EXPECT_EQ(pb::ConvolutionParameter().bias_term(), true);
  EXPECT_EQ(pb::ConvolutionParameter().group(), 1u);
  EXPECT_EQ(pb::PoolingParameter().round_mode(), pb::PoolingParameter::CEIL);
  EXPECT_EQ(pb::PoolingParameter().stride(), 1u);
  EXPECT_EQ(pb::DataParameter().backend(), pb::DataParameter::LEVELDB);
  EXPECT_EQ(pb::DataParameter().prefetch(), 4u);
  EXPECT_EQ(pb::LossParameter().normalization(), pb::LossParameter::VALID);
  EXPECT_FLOAT_EQ(pb::BatchNormParameter().moving_average_fraction(), 0.999f);
  EXPECT_FLOAT_EQ(pb::BatchNormParameter().eps(), 1e-5f);
  EXPECT_EQ(pb::SolverParameter().type(), "SGD");
  EXPECT_EQ(pb::SolverParameter().solver_mode(), pb::SolverParameter::GPU);
  EXPECT_EQ(pb::SolverParameter().snapshot_format(), pb::SolverParameter::BINARYPROTO);
  EXPECT_EQ(pb::SolverParameter().random_seed(), -1);
  EXPECT_FLOAT_EQ(pb::SolverParameter().delta(), 1e-8f);
  EXPECT_FLOAT_EQ(pb::SolverParameter().clip_gradients(), -1.f);
  EXPECT_EQ(pb::SolverParameter().regularization_type(), "L2");
  EXPECT_EQ(pb::EltwiseParameter().operation(), pb::EltwiseParameter::SUM);
  EXPECT_EQ(pb::HingeLossParameter().norm(), pb::HingeLossParameter::L1);
  EXPECT_EQ(pb::ReductionParameter().operation(), pb::ReductionParameter::SUM);
  EXPECT_EQ(pb::WindowDataParameter().crop_mode(), "warp");
  EXPECT_EQ(pb::CropParameter().axis(), 2);
}

TEST(ProtoFormat, TextFormatUsesCaffeNames) {
  // Field and enum names are Caffe's, so Caffe prototxt parses unchanged.
  pb::NetParameter net;
  ReadProtoFromTextString(
      "name: 'n' layer { name: 'p' type: 'Pooling' pooling_param { pool: AVE "
      "round_mode: FLOOR global_pooling: true } include { phase: TEST not_stage: 'x' } } "
      "layers { name: 'old' type: SOFTMAX_LOSS blob_share_mode: STRICT }",
      &net, "names.prototxt");
  EXPECT_EQ(net.layer(0).pooling_param().pool(), pb::PoolingParameter::AVE);
  EXPECT_EQ(net.layer(0).pooling_param().round_mode(), pb::PoolingParameter::FLOOR);
  EXPECT_EQ(net.layer(0).include(0).phase(), pb::TEST);
  EXPECT_EQ(net.layers(0).type(), pb::V1LayerParameter::SOFTMAX_LOSS);
  // The printer emits net-wide fields before the layers (layer is field 100).
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(net, &text));
  EXPECT_LT(text.find("layers {"), text.find("layer {"));
  EXPECT_LT(text.find("name: \"n\""), text.find("layer {"));
}

TEST(ProtoFormat, ClipBoundsAreRequired) {
  pb::LayerParameter layer;
  ExpectErrorContaining(
      [&] { ReadProtoFromTextString("clip_param { min: 0 }", &layer, "clip.prototxt"); },
      {"clip.prototxt", "clip_param.max"});
  ReadProtoFromTextString("clip_param { min: -1 max: 1 }", &layer, "clip.prototxt");
  EXPECT_EQ(layer.clip_param().max(), 1.f);
}

// ---------------------------------------------------------------------------------------
// ProtoIO: the readers and writers
// ---------------------------------------------------------------------------------------

TEST_F(ProtoIO, ReadHandBuiltBinaryFile) {
  Wire blob;
  blob.VarintField(1, 1).VarintField(2, 2).VarintField(3, 1).VarintField(4, 1);
  blob.PackedFloats(5, {3.f, 4.f}).VarintField(999, 1);
  const std::string path = WriteRaw("mean.binaryproto", blob.str());
  pb::BlobProto proto;
  ReadProtoFromBinaryFile(path, &proto);
  EXPECT_EQ(proto.channels(), 2);
  ASSERT_EQ(proto.data_size(), 2);
  EXPECT_FLOAT_EQ(proto.data(1), 4.f);
}

TEST_F(ProtoIO, NetParameterBinaryRoundTrip) {
  const pb::NetParameter net = SampleNet();
  const std::string path = dir_ + "/net.caffemodel";
  WriteProtoToBinaryFile(net, path);
  pb::NetParameter back;
  ReadProtoFromBinaryFile(path, &back);
  EXPECT_TRUE(SameMessage(net, back));
  // The bytes are exactly protobuf's serialization.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, net.SerializeAsString());
}

TEST_F(ProtoIO, NetParameterTextRoundTrip) {
  const pb::NetParameter net = SampleNet();
  const std::string path = dir_ + "/net.prototxt";
  WriteProtoToTextFile(net, path);
  pb::NetParameter back;
  ReadProtoFromTextFile(path, &back);
  EXPECT_TRUE(SameMessage(net, back));
}

TEST_F(ProtoIO, SolverStateRoundTrip) {
  pb::SolverState state;
  state.set_iter(1234);
  state.set_learned_net("snap_iter_1234.caffemodel");
  state.set_current_step(2);
  for (int b = 0; b < 3; ++b) {
    pb::BlobProto* history = state.add_history();
    history->mutable_shape()->add_dim(b + 1);
    for (int i = 0; i <= b; ++i) history->add_data(0.01f * static_cast<float>(i + b));
  }
  const std::string path = dir_ + "/snap_iter_1234.solverstate";
  WriteProtoToBinaryFile(state, path);
  pb::SolverState back;
  ReadProtoFromBinaryFile(path, &back);
  EXPECT_TRUE(SameMessage(state, back));
  EXPECT_EQ(back.iter(), 1234);
  EXPECT_EQ(back.history(2).data_size(), 3);
}

TEST_F(ProtoIO, TruncatedBinaryFileIsAnError) {
  const std::string bytes = SampleNet().SerializeAsString();
  // Every cut below lands inside the first layer's length-delimited record.
  for (size_t keep : {bytes.size() - 1, bytes.size() - 5, bytes.size() / 2, size_t{12}}) {
    const std::string path =
        WriteRaw("cut_" + std::to_string(keep) + ".caffemodel", bytes.substr(0, keep));
    pb::NetParameter net;
    ExpectErrorContaining([&] { ReadProtoFromBinaryFile(path, &net); },
                          {path, "truncated or corrupt"});
  }
}

TEST_F(ProtoIO, TrailingGarbageIsAnError) {
  const std::string bytes = SampleNet().SerializeAsString();
  pb::NetParameter net;
  // A zero byte is not a valid field key; the decoder stops there.
  const std::string zero = WriteRaw("zero.caffemodel", bytes + std::string(1, '\0'));
  ExpectErrorContaining([&] { ReadProtoFromBinaryFile(zero, &net); }, {zero});
  // An unfinished varint key.
  const std::string partial = WriteRaw("partial.caffemodel", bytes + "\xff");
  ExpectErrorContaining([&] { ReadProtoFromBinaryFile(partial, &net); }, {partial});
  // A text file handed to the binary reader.
  const std::string text = WriteRaw("text.caffemodel", "name: \"not binary\"\n");
  ExpectErrorContaining([&] { ReadProtoFromBinaryFile(text, &net); }, {text});
}

TEST_F(ProtoIO, MissingFilesAreErrors) {
  const std::string path = dir_ + "/does_not_exist.caffemodel";
  EXPECT_FALSE(FileExists(path));
  pb::NetParameter net;
  ExpectErrorContaining([&] { ReadProtoFromBinaryFile(path, &net); }, {path, "No such file"});
  ExpectErrorContaining([&] { ReadProtoFromTextFile(path, &net); }, {path, "No such file"});
  ExpectErrorContaining([&] { ReadNetParamsFromTextFile(path, &net); }, {path});
  ExpectErrorContaining([&] { ReadProtoFromBinaryFile(dir_, &net); }, {dir_, "directory"});
  EXPECT_TRUE(FileExists(dir_));
}

TEST_F(ProtoIO, TextParseErrorGivesLineAndColumn) {
  const std::string path = WriteRaw("bad.prototxt",
                                    "name: \"bad\"\n"
                                    "layer {\n"
                                    "  name: \"relu\"\n"
                                    "  type \"ReLU\"\n"
                                    "}\n");
  pb::NetParameter net;
  // Line 4; the offending token (the string after `type`, with no colon) is in column 8.
  ExpectErrorContaining([&] { ReadProtoFromTextFile(path, &net); }, {path + ":4:8:"});
}

TEST_F(ProtoIO, UnknownFieldNameIsAnError) {
  const std::string path = WriteRaw("unknown.prototxt",
                                    "name: \"n\"\n"
                                    "layer {\n"
                                    "  name: \"conv\"\n"
                                    "  convolution_param {\n"
                                    "    num_output: 3\n"
                                    "    kernal_size: 3\n"
                                    "  }\n"
                                    "}\n");
  pb::NetParameter net;
  // The position is where the misspelt name starts: line 6, column 5.
  ExpectErrorContaining([&] { ReadProtoFromTextFile(path, &net); },
                        {path + ":6:5:", "kernal_size", "ConvolutionParameter", "NetParameter"});
}

TEST_F(ProtoIO, ErrorColumnsCountTabsLikeTheTokenizer) {
  // A tab advances to the next multiple of 8, so the name after one tab is in column 9.
  pb::SolverParameter solver;
  ExpectErrorContaining(
      [&] { ReadProtoFromTextString("base_lr: 0.1\n\tlearning_rate: 0.1\n", &solver, "s.txt"); },
      {"s.txt:2:9:", "learning_rate"});
  // Errors at the very start are 1:1 (positions are 1-based).
  ExpectErrorContaining([&] { ReadProtoFromTextString("}", &solver, "s.txt"); }, {"s.txt:1:1:"});
}

TEST_F(ProtoIO, UnknownEnumValuePointsAtTheValue) {
  // The parser notices the bad value only at the next token (here on the next line);
  // the reported position is the value's own.
  pb::NetParameter net;
  ExpectErrorContaining(
      [&] {
        ReadProtoFromTextString(
            "layer {\n  name: \"p\"\n  pooling_param {\n    pool: MEDIAN\n"
            "  }\n}\n",
            &net, "enum.prototxt");
      },
      {"enum.prototxt:4:11:", "MEDIAN"});
  ExpectErrorContaining(
      [&] { ReadProtoFromTextString("name: 'a'\nname: 'b'\n", &net, "twice.prototxt"); },
      {"twice.prototxt:2:1:", "name"});
}

TEST_F(ProtoIO, WritersReplaceFilesAtomically) {
  const std::string path = dir_ + "/model.caffemodel";
  pb::NetParameter first = SampleNet();
  WriteProtoToBinaryFile(first, path);
  pb::NetParameter second = SampleNet();
  second.set_name("second");
  second.mutable_layer(0)->mutable_blobs(0)->add_data(99.f);
  WriteProtoToBinaryFile(second, path);

  pb::NetParameter back;
  ReadProtoFromBinaryFile(path, &back);
  EXPECT_EQ(back.name(), "second");
  EXPECT_TRUE(SameMessage(second, back));

  const std::string text_path = dir_ + "/net.prototxt";
  WriteProtoToTextFile(first, text_path);
  WriteProtoToTextFile(second, text_path);

  // Only the two final files remain: no temporary files are left behind.
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"model.caffemodel", "net.prototxt"}));
}

TEST_F(ProtoIO, WriteIntoMissingDirectoryIsAnError) {
  const std::string path = dir_ + "/no/such/dir/out.caffemodel";
  ExpectErrorContaining([&] { WriteProtoToBinaryFile(SampleNet(), path); }, {path});
  ExpectErrorContaining([&] { WriteProtoToTextFile(SampleNet(), path); }, {path});
  EXPECT_FALSE(FileExists(path));
}

TEST_F(ProtoIO, WritingIncompleteMessageIsAnError) {
  pb::LayerParameter layer;
  layer.mutable_clip_param()->set_min(0);  // max is required
  const std::string path = dir_ + "/clip.binaryproto";
  ExpectErrorContaining([&] { WriteProtoToBinaryFile(layer, path); }, {path, "max"});
  EXPECT_FALSE(FileExists(path));
}

TEST_F(ProtoIO, EmptyBinaryFileIsAnEmptyMessage) {
  // As with Caffe, zero bytes are a valid (empty) message.
  const std::string path = WriteRaw("empty.binaryproto", "");
  pb::BlobProto blob;
  blob.add_data(1);
  ReadProtoFromBinaryFile(path, &blob);
  EXPECT_EQ(blob.data_size(), 0);
}

}  // namespace
}  // namespace crema
