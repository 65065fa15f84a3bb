// TileLayer (type "Tile"): repeats the blocks from `axis` on, `tiles` times.
//   bottom: x [d_0, ..., d_{n-1}];  top: y, the same with d_axis * tiles on axis `axis`
//   With outer = d_0...d_{axis-1} and inner = d_axis...d_{n-1}:
//     forward:  y[o, t, :] = x[o, :]            for t in [0, tiles)
//     backward: dx[o, :] = sum_t dy[o, t, :]
//   tile_param: axis (1, may be negative), tiles (required, > 0).
#pragma once

#include <vector>

#include "crema/layer.hpp"

namespace crema {

class TileLayer : public Layer {
 public:
  explicit TileLayer(const pb::LayerParameter& param);
  const char* type() const override { return "Tile"; }
  int ExactNumBottomBlobs() const override { return 1; }
  int ExactNumTopBlobs() const override { return 1; }

  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  void Reshape(const BlobVec& bottom, const BlobVec& top) override;

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;

 private:
  int axis_param_ = 1;
  bool has_tiles_ = false;
  int tiles_ = 0;
  int outer_ = 0, inner_ = 0;

#ifdef CREMA_WITH_CUDA
 public:
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override;
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
