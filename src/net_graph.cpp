// CUDA graphs for a net's passes: see net_graph.hpp for the rules.
#ifdef CREMA_WITH_CUDA
#include "src/net_graph.hpp"

#include <cuda_runtime.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <sstream>
#include <string>

#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/layer.hpp"
#include "crema/mixed_precision.hpp"
#include "crema/net.hpp"
#include "crema/syncedmem.hpp"
#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"

namespace crema {

bool CudaGraphsEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("CREMA_CUDA_GRAPHS");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled;
}

// Graphs (and eager signatures) kept per segment: enough for a data layer's ring of
// prefetch buffers (DataParameter.prefetch, 4 by default, plus the one being read).
constexpr size_t kGraphsPerSegment = 8;

struct NetGraphs::Segment {
  struct Graph {
    std::vector<uint64_t> signature;
    cudaGraphExec_t exec = nullptr;
  };
  int first = 0, last = 0;   // layer indices; backward segments have first >= last
  std::vector<Blob*> blobs;  // every bottom, top and parameter blob of its layers, once
  std::vector<Blob*> written_data, written_diff;  // what a launch leaves newer on the device
  std::vector<Graph> graphs;                      // captured, oldest first
  std::vector<std::vector<uint64_t>> eager;       // left by recent eager passes, oldest first
  bool disabled = false;                          // a capture failed: always eager
  size_t nodes = 0;                               // of the last capture

  ~Segment() {
    for (Graph& g : graphs) cudaGraphExecDestroy(g.exec);
  }
  cudaGraphExec_t Find(const std::vector<uint64_t>& signature) const {
    for (const Graph& g : graphs)
      if (g.signature == signature) return g.exec;
    return nullptr;
  }
  bool SeenEager(const std::vector<uint64_t>& signature) const {
    return std::find(eager.begin(), eager.end(), signature) != eager.end();
  }
  void Keep(const std::vector<uint64_t>& signature, cudaGraphExec_t exec) {
    if (graphs.size() == kGraphsPerSegment) {
      cudaGraphExecDestroy(graphs.front().exec);
      graphs.erase(graphs.begin());
    }
    graphs.push_back({signature, exec});
  }
  void RememberEager(const std::vector<uint64_t>& signature) {
    if (SeenEager(signature)) return;
    if (eager.size() == kGraphsPerSegment) eager.erase(eager.begin());
    eager.push_back(signature);
  }
};

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    CREMA_THROW("CUDA graph: " << what << ": " << cudaGetErrorString(status));
}

void add_unique(std::vector<Blob*>* list, std::set<Blob*>* seen, Blob* blob) {
  if (seen->insert(blob).second) list->push_back(blob);
}

void add_all(std::vector<Blob*>* list, const std::vector<Blob*>& blobs) {
  std::set<Blob*> seen(list->begin(), list->end());
  for (Blob* blob : blobs) add_unique(list, &seen, blob);
}

// The signature words of one buffer: which SyncedMemory, where on the device, how large.
void sign_memory(const std::shared_ptr<SyncedMemory>& memory, std::vector<uint64_t>* out) {
  out->push_back(reinterpret_cast<uintptr_t>(memory.get()));
  out->push_back(memory ? reinterpret_cast<uintptr_t>(memory->gpu_ptr()) : 0);
  out->push_back(memory ? memory->size() : 0);
}

}  // namespace

NetGraphs::NetGraphs(Net* net) : net_(net) {}
NetGraphs::~NetGraphs() = default;

// ---- plan ----------------------------------------------------------------------------

