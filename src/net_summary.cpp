#include "crema/net_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "crema.pb.h"

namespace crema {

namespace {

// Whether `layer` learns its parameter blob `index`: it wants the gradient and its own
// ParamSpec (which layers such as BatchNorm pin to lr_mult 0) does not freeze it.
bool LayerLearns(const Layer& layer, int index) {
  if (!layer.param_propagate_down(index)) return false;
  const pb::LayerParameter& param = layer.layer_param();
  return index >= param.param_size() || param.param(index).lr_mult() != 0.f;
}

// Bytes of distinct storages: blobs sharing one SyncedMemory count once (the largest view).
class StorageCounter {
 public:
  void Add(const Blob& blob) {
    const void* key =
        blob.data() ? static_cast<const void*>(blob.data().get()) : static_cast<const void*>(&blob);
    int64_t& bytes = bytes_[key];
    bytes = std::max<int64_t>(bytes, static_cast<int64_t>(blob.count()) * sizeof(float));
  }
  int64_t total() const {
    int64_t sum = 0;
    for (const auto& entry : bytes_) sum += entry.second;
    return sum;
  }

 private:
  std::map<const void*, int64_t> bytes_;
};

std::string ShapeText(const std::vector<int>& shape) {
  if (shape.empty()) return "scalar";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += "x";
    text += std::to_string(shape[i]);
  }
  return text;
}

std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string Mebibytes(int64_t bytes) {
  return Fixed(bytes / (1024.0 * 1024.0), 1) + " MiB";
}

}  // namespace

std::string GroupThousands(int64_t value) {
  const bool negative = value < 0;
  std::string digits = std::to_string(negative ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

NetSummary Summarize(const Net& net) {
  NetSummary summary;
  const auto& layers = net.layers();
  summary.rows.resize(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    NetSummaryRow& row = summary.rows[l];
    row.name = net.layer_names()[l];
    row.type = layers[l]->type();
    for (const Blob* top : net.top_vecs()[l]) row.top_shapes.push_back(top->shape());
    row.flops = layers[l]->ForwardFlops(net.bottom_vecs()[l], net.top_vecs()[l]);
    summary.total_flops += row.flops;
  }

  // A stored parameter (an entry of learnable_params()) is learnable when any of the
  // layers using it learns it; it is counted once, in its owner's row.
  const auto& params = net.params();
  const auto& owners = net.param_owners();
  const auto& layer_of = net.param_layer_indices();
  const auto& storage_id = net.learnable_param_ids();
  std::vector<bool> learned(net.learnable_params().size(), false);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto [l, b] = layer_of[i];
    if (LayerLearns(*layers[l], b)) learned[storage_id[i]] = true;
  }
  StorageCounter param_storage;
  for (size_t i = 0; i < params.size(); ++i) {
    param_storage.Add(*params[i]);
    if (owners[i] != -1) continue;
    const int64_t count = params[i]->count();
    NetSummaryRow& row = summary.rows[layer_of[i].first];
    if (learned[storage_id[i]]) {
      row.params += count;
      summary.total_params += count;
    } else {
      row.frozen_params += count;
      summary.total_frozen_params += count;
    }
  }
  summary.param_bytes = param_storage.total();

  StorageCounter activations;
  for (const auto& tops : net.top_vecs())
    for (const Blob* top : tops) activations.Add(*top);
  summary.activation_bytes = activations.total();
  return summary;
}

std::string FormatNetSummary(const Net& net, const NetSummary& summary, bool show_splits) {
  struct Line {
    std::string name, type, shapes, params, mflops;
  };
  std::vector<Line> lines;
  lines.push_back({"layer", "type", "top shape(s)", "params", "MFLOPs"});
  for (const NetSummaryRow& row : summary.rows) {
    if (!show_splits && row.type == "Split") continue;
    Line line{row.name, row.type, "", "", ""};
    for (size_t t = 0; t < row.top_shapes.size(); ++t)
      line.shapes += (t ? ", " : "") + ShapeText(row.top_shapes[t]);
    if (row.params) line.params = GroupThousands(row.params);
    if (row.frozen_params)
      line.params += (row.params ? " + " : "") + GroupThousands(row.frozen_params) + " frozen";
    if (row.flops > 0) line.mflops = Fixed(row.flops / 1e6, row.flops >= 1e6 ? 1 : 3);
    lines.push_back(line);
  }
  size_t w_name = 0, w_type = 0, w_shapes = 0, w_params = 0, w_flops = 0;
  for (const Line& line : lines) {
    w_name = std::max(w_name, line.name.size());
    w_type = std::max(w_type, line.type.size());
    w_shapes = std::max(w_shapes, line.shapes.size());
    w_params = std::max(w_params, line.params.size());
    w_flops = std::max(w_flops, line.mflops.size());
  }
  auto pad_right = [](const std::string& s, size_t w) {
    return s + std::string(w - s.size(), ' ');
  };
  auto pad_left = [](const std::string& s, size_t w) { return std::string(w - s.size(), ' ') + s; };

  std::ostringstream out;
  out << "Net '" << net.name() << "' (" << (net.phase() == Phase::TRAIN ? "TRAIN" : "TEST")
      << " phase)";
  const auto& inputs = net.input_blobs();
  for (size_t i = 0; i < inputs.size(); ++i)
    out << (i ? ", " : ", inputs: ") << net.blob_names()[net.input_blob_indices()[i]] << " "
        << ShapeText(inputs[i]->shape());
  out << "\n\n";
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& line = lines[i];
    out << pad_right(line.name, w_name) << "  " << pad_right(line.type, w_type) << "  "
        << pad_right(line.shapes, w_shapes) << "  " << pad_left(line.params, w_params) << "  "
        << pad_left(line.mflops, w_flops) << "\n";
    if (i == 0)
      out << std::string(w_name + w_type + w_shapes + w_params + w_flops + 8, '-') << "\n";
  }
  out << "\n";
  out << "Learnable parameters: " << GroupThousands(summary.total_params) << "\n";
  if (summary.total_frozen_params)
    out << "Frozen parameter values (lr_mult 0, e.g. BatchNorm statistics): "
        << GroupThousands(summary.total_frozen_params) << "\n";
  out << "Forward FLOPs: " << GroupThousands(static_cast<int64_t>(summary.total_flops + 0.5))
      << " (" << Fixed(summary.total_flops / 1e9, 3) << " GFLOPs) per pass at the shapes above\n"
      << "  (FLOPs = 2 x multiply-adds, reported by Convolution, Deconvolution, InnerProduct,\n"
      << "   Embed, LSTM/RNN/GRU, Scale...; layers without a count, such as ReLU, Pooling,\n"
      << "   LRN, BatchNorm and Softmax, add 0)\n";
  out << "Activation memory: " << Mebibytes(summary.activation_bytes)
      << " (all top blobs, shared storage counted once; gradients need as much again)\n";
  out << "Parameter memory: " << Mebibytes(summary.param_bytes)
      << " (all parameter blobs; gradients and solver history need more)\n";
  return out.str();
}

}  // namespace crema
