// Layer: the unit of computation. A layer reads its bottom blobs and writes its top blobs
// (Forward), and maps top gradients to bottom and parameter gradients (Backward). Its
// learnable parameters live in blobs(). Concrete layers live in layers/, one per file, and
// register themselves by type string (see layer_registry.hpp).
//
// Life cycle, driven by Net:
//   SetUp(bottom, top)   once: checks blob counts, LayerSetUp, Reshape, loss weights
//   Forward(bottom, top) every iteration: Reshape, then Forward_cpu/gpu; returns the loss
//   Backward(top, propagate_down, bottom)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crema/blob.hpp"
#include "crema/common.hpp"
#include "crema/mixed_precision.hpp"

namespace crema {

class Layer {
 public:
  // Copies `param` (parameter blobs in it are loaded by the layer when it sets up, or by
  // Net when weights are copied later).
  explicit Layer(const pb::LayerParameter& param);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  void SetUp(const BlobVec& bottom, const BlobVec& top);
  // One-time setup that depends on the layer parameters and the bottom shapes: create and
  // fill parameter blobs here (only when blobs() is still empty).
  virtual void LayerSetUp(const BlobVec& bottom, const BlobVec& top) {}
  // Shapes the tops (and internal buffers) from the bottoms; called before every forward.
  // Must not allocate when the shapes did not change (Blob::Reshape guarantees that).
  virtual void Reshape(const BlobVec& bottom, const BlobVec& top) = 0;

  float Forward(const BlobVec& bottom, const BlobVec& top);
  void Backward(const BlobVec& top, const std::vector<bool>& propagate_down, const BlobVec& bottom);

  std::vector<std::shared_ptr<Blob>>& blobs() { return blobs_; }
  const std::vector<std::shared_ptr<Blob>>& blobs() const { return blobs_; }
  const pb::LayerParameter& layer_param() const { return *layer_param_; }
  const std::string& name() const;
  virtual const char* type() const = 0;
  Phase phase() const { return phase_; }

  // Writes the layer's parameter and its blobs (data, and diff if asked) to `param`.
  virtual void ToProto(pb::LayerParameter* param, bool write_diff = false) const;

  float loss(int top_index) const {
    return top_index < static_cast<int>(loss_.size()) ? loss_[top_index] : 0.f;
  }
  void set_loss(int top_index, float value);

  // Blob-count contracts; -1 means "no constraint".
  virtual int ExactNumBottomBlobs() const { return -1; }
  virtual int MinBottomBlobs() const { return -1; }
  virtual int MaxBottomBlobs() const { return -1; }
  virtual int ExactNumTopBlobs() const { return -1; }
  virtual int MinTopBlobs() const { return -1; }
  virtual int MaxTopBlobs() const { return -1; }
  virtual bool EqualNumBottomTopBlobs() const { return false; }
  // Net creates anonymous tops up to this count when the prototxt names fewer (losses).
  virtual bool AutoTopBlobs() const { return false; }
  // Whether force_backward may make this bottom receive a gradient (false for labels).
  virtual bool AllowForceBackward(int bottom_index) const { return true; }

  bool param_propagate_down(int param_id) const {
    return param_id < static_cast<int>(param_propagate_down_.size()) &&
           param_propagate_down_[param_id];
  }
  void set_param_propagate_down(int param_id, bool value);

