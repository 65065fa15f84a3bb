#include "layers/spp.hpp"

#include <cmath>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

SPPLayer::SPPLayer(const pb::LayerParameter& param) : Layer(param) {
  pyramid_height_ = static_cast<int>(param.spp_param().pyramid_height());
  pool_ = static_cast<int>(param.spp_param().pool());
}

void SPPLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(pyramid_height_ > 0 && pyramid_height_ <= 30,
                "pyramid_height must be in [1, 30], got " << pyramid_height_);
}

void SPPLayer::BuildLevels(const BlobVec& bottom) {
  const Blob& x = *bottom[0];
  const int H = x.shape(2), W = x.shape(3);
  LAYER_REQUIRE(H > 0 && W > 0,
                "the bottom's spatial size must be positive, got shape " << x.shape_string());
  levels_.clear();
  pooled_.clear();
  for (int l = 0; l < pyramid_height_; ++l) {
    const long bins = 1L << l;
    const int kh = static_cast<int>((H + bins - 1) / bins);
    const int kw = static_cast<int>((W + bins - 1) / bins);
    const int ph = static_cast<int>((kh * bins - H + 1) / 2);
    const int pw = static_cast<int>((kw * bins - W + 1) / 2);
    pb::LayerParameter p;
    p.set_name(name() + "/level" + std::to_string(l));
    p.set_type("Pooling");
    p.set_phase(layer_param_->phase());
    pb::PoolingParameter* pp = p.mutable_pooling_param();
    pp->set_kernel_h(kh);
    pp->set_kernel_w(kw);
    pp->set_stride_h(kh);
    pp->set_stride_w(kw);
    pp->set_pad_h(ph);
    pp->set_pad_w(pw);
    pp->set_pool(static_cast<pb::PoolingParameter::PoolMethod>(pool_));
    levels_.push_back(std::make_unique<PoolingLayer>(p));
    pooled_.push_back(std::make_unique<Blob>());
  }
  built_shape_ = x.shape();
}

void SPPLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  const Blob& x = *bottom[0];
  LAYER_REQUIRE(x.num_axes() == 4,
                "the bottom must have 4 axes (N, C, H, W), got shape " << x.shape_string());
  const bool rebuild = x.shape() != built_shape_;
  if (rebuild) BuildLevels(bottom);
  try {
    if (pyramid_height_ == 1) {
      if (rebuild)
        levels_[0]->SetUp(bottom, top);
      else
        levels_[0]->Reshape(bottom, top);
      return;
    }
    level_size_.assign(pyramid_height_, 0);
    int total = 0;
    for (int l = 0; l < pyramid_height_; ++l) {
      const BlobVec lt = {pooled_[l].get()};
      if (rebuild)
        levels_[l]->SetUp(bottom, lt);
      else
        levels_[l]->Reshape(bottom, lt);
      level_size_[l] = pooled_[l]->count(1);
      total += level_size_[l];
    }
    top[0]->Reshape({x.shape(0), total});
  } catch (const Error& e) {
    built_shape_.clear();
    LAYER_THROW("cannot pool bottom " << x.shape_string() << " into a pyramid of height "
                                      << pyramid_height_ << ": " << e.what());
  }
  proxy_.ReshapeLike(x);
  proxy_.ShareData(x);
}

void SPPLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  if (pyramid_height_ == 1) {
    levels_[0]->Forward(bottom, top);
    return;
  }
  const int N = bottom[0]->shape(0);
  const long row = top[0]->count(1);
  float* y = top[0]->mutable_cpu_data();
  long offset = 0;
  for (int l = 0; l < pyramid_height_; ++l) {
    levels_[l]->Forward(bottom, {pooled_[l].get()});
    const float* p = pooled_[l]->cpu_data();
    const int size = level_size_[l];
    for (int n = 0; n < N; ++n)
      cpu_copy(size, p + static_cast<long>(n) * size, y + n * row + offset);
    offset += size;
  }
}

void SPPLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                            const BlobVec& bottom) {
  if (!propagate_down[0]) return;
  if (pyramid_height_ == 1) {
    levels_[0]->Backward(top, propagate_down, bottom);
    return;
  }
  const int N = bottom[0]->shape(0);
  const long row = top[0]->count(1);
  const float* dy = top[0]->cpu_diff();
  const int count = bottom[0]->count();
  float* dx = bottom[0]->mutable_cpu_diff();
  cpu_set(count, 0.f, dx);
  const BlobVec proxy = {&proxy_};
  long offset = 0;
  for (int l = 0; l < pyramid_height_; ++l) {
    const int size = level_size_[l];
    float* pd = pooled_[l]->mutable_cpu_diff();
    for (int n = 0; n < N; ++n)
      cpu_copy(size, dy + n * row + offset, pd + static_cast<long>(n) * size);
    offset += size;
    levels_[l]->Backward({pooled_[l].get()}, propagate_down, proxy);
    cpu_axpy(count, 1.f, proxy_.cpu_diff(), dx);
  }
}

REGISTER_LAYER_CLASS(SPP);

}  // namespace crema
