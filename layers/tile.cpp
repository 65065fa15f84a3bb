#include "layers/tile.hpp"

#include <algorithm>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

TileLayer::TileLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::TileParameter& p = param.tile_param();
  axis_param_ = p.axis();
  has_tiles_ = p.has_tiles();
  tiles_ = p.tiles();
}

void TileLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(has_tiles_, "tile_param.tiles must be given");
  LAYER_REQUIRE(tiles_ > 0, "tiles must be positive, got " << tiles_);
}

void TileLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  const int axes = x.num_axes();
  LAYER_REQUIRE(axis_param_ >= -axes && axis_param_ < axes,
                "axis " << axis_param_ << " is out of range for bottom shape " << x.shape_string());
  const int axis = x.CanonicalAxisIndex(axis_param_);
  std::vector<int> shape = x.shape();
  shape[axis] *= tiles_;
  top[0]->Reshape(shape);
  outer_ = x.count(0, axis);
  inner_ = x.count(axis);
}

void TileLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  const float* x = bottom[0]->cpu_data();
  float* y = top[0]->mutable_cpu_data();
  const long inner = inner_;
  const int tiles = tiles_;
  parallel_for(static_cast<int64_t>(outer_) * tiles, std::max<long>(1, 16384 / std::max(inner, 1L)),
               [=](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r)
                   cpu_copy(inner, x + (r / tiles) * inner, y + r * inner);
               });
}

void TileLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                             const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  const float* dy = top[0]->cpu_diff();
  float* dx = bottom[0]->mutable_cpu_diff();
  const long inner = inner_;
  const int tiles = tiles_;
  parallel_for(outer_, std::max<long>(1, 16384 / std::max(inner * tiles, 1L)),
               [=](int64_t begin, int64_t end) {
                 for (int64_t o = begin; o < end; ++o) {
                   float* d = dx + o * inner;
                   const float* src = dy + o * tiles * inner;
                   for (long j = 0; j < inner; ++j) d[j] = src[j];
                   for (int t = 1; t < tiles; ++t) {
                     const float* s = src + t * inner;
                     for (long j = 0; j < inner; ++j) d[j] += s[j];
                   }
                 }
               });
}

REGISTER_LAYER_CLASS(Tile);

}  // namespace crema
