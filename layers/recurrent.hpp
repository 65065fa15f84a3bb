// RecurrentLayer: the shared base of LSTM, RNN and GRU (Caffe's recurrent layer contract).
// Not registered itself; the subclasses define the cell.
//
//   bottoms: x        [T, N, ...]   T time steps of N independent streams; every step has
//                                   D = count(2) features (D is fixed at setup)
//            cont     [T, N]        sequence continuation indicators: the state carried
//                                   into step t is multiplied by cont[t, n], so 0 starts a
//                                   new sequence (state reset to 0), 1 continues
//            x_static [N, ...]      optional (present when there is one bottom more than
//                                   the required ones): a per-stream input of
//                                   D_static = count(1) features, added to every step
//            h_0 (, c_0) [1, N, H]  only with recurrent_param.expose_hidden: the initial
//                                   states (LSTM: h_0 then c_0; RNN and GRU: h_0)
//   tops:    the per-step output   [T, N, H]   (H = recurrent_param.num_output)
//            h_T (, c_T) [1, N, H]  only with expose_hidden: the final states
//
// Without expose_hidden the final states of one Forward are kept and become the initial
// states of the next one (as Caffe does); they start at zero, and ResetState() zeroes
// them. With cont[0, n] == 0 the carried state has no influence at all.
//
// Backward is backpropagation through time inside the batch; nothing flows back into
// earlier batches. As in Caffe, with expose_hidden the diffs of the h_T/c_T tops are
// ignored and the h_0/c_0 bottoms get no gradient (their diffs are left as they are);
// with recurrent_param.backprop_exposed_hidden (crema-only) the h_T/c_T diffs are
// propagated and h_0/c_0 receive their true gradients.
// There is no gradient w.r.t. cont (asking for one is an error, as in Caffe).
//
// Implementation: the input projections of all T steps are one GEMM up front
// ([T*N, D] x [D, G]); each step then does one [N, H] x [H, G] GEMM for the recurrent part
// and elementwise gate math. Parameter gradients are one GEMM each over all steps after
// the backward sweep. Every buffer is a member Blob shaped in Reshape, so Forward and
// Backward never allocate.
#pragma once

#include <vector>

#include "crema/blob.hpp"
#include "crema/layer.hpp"

namespace crema {

class RecurrentLayer : public Layer {
 public:
  // num_states: recurrent state blobs per stream (LSTM 2, RNN and GRU 1).
  RecurrentLayer(const pb::LayerParameter& param, int num_states);