void NetGraphs::Plan() {
  planned_ = true;
  const auto& layers = net_->layers();
  const int n = net_->num_layers();
  auto gpu_code = [&](int i) { return !layers[i]->RunsOnCpu(); };
  auto forward_safe = [&](int i) {
    if (!gpu_code(i) || !layers[i]->GraphSafeForward()) return false;
    for (size_t t = 0; t < net_->top_vecs()[i].size(); ++t)
      if (layers[i]->loss(static_cast<int>(t)) != 0) return false;
    return true;
  };
  auto backward_safe = [&](int i) { return gpu_code(i) && layers[i]->GraphSafeBackward(); };

  // Forward units: a fused chain is one unit (Net::ForwardStep runs it whole).
  std::vector<int> unit_end(n);
  for (int i = 0; i < n; ++i) unit_end[i] = i;
  for (const auto& chain : net_->fused_chains()) unit_end[chain.first] = chain.second;

  auto make_segment = [&](int first, int last, bool forward) {
    auto segment = std::make_shared<Segment>();
    segment->first = first;
    segment->last = last;
    const int lo = std::min(first, last), hi = std::max(first, last);
    for (int i = lo; i <= hi; ++i) {
      if (!forward && !net_->layer_need_backward()[i]) continue;
      add_all(&segment->blobs, net_->bottom_vecs()[i]);
      add_all(&segment->blobs, net_->top_vecs()[i]);
      std::vector<Blob*> params;
      for (const auto& p : layers[i]->blobs()) params.push_back(p.get());
      add_all(&segment->blobs, params);
      const std::vector<Blob*> state = layers[i]->GraphStateBlobs();
      if (forward) add_all(&segment->blobs, state);
      if (forward) {
        add_all(&segment->written_data, net_->top_vecs()[i]);
        add_all(&segment->written_data, params);
        add_all(&segment->written_data, state);
      } else {
        add_all(&segment->written_diff, net_->bottom_vecs()[i]);
        add_all(&segment->written_diff, params);
      }
    }
    return segment;
  };

  // Forward: runs of capturable units; runs shorter than two units stay eager.
  std::vector<std::pair<int, int>> units;  // (first, last) layer of each unit
  std::vector<bool> unit_safe;
  for (int i = 0; i < n; i = unit_end[i] + 1) {
    bool safe = true;
    for (int k = i; k <= unit_end[i]; ++k) safe = safe && forward_safe(k);
    units.emplace_back(i, unit_end[i]);
    unit_safe.push_back(safe);
  }
  for (size_t u = 0; u < units.size();) {
    size_t v = u;
    while (v < units.size() && unit_safe[v] == unit_safe[u]) ++v;
    const int first = units[u].first, last = units[v - 1].second;
    Step step;
    step.first = first;
    step.last = last;
    if (unit_safe[u] && v - u >= 2) {
      step.segment = make_segment(first, last, true);
      ++counts_.forward_segments;
      counts_.forward_layers += last - first + 1;
    }
    forward_plan_.push_back(step);
    u = v;
  }

  // Backward: layers in reverse order; those without backward join either kind of run.
  int i = n - 1;
  while (i >= 0) {
    const int first = i;
    const bool safe = backward_safe(i);
    int runs = 0, last_run = i;  // layers with backward in this run, and the lowest of them
    while (i >= 0 && (!net_->layer_need_backward()[i] || backward_safe(i) == safe)) {
      if (net_->layer_need_backward()[i]) {
        ++runs;
        last_run = i;
      }
      --i;
    }
    Step step;
    step.first = first;
    step.last = i + 1;
    if (safe && runs >= 2) {
      step.segment = make_segment(first, last_run, false);
      ++counts_.backward_segments;
      counts_.backward_layers += runs;
    }
    backward_plan_.push_back(step);
  }
  LOG(INFO) << "Net " << net_->name() << ": " << Describe();
}

// ---- passes ----------------------------------------------------------------------------

float NetGraphs::RunForwardEager(int first, int last) {
  float loss = 0;
  for (int i = first; i <= last;) i = net_->ForwardStep(i, last, &loss);
  return loss;
}

void NetGraphs::RunBackwardEager(int first, int last) {
  for (int i = first; i >= last; --i) {
    if (!net_->layer_need_backward()[i]) continue;
    net_->layers()[i]->Backward(net_->top_vecs()[i], net_->bottom_need_backward()[i],
                                net_->bottom_vecs()[i]);
  }
}

float NetGraphs::Forward() {
  if (!planned_) Plan();
  float loss = 0;
  for (const Step& step : forward_plan_) {
    if (step.segment)
      RunSegment(step.segment.get(), true);
    else
      loss += RunForwardEager(step.first, step.last);
  }
  return loss;
}

void NetGraphs::Backward() {
  if (!planned_) Plan();
  for (const Step& step : backward_plan_) {
    if (step.segment)
      RunSegment(step.segment.get(), false);
    else
      RunBackwardEager(step.first, step.last);
  }
}

void NetGraphs::Signature(const Segment& segment, bool forward, std::vector<uint64_t>* out) const {
  std::vector<uint64_t>& words = *out;
  words.clear();
  for (const Blob* blob : segment.blobs) {
    words.push_back(blob->shape().size());
    for (int d : blob->shape()) words.push_back(static_cast<uint64_t>(d));
    sign_memory(blob->data(), &words);
    // A forward pass reads and writes data only; a blob's diff buffer is reallocated only
    // together with its data buffer.
    if (!forward) sign_memory(blob->diff(), &words);
  }
  words.push_back(CudaSharedScratchGeneration());
  words.push_back(static_cast<uint64_t>(CudaCurrentDevice()));
  const float scale = net_->mixed_precision() ? net_->mixed_precision()->gradient_scale() : 1.f;
  uint32_t scale_bits = 0;
  std::memcpy(&scale_bits, &scale, sizeof scale_bits);
  words.push_back(scale_bits);
  words.push_back(forward ? 1 : 0);
}

