// NetToDot and DrawNet: see include/crema/image_tools.hpp.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "crema.pb.h"
#include "crema/blob.hpp"
#include "crema/image_tools.hpp"
#include "crema/io.hpp"
#include "crema/net.hpp"

namespace crema {

namespace {

// Text for use inside a double-quoted dot string.
std::string DotEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Quote(const std::string& text) {
  return "\"" + DotEscape(text) + "\"";
}

// Dims as "64x1x28x28"; a 0-axis blob (a scalar loss) is "scalar".
std::string DimsText(const std::vector<int>& shape) {
  if (shape.empty()) return "scalar";
  std::ostringstream text;
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? "x" : "") << shape[i];
  return text.str();
}

// "kernel size: 5", or "kernel size: 3x5" for rectangular kernels.
std::string PairText(unsigned h, unsigned w) {
  std::ostringstream text;
  if (h == w)
    text << h;
  else
    text << h << "x" << w;
  return text.str();
}

// The layer's box: name, (type), then the parameters that describe its shape effect.
std::vector<std::string> LayerDescriptors(const pb::LayerParameter& layer) {
  std::vector<std::string> parts;
  parts.push_back(layer.name());
  if (layer.type() == "Pooling") {
    parts.push_back("(Pooling " +
                    pb::PoolingParameter_PoolMethod_Name(layer.pooling_param().pool()) + ")");
  } else {
    parts.push_back("(" + layer.type() + ")");
  }
  if (layer.type() == "Convolution" || layer.type() == "Deconvolution" ||
      layer.type() == "DepthwiseConvolution") {
    const auto& p = layer.convolution_param();
    const unsigned kh =
        p.has_kernel_h() ? p.kernel_h() : (p.kernel_size_size() ? p.kernel_size(0) : 1);
    const unsigned kw =
        p.has_kernel_w()
            ? p.kernel_w()
            : (p.kernel_size_size() ? p.kernel_size(p.kernel_size_size() > 1 ? 1 : 0) : 1);
    const unsigned sh = p.has_stride_h() ? p.stride_h() : (p.stride_size() ? p.stride(0) : 1);
    const unsigned sw = p.has_stride_w()
                            ? p.stride_w()
                            : (p.stride_size() ? p.stride(p.stride_size() > 1 ? 1 : 0) : 1);
    const unsigned ph = p.has_pad_h() ? p.pad_h() : (p.pad_size() ? p.pad(0) : 0);
    const unsigned pw =
        p.has_pad_w() ? p.pad_w() : (p.pad_size() ? p.pad(p.pad_size() > 1 ? 1 : 0) : 0);
    parts.push_back("kernel size: " + PairText(kh, kw));
    parts.push_back("stride: " + PairText(sh, sw));
    parts.push_back("pad: " + PairText(ph, pw));
    if (p.dilation_size() && p.dilation(0) > 1)
      parts.push_back("dilation: " + std::to_string(p.dilation(0)));
    if (p.group() > 1) parts.push_back("group: " + std::to_string(p.group()));
    parts.push_back("num_output: " + std::to_string(p.num_output()));
  } else if (layer.type() == "Pooling") {
    const auto& p = layer.pooling_param();
    if (p.global_pooling()) {
      parts.push_back("global");
    } else {
      const unsigned kh = p.has_kernel_h() ? p.kernel_h() : p.kernel_size();
      const unsigned kw = p.has_kernel_w() ? p.kernel_w() : p.kernel_size();
      const unsigned sh = p.has_stride_h() ? p.stride_h() : p.stride();
      const unsigned sw = p.has_stride_w() ? p.stride_w() : p.stride();
      const unsigned ph = p.has_pad_h() ? p.pad_h() : p.pad();
      const unsigned pw = p.has_pad_w() ? p.pad_w() : p.pad();
      parts.push_back("kernel size: " + PairText(kh, kw));
      parts.push_back("stride: " + PairText(sh, sw));
      parts.push_back("pad: " + PairText(ph, pw));
    }
  } else if (layer.type() == "InnerProduct") {
    parts.push_back("num_output: " + std::to_string(layer.inner_product_param().num_output()));
  }
  return parts;
}

// Caffe's draw_net palette.
const char* LayerColor(const std::string& type) {
  if (type == "Convolution" || type == "Deconvolution" || type == "DepthwiseConvolution")
    return "#FF5050";
  if (type == "Pooling") return "#FF9900";
  if (type == "InnerProduct") return "#CC33FF";
  return "#6495ED";
}

// The label of the edges out of a layer (Caffe's: batch size for Data, num_output for
// learned layers).
std::string EdgeLabel(const pb::LayerParameter& layer) {
  if (layer.type() == "Data") return "Batch " + std::to_string(layer.data_param().batch_size());
  if (layer.type() == "Convolution" || layer.type() == "Deconvolution" ||
      layer.type() == "DepthwiseConvolution")
    return std::to_string(layer.convolution_param().num_output());
  if (layer.type() == "InnerProduct")
    return std::to_string(layer.inner_product_param().num_output());
  return "";
}

// Builds the net for one phase and records each blob's shape. Returns "" on success, the
// reason on failure. Logging below WARNING is muted while the net is built.
std::string CollectShapes(const pb::NetParameter& param, Phase phase,
                          std::map<std::string, std::vector<int>>* shapes) {
  pb::NetParameter phased = param;
  phased.mutable_state()->set_phase(phase == Phase::TRAIN ? pb::TRAIN : pb::TEST);
  const int saved_level = FLAGS_minloglevel;
  FLAGS_minloglevel = std::max(saved_level, 1);
  std::string failure;
  try {
    Net net(phased);
    for (size_t i = 0; i < net.blob_names().size(); ++i)
      (*shapes)[net.blob_names()[i]] = net.blobs()[i]->shape();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  FLAGS_minloglevel = saved_level;
  return failure;
}

std::string LowerExtension(const std::string& path) {
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The full path of `program` on $PATH, or "".
std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string NetToDot(const pb::NetParameter& param, const DrawNetOptions& options,
                     std::string* warning) {
  const std::string& rankdir = options.rankdir;
  CREMA_REQUIRE(rankdir == "LR" || rankdir == "TB" || rankdir == "BT" || rankdir == "RL",
                "rankdir must be LR, TB, BT or RL, got '" << rankdir << "'");
  CREMA_REQUIRE(options.phase == "TRAIN" || options.phase == "TEST" || options.phase == "ALL",
                "phase must be TRAIN, TEST or ALL, got '" << options.phase << "'");
  if (warning) warning->clear();

  // The layers to draw: those of the phase (Caffe's state rules), or all of them.
  pb::NetParameter drawn;
  std::vector<Phase> phases;
  if (options.phase == "ALL") {
    drawn = param;
    // Both phases only when some layer depends on the phase (each build fills every
    // weight, which takes seconds for big nets).
    bool phase_rules = false;
    for (const auto& layer : param.layer())
      phase_rules = phase_rules || layer.include_size() > 0 || layer.exclude_size() > 0;
    phases = phase_rules ? std::vector<Phase>{Phase::TRAIN, Phase::TEST}
                         : std::vector<Phase>{Phase::TEST};
  } else {
    const Phase phase = options.phase == "TRAIN" ? Phase::TRAIN : Phase::TEST;
    pb::NetParameter phased = param;
    phased.mutable_state()->set_phase(phase == Phase::TRAIN ? pb::TRAIN : pb::TEST);
    Net::FilterNet(phased, &drawn);
    phases = {phase};
  }

  // Blob shapes per phase.
  std::vector<std::map<std::string, std::vector<int>>> shapes(phases.size());
  if (options.shapes) {
    std::string failures;
    size_t failed = 0;
    for (size_t p = 0; p < phases.size(); ++p) {
      const std::string why = CollectShapes(param, phases[p], &shapes[p]);
      if (!why.empty()) {
        ++failed;
        failures += std::string(failures.empty() ? "" : "; ") +
                    (phases[p] == Phase::TRAIN ? "TRAIN: " : "TEST: ") + why;
      }
    }
    if (failed && warning) {
      *warning =
          (failed == phases.size()
               ? "drawing without blob shapes: the net could not be built ("
               : "some blob shapes are missing: the net could not be built for one phase (") +
          failures + ")";
    }
  }
  auto blob_label = [&](const std::string& name) {
    std::string label = name;
    std::vector<std::pair<Phase, std::string>> found;
    for (size_t p = 0; p < phases.size(); ++p) {
      auto it = shapes[p].find(name);
      if (it != shapes[p].end()) found.emplace_back(phases[p], DimsText(it->second));
    }
    if (found.size() == 2 && found[0].second != found[1].second) {
      for (const auto& [phase, dims] : found)
        label += std::string("\n") + (phase == Phase::TRAIN ? "TRAIN: " : "TEST: ") + dims;
    } else if (!found.empty()) {
      label += "\n" + found[0].second;
    }
    return label;
  };

  const std::string separator = (rankdir == "TB" || rankdir == "BT") ? " " : "\n";
  std::ostringstream dot;
  dot << "digraph " << Quote(param.name().empty() ? "Net" : param.name()) << " {\n";
  dot << "  rankdir=" << rankdir << ";\n";
  dot << "  node [fontname=\"Helvetica\", fontsize=10];\n";
  dot << "  edge [fontname=\"Helvetica\", fontsize=9];\n";

  std::map<std::string, bool> blob_declared;
  std::ostringstream edges;
  auto declare_blob = [&](const std::string& name) {
    if (blob_declared[name]) return;
    blob_declared[name] = true;
    dot << "  " << Quote("blob_" + name) << " [label=" << Quote(blob_label(name))
        << ", shape=octagon, style=filled, fillcolor=\"#E0E0E0\"];\n";
  };
  for (int i = 0; i < drawn.layer_size(); ++i) {
    const pb::LayerParameter& layer = drawn.layer(i);
    const std::string node = "layer_" + std::to_string(i) + "_" + layer.name();
    const bool in_place =
        layer.bottom_size() == 1 && layer.top_size() == 1 && layer.bottom(0) == layer.top(0);
    std::string label;
    for (const auto& part : LayerDescriptors(layer))
      label += (label.empty() ? "" : separator) + part;
    dot << "  " << Quote(node) << " [label=" << Quote(label)
        << ", shape=record, style=filled, fillcolor=\""
        << (in_place ? "#90EE90" : LayerColor(layer.type())) << "\"];\n";
    for (const auto& bottom : layer.bottom()) {
      declare_blob(bottom);
      edges << "  " << Quote("blob_" + bottom) << " -> " << Quote(node) << ";\n";
    }
    const std::string edge_label = EdgeLabel(layer);
    for (const auto& top : layer.top()) {
      declare_blob(top);
      edges << "  " << Quote(node) << " -> " << Quote("blob_" + top);
      if (!edge_label.empty()) edges << " [label=" << Quote(edge_label) << "]";
      edges << ";\n";
    }
  }
  dot << edges.str() << "}\n";
  return dot.str();
}

std::string DrawNet(const std::string& prototxt, const std::string& output,
                    const DrawNetOptions& options) {
  const std::string ext = LowerExtension(output);
  CREMA_REQUIRE(ext == "dot" || ext == "gv" || ext == "png" || ext == "svg" || ext == "pdf",
                "cannot tell the format of '"
                    << output << "': the output must end in .dot, .png, .svg or .pdf");
  std::string dot_program;
  if (ext != "dot" && ext != "gv") {
    dot_program = FindOnPath("dot");
    CREMA_REQUIRE(!dot_program.empty(),
                  "writing ." << ext << " needs Graphviz's `dot` program, which is not on PATH: "
                              << "install it (apt-get install graphviz) or write a .dot file "
                                 "instead");
  }
  pb::NetParameter param;
  ReadNetParamsFromTextFile(prototxt, &param);
  std::string warning;
  const std::string text = NetToDot(param, options, &warning);
  if (dot_program.empty()) {
    std::ofstream out(output);
    CREMA_REQUIRE(out, "cannot create '" << output << "': " << std::strerror(errno));
    out << text;
    out.close();
    CREMA_REQUIRE(out, "cannot write '" << output << "'");
    return warning;
  }

  char temp[] = "/tmp/crema_draw_net_XXXXXX";
  const int fd = ::mkstemp(temp);
  CREMA_REQUIRE(fd >= 0, "cannot create a temporary file for dot: " << std::strerror(errno));
  const std::string temp_path = temp;
  const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    ::unlink(temp_path.c_str());
    CREMA_THROW("cannot write the temporary file " << temp_path);
  }
  const std::string command = ShellQuote(dot_program) + " -T" + ext + " -o " + ShellQuote(output) +
                              " " + ShellQuote(temp_path) + " 2>&1";
  std::string messages;
  int status = -1;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) messages.append(buffer, n);
    status = ::pclose(pipe);
  }
  ::unlink(temp_path.c_str());
  CREMA_REQUIRE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "`dot -T" << ext << "` failed writing '" << output << "'"
                          << (messages.empty() ? std::string() : ": " + messages));
  return warning;
}

}  // namespace crema