  int MinBottomBlobs() const override { return 2 + (expose_hidden_ ? num_states_ : 0); }
  int MaxBottomBlobs() const override { return MinBottomBlobs() + 1; }
  int ExactNumTopBlobs() const override { return 1 + (expose_hidden_ ? num_states_ : 0); }
  bool AllowForceBackward(int bottom_index) const override { return bottom_index != 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

  // Zeroes the state carried from one Forward to the next (no effect with expose_hidden).
  void ResetState();

  int num_output() const { return H_; }
  // Every internal buffer (for tests: their storage must stay put between iterations).
  std::vector<const Blob*> buffers() const;
  // Capturable into a CUDA graph (audited: see Layer::GraphSafeForward): every step is
  // cuBLAS products and kernels on crema's stream, the buffers are shaped in Reshape, and
  // nothing is read back. The state carried between Forwards is declared to the graph.
  bool GraphSafeForward() const override { return true; }
  std::vector<Blob*> GraphStateBlobs() override;

 protected:
  // Width of the gate pre-activations: 4H (LSTM), H (RNN), 3H (GRU).
  virtual int GateWidth() const = 0;
  // Creates and fills the parameter blobs (blobs_ empty), or checks loaded ones.
  virtual void SetUpParams() = 0;
  // Shapes the subclass' own buffers (T_, N_ are current).
  virtual void ReshapeBuffers() = 0;
  // Appends the subclass' own buffers.
  virtual void AppendBuffers(std::vector<const Blob*>* list) const = 0;

  // Checks that the loaded blobs_ have exactly `shapes` (names used in the message).
  void CheckParamShapes(const std::vector<std::vector<int>>& shapes,
                        const std::vector<const char*>& names) const;
  // Appends a blob of `shape` filled by the recurrent_param weight or bias filler.
  void AddParam(const std::vector<int>& shape, bool is_bias);
  // Caffe unrolls LSTM and RNN into a net with a layer per time step for the step weights
  // (LSTM: W_hc; RNN: W_hh, W_ho, b_o), the T layers sharing one blob per weight: each layer
  // runs its filler when set up and the first one's numbers are kept. With a random_seed
  // set, this draws the other T - 1 fills of blobs_[first_step_param ..] (added last, in
  // Caffe's order) and drops them, so that the layers after this one draw Caffe's numbers.
  void DrawDroppedStepFills(size_t first_step_param, int steps);

  // out[T*N, G] = x W^T (+ 1 b^T) (+ x_static W_s^T added to every step).
  // b and w_static may be null.
  void ProjectInputs(const BlobVec& bottom, const Blob& w, const Blob* b, const Blob* w_static,
                     float* out);
  // From the gate-input gradients dg [T*N, G]: dW += dg^T x, db += colsum(dg), dx = dg W,
  // and for the static input dW_s += (sum_t dg_t)^T x_s, dx_s = (sum_t dg_t) W_s. Each part
  // only when its propagate flag is set. Params are given as indices into blobs_ (-1: none).
  void BackpropInputs(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                      const float* dg, int w_id, int b_id, int w_static_id);
  // Adds the bias row b [width] to each of `rows` rows of y.
  static void AddBiasRows(int rows, int width, const float* b, float* y);
  // dst[n, :] = cont[n] * src[n, :] for the rows n in [begin, end) of H floats each (dst
  // may alias src).
  void ScaleRowsByCont(const float* cont, const float* src, float* dst, int64_t begin,
                       int64_t end) const;

  // Where the initial state k comes from: the exposed bottom or the carried state.
  const float* InitialState(const BlobVec& bottom, int k) const;
  // Stores the final state k: into the exposed top, or into the carried state.
  void StoreFinalState(const BlobVec& top, int k, const float* final_state);
  // The diff of the exposed final-state top k (nullptr unless backprop_exposed_).
  const float* FinalStateDiff(const BlobVec& top, int k) const;
  // The exposed initial-state bottom k when it wants a gradient and backprop_exposed_,
  // else nullptr.
  float* InitialStateDiff(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                          int k) const;
  // Throws when Backward is asked for a gradient w.r.t. cont.
  void CheckNoContGradient(const std::vector<bool>& propagate_down) const;
  // Whether Backward has anything to compute at all.
  bool NeedsBackward(const std::vector<bool>& propagate_down) const;
  // The per-step work (recurrent GEMM + gate math) is split over the N streams: this many
  // rows at least per thread, so that small batches stay on one thread. Inside the split
  // each thread's GEMM runs single-threaded, which avoids OpenBLAS's own fork/join on
  // every one of the T small per-step products.
  int64_t StepGrain() const;

#ifdef CREMA_WITH_CUDA
  // The GPU counterparts of the helpers above (recurrent.cu): the same arguments and the
  // same arithmetic, with device pointers; every step is queued on the default stream and
  // nothing is read back to the host. The carried state lives in carried_'s synced memory,
  // so it stays right when the mode changes between Forwards.
  void ProjectInputs_gpu(const BlobVec& bottom, const Blob& w, const Blob* b, const Blob* w_static,
                         float* out);
  void BackpropInputs_gpu(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                          const float* dg, int w_id, int b_id, int w_static_id);
  // Adds the bias row b [width] to each of `rows` rows of y (rows <= T * N: ones_ is used).
  void AddBiasRows_gpu(int rows, int width, const float* b, float* y) const;
  // dst[n, :] = cont[n] * src[n, :] for all N rows of H floats (dst may alias src).
  void ScaleRowsByCont_gpu(const float* cont, const float* src, float* dst) const;
  const float* InitialState_gpu(const BlobVec& bottom, int k) const;
  void StoreFinalState_gpu(const BlobVec& top, int k, const float* final_state);
  const float* FinalStateDiff_gpu(const BlobVec& top, int k) const;
  float* InitialStateDiff_gpu(const BlobVec& bottom, const std::vector<bool>& propagate_down,
                              int k) const;
#endif  // CREMA_WITH_CUDA

  int num_states_;
  bool expose_hidden_;
  bool backprop_exposed_;            // expose_hidden and backprop_exposed_hidden
  int H_ = 0;                        // num_output
  std::vector<bool> param_is_bias_;  // per blob added by AddParam
  int T_ = 0;                        // time steps
  int N_ = 0;                        // streams
  int D_ = 0;                        // features of x per step
  int D_static_ = 0;                 // features of x_static (0 without)
  bool static_input_ = false;
  int first_state_bottom_ = 2;  // index of h_0 among the bottoms (3 with x_static)

  Blob carried_[2];  // [N, H] final states of the previous Forward (no expose_hidden)
  Blob ones_;        // [T*N] ones for bias sums
  Blob static_buf_;  // [N, G] static projection, then the summed gate gradients
};

}  // namespace crema
