#include "layers/memory_data.hpp"

#include "crema.pb.h"
#include "crema/data_transformer.hpp"
#include "crema/layer_registry.hpp"
#include "crema/prefetch.hpp"

namespace crema {

void MemoryDataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::MemoryDataParameter& param = layer_param_->memory_data_param();
  batch_size_ = static_cast<int>(param.batch_size());
  channels_ = static_cast<int>(param.channels());
  height_ = static_cast<int>(param.height());
  width_ = static_cast<int>(param.width());
  LAYER_REQUIRE(batch_size_ > 0 && channels_ > 0 && height_ > 0 && width_ > 0,
                "memory_data_param needs positive batch_size, channels, height and width; got "
                    << param.batch_size() << ", " << param.channels() << ", " << param.height()
                    << ", " << param.width());
  item_size_ = static_cast<int64_t>(channels_) * height_ * width_;
  top[0]->Reshape(batch_size_, channels_, height_, width_);
  top[1]->Reshape(std::vector<int>{batch_size_});
  TakeCaffeDataLayerSeeds(DataTransformer::NeedsRandom(layer_param_->transform_param(), phase_), 0,
                          /*prefetching=*/false);
}

void MemoryDataLayer::Reset(float* data, float* labels, int n) {
  LAYER_REQUIRE(data != nullptr && labels != nullptr, "Reset needs data and label arrays");
  LAYER_REQUIRE(n > 0 && n % batch_size_ == 0, "Reset: the number of items ("
                                                   << n << ") must be a positive multiple of "
                                                   << "batch_size (" << batch_size_ << ")");
  if (layer_param_->has_transform_param())
    LOG(WARNING) << error_prefix() << "does not transform the arrays given to Reset";
  data_ = data;
  labels_ = labels;
  n_ = n;
  pos_ = 0;
}

void MemoryDataLayer::SeekBatch(int64_t index) {
  if (n_ == 0) return;
  const int64_t batches = n_ / batch_size_;
  pos_ = static_cast<int>(((index % batches + batches) % batches) * batch_size_);
}

void MemoryDataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  LAYER_REQUIRE(data_ != nullptr, "has no data: call Reset(data, labels, n) before forward");
  top[0]->Reshape(batch_size_, channels_, height_, width_);
  top[1]->Reshape(batch_size_, 1, 1, 1);
  top[0]->data()->set_cpu_data(data_ + pos_ * item_size_);
  top[1]->data()->set_cpu_data(labels_ + pos_);
  pos_ = (pos_ + batch_size_) % n_;
}

REGISTER_LAYER_CLASS(MemoryData);

}  // namespace crema