  // Multiply-adds x2 of one forward pass at the current shapes (0 where not meaningful).
  // Used by `crema time` and `crema summarize` to report GFLOP/s.
  virtual double ForwardFlops(const BlobVec& bottom, const BlobVec& top) const { return 0.0; }
  // Data layers: position the source so that the next Forward delivers batch number
  // `index` (counting from 0), exactly as if `index` batches had been read. Solver::Restore
  // uses it so a resumed run sees the same data as an uninterrupted one.
  virtual void SeekBatch(int64_t index) {}
  // Whether Forward_gpu/Backward_gpu are real implementations.
  virtual bool HasGpuImplementation() const { return false; }
  // Whether Forward_gpu (Backward_gpu) may be captured once into a CUDA graph and replayed
  // (src/net_graph.hpp): as long as the shapes and the blobs' memory stay the same, it queues
  // the same device work every time on crema's stream, waits for nothing, reads nothing back
  // to the host and takes no host value that changes from pass to pass (a random seed, a
  // counter). Layer types opt in after that audit; the default is false.
  virtual bool GraphSafeForward() const { return false; }
  virtual bool GraphSafeBackward() const { return GraphSafeForward(); }
  // Blobs of the layer's own that its Forward_gpu reads and writes from one pass to the next
  // (a recurrent layer's carried state). A graph segment treats them as it treats tops: it
  // copies a newer host copy to the device before it runs, signs their device buffers, and
  // marks them newer on the device after a launch.
  virtual std::vector<Blob*> GraphStateBlobs() { return {}; }
  // Called right after a graph segment launched a graph that holds this layer's forward
  // (backward) work: the host-side follow-up that Forward_gpu (Backward_gpu) does after
  // queueing its work when run eagerly, and that a replay skips (Embed examines the ids its
  // kernel checked on the device). Forward_gpu leaves it out while the stream is capturing.
  virtual void GraphLaunched(bool forward) {}
  // The net's mixed-precision state (set by Net before SetUp; FP32 when never set). Only
  // Convolution and InnerProduct (TF32, FP16, BF16) and Deconvolution (TF32) act on it.
  void set_mixed_precision(std::shared_ptr<MixedPrecision> mixed) { mixed_ = std::move(mixed); }
  Precision precision() const { return mixed_ ? mixed_->precision : Precision::FP32; }
  MixedPrecision* mixed_precision() const { return mixed_.get(); }

  // True when Forward/Backward run the CPU code: CPU mode, or a layer without GPU code
  // when CPU fallback is allowed.
  bool RunsOnCpu() const;

  // "Layer 'conv1' (Convolution): " — the prefix of every error this layer reports.
  std::string error_prefix() const;

 protected:
  virtual void Forward_cpu(const BlobVec& bottom, const BlobVec& top) = 0;
  virtual void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) = 0;
  // GPU versions: layers with CUDA code override both. The defaults refuse to run: a
  // layer without GPU code is never silently executed through a CPU round trip.
  virtual void Forward_gpu(const BlobVec& bottom, const BlobVec& top);
  virtual void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom);

  void CheckBlobCounts(const BlobVec& bottom, const BlobVec& top) const;
  // The weight [+ bias] parameters of GEMM-shaped layers (Convolution, InnerProduct, Embed):
  // created and filled by their fillers, or, when they came with the LayerParameter (weights
  // read from a .caffemodel), checked for count and shapes (crema::Error naming both shapes;
  // `weight_hint` is appended to the expected weight shape to say where it comes from).
  void SetUpWeightAndBias(const std::vector<int>& weight_shape,
                          const pb::FillerParameter& weight_filler, bool bias_term,
                          const std::vector<int>& bias_shape,
                          const pb::FillerParameter& bias_filler,
                          const std::string& weight_hint = "");
  // Loss tops carry their loss weight in diff (set once here), so Forward can return
  // sum(loss_weight * top) and loss layers read their weight back in Backward.
  void SetLossWeights(const BlobVec& top);

  std::unique_ptr<pb::LayerParameter> layer_param_;
  Phase phase_;
  std::vector<std::shared_ptr<Blob>> blobs_;
  std::vector<bool> param_propagate_down_;
  std::vector<float> loss_;
  std::shared_ptr<MixedPrecision> mixed_;
};

// Throws crema::Error prefixed with the layer's name and type when `condition` fails:
//   LAYER_REQUIRE(stride > 0, "stride must be positive, got " << stride);
#define LAYER_REQUIRE(condition, message) CREMA_REQUIRE(condition, this->error_prefix() << message)
#define LAYER_THROW(message) CREMA_THROW(this->error_prefix() << message)

}  // namespace crema