void NetGraphs::RunSegment(Segment* segment, bool forward) {
  auto eager = [&] {
    if (forward)
      RunForwardEager(segment->first, segment->last);
    else
      RunBackwardEager(segment->first, segment->last);
  };
  if (segment->disabled) {  // its capture failed once
    eager();
    return;
  }
  if (forward)  // shapes follow the bottoms, as in Layer::Forward (host work only)
    for (int i = segment->first; i <= segment->last; ++i)
      net_->layers()[i]->Reshape(net_->bottom_vecs()[i], net_->top_vecs()[i]);
  for (Blob* blob : segment->blobs) {  // what the segment reads (forward: data only)
    if (blob->data()) blob->data()->refresh_device();
    if (!forward && blob->diff()) blob->diff()->refresh_device();
  }
  Signature(*segment, forward, &signature_);
  cudaGraphExec_t exec = segment->Find(signature_);
  if (!exec && !segment->disabled && segment->SeenEager(signature_))
    exec = Capture(segment, forward);
  if (exec) {
    check(cudaGraphLaunch(exec, cuda_stream()), "cudaGraphLaunch");
    ++counts_.launches;
    for (Blob* blob : segment->written_data)
      if (blob->data()) blob->data()->mark_device_newer();
    for (Blob* blob : segment->written_diff)
      if (blob->diff()) blob->diff()->mark_device_newer();
    // Backward segments run from first down to last.
    const int lo = std::min(segment->first, segment->last);
    const int hi = std::max(segment->first, segment->last);
    for (int i = lo; i <= hi; ++i) net_->layers()[i]->GraphLaunched(forward);
    return;
  }
  eager();
  // What the next pass must find: after this pass's own set-up (first-use buffers, a grown
  // cuDNN workspace, the gradient buffers a first backward pass allocates).
  Signature(*segment, forward, &signature_);
  segment->RememberEager(signature_);
}

cudaGraphExec_t NetGraphs::Capture(Segment* segment, bool forward) {
  const std::string what = std::string(forward ? "forward" : "backward") + " of layers " +
                           net_->layer_names()[segment->first] + " .. " +
                           net_->layer_names()[segment->last];
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(cuda_stream(), &status), "cudaStreamIsCapturing");
  if (status != cudaStreamCaptureStatusNone) return nullptr;  // inside someone else's capture
  cudaGetLastError();  // a stale error would look like a failed capture
  check(cudaStreamBeginCapture(cuda_stream(), cudaStreamCaptureModeThreadLocal),
        "cudaStreamBeginCapture");
  const bool readback = Context::loss_readback();
  Context::set_loss_readback(false);  // no segment has a loss; nothing may wait in a capture
  std::string failure;
  try {
    if (forward)
      RunForwardEager(segment->first, segment->last);
    else
      RunBackwardEager(segment->first, segment->last);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  Context::set_loss_readback(readback);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(cuda_stream(), &graph);
  if (failure.empty() && ended != cudaSuccess) failure = cudaGetErrorString(ended);
  cudaGetLastError();  // capture errors are not sticky: clear them
  cudaGraphExec_t exec = nullptr;
  if (failure.empty()) {
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) {
      failure = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(made);
      exec = nullptr;
      cudaGetLastError();
    }
    size_t nodes = 0;
    if (cudaGraphGetNodes(graph, nullptr, &nodes) == cudaSuccess) segment->nodes = nodes;
  }
  if (graph) cudaGraphDestroy(graph);
  if (!failure.empty()) {
    segment->disabled = true;
    ++counts_.failures;
    LOG(WARNING) << "CUDA graph: could not capture the " << what << " (" << failure
                 << "); they run without a graph from now on";
    return nullptr;
  }
  ++counts_.captures;
  segment->Keep(signature_, exec);
  LOG(INFO) << "CUDA graph: captured the " << what << " (" << segment->nodes << " nodes, graph "
            << segment->graphs.size() << " of this segment); replayed while its shapes and "
            << "buffers come back";
  return exec;
}

NetGraphs::Counts NetGraphs::counts() const {
  return counts_;
}

std::string NetGraphs::Describe() const {
  std::ostringstream out;
  out << "CUDA graphs: forward " << counts_.forward_layers << " of " << net_->num_layers()
      << " layers in " << counts_.forward_segments << " segment(s), backward "
      << counts_.backward_layers << " layers in " << counts_.backward_segments << " segment(s); "
      << counts_.captures << " captured, " << counts_.launches << " launches, " << counts_.failures
      << " failed captures (CREMA_CUDA_GRAPHS=0: off)";
  return out.str();
}

}  // namespace crema

#endif  // CREMA_WITH_CUDA
