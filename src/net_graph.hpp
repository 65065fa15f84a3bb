// CUDA graphs for a net's passes on the GPU (CUDA builds only).
//
// A small net spends much of a pass launching work: every layer queues a few kernels or
// library calls, each costing microseconds of host time, and the GPU idles between them
// when the kernels are short. NetGraphs records runs of layers once into a CUDA graph
// (stream capture on crema's stream, src/cuda_stream.hpp) and from then on launches the
// whole run with one call.
//
// Plan (built on first use, from the layer order and the test-time fused chains):
//  - forward: the layers, in order, in units (one layer, or one fused chain as
//    Net::ForwardStep runs it). A unit is capturable when each of its layers runs its GPU code
//    (no CPU fallback), says Layer::GraphSafeForward() and has no loss weight (a loss is
//    read back to the host). Two or more consecutive capturable units form a segment;
//  - backward: the layers that need backward, in reverse order, with
//    Layer::GraphSafeBackward(); again segments of two or more.
// Everything else (data layers, losses, Dropout in training, ...) runs as usual between
// the segments.
//
// A segment, each pass: its layers' Reshape runs on the host (forward), the host's newer
// contents of its blobs are copied to their device buffers, then its signature is taken:
// the shapes and the device buffers (data; backward: also diff) of every bottom, top and
// parameter blob (forward: also Layer::GraphStateBlobs, a recurrent layer's carried state),
// the generation of the shared cuDNN workspace and the net's gradient
// scale. Then:
//  - a graph captured under the same signature: launch it;
//  - a signature that an earlier eager pass left behind: capture the layers' work into a
//    graph (nothing runs while capturing), keep it, then launch it;
//  - otherwise (first pass, new shapes or new memory): run eagerly and remember the
//    signature taken afterwards.
// So a graph is captured on the second pass with given shapes (the first pass sets up
// buffers, cuDNN algorithms and convolution routes, none of which may happen in a capture).
// A segment keeps up to 8 graphs (and 8 eager signatures), oldest dropped first: a data
// layer hands each batch over in one of a ring of prefetch buffers, so the segments that
// read its tops (the first layers forward, the loss backward) see a few addresses in turn,
// and get a graph for each from the second round on.
// After a launch the blobs the segment writes (forward: tops, parameters, whose running
// statistics a BatchNorm updates, and state blobs; backward: bottom and parameter gradients)
// are marked newer on the device, as the layers' own accessors would have marked them, and
// each layer of the segment gets Layer::GraphLaunched (its host-side follow-up).
//
// A capture that fails (a layer waited for the device or allocated memory after all) is
// logged once with the CUDA error, and that segment runs eagerly from then on. Graphs are
// not used with debug_info, with per-layer backward hooks (data-parallel gradient
// exchange: backward only), or when CREMA_CUDA_GRAPHS=0.
#pragma once
#ifdef CREMA_WITH_CUDA

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct CUgraphExec_st;  // cudaGraphExec_t, from <cuda_runtime.h>

namespace crema {

class Net;

// False when the environment sets CREMA_CUDA_GRAPHS=0 (read once).
bool CudaGraphsEnabled();

class NetGraphs {
 public:
  explicit NetGraphs(Net* net);
  ~NetGraphs();
  NetGraphs(const NetGraphs&) = delete;
  NetGraphs& operator=(const NetGraphs&) = delete;

  // The whole forward pass (as Net::ForwardFromTo(0, last)); returns the loss.
  float Forward();
  // The whole backward pass (as Net::BackwardFromTo(last, 0) without hooks).
  void Backward();

  struct Counts {
    int forward_segments = 0, forward_layers = 0;  // planned: segments, layers in them
    int backward_segments = 0, backward_layers = 0;
    int64_t captures = 0, launches = 0, failures = 0;  // so far
  };
  Counts counts() const;
  // One line for logs: the plan and the counts.
  std::string Describe() const;

 private:
  struct Segment;
  struct Step {  // a segment, or the eager layers [first, last]
    std::shared_ptr<Segment> segment;
    int first = 0, last = 0;
  };
  void Plan();
  float RunForwardEager(int first, int last);
  void RunBackwardEager(int first, int last);  // first >= last: layers first down to last
  // Runs a segment by the rules above; `eager` runs its layers without a graph.
  void RunSegment(Segment* segment, bool forward);
  // Captures the segment's layers under signature_ and keeps the graph; null on failure.
  CUgraphExec_st* Capture(Segment* segment, bool forward);
  // Writes the segment's signature to *words (cleared first; its capacity is reused).
  void Signature(const Segment& segment, bool forward, std::vector<uint64_t>* words) const;

  Net* net_;
  bool planned_ = false;
  std::vector<Step> forward_plan_, backward_plan_;
  Counts counts_;
  std::vector<uint64_t> signature_;  // this pass's, before the segment runs
};

}  // namespace crema

#endif  // CREMA_WITH_CUDA
