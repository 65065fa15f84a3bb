#include "layers/data.hpp"

#include <random>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

DataLayer::DataLayer(const pb::LayerParameter& param) : Layer(param) {}

DataLayer::~DataLayer() {
  prefetcher_.Stop();
}

void DataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::DataParameter& param = layer_param_->data_param();
  source_ = param.source();
  LAYER_REQUIRE(!source_.empty(), "data_param.source is not set (the path of an LMDB)");
  if (param.has_backend() && param.backend() != pb::DataParameter::LMDB)
    LAYER_THROW(
        "data_param.backend is LEVELDB, but crema supports LMDB only; convert the data "
        "to LMDB (e.g. with `crema convert_mnist`, or Caffe's convert_imageset "
        "--backend=lmdb) and set `backend: LMDB`");
  LAYER_REQUIRE(param.batch_size() > 0,
                "data_param.batch_size must be positive, got " << param.batch_size());
  LAYER_REQUIRE(param.batch_size() <= (1u << 30),
                "data_param.batch_size is too large: " << param.batch_size());
  LAYER_REQUIRE(param.prefetch() >= 1 && param.prefetch() <= 1024,
                "data_param.prefetch must be between 1 and 1024, got " << param.prefetch());
  batch_size_ = static_cast<int>(param.batch_size());
  rand_skip_ = param.rand_skip();
  prefetch_ = static_cast<int>(param.prefetch());
  output_labels_ = top.size() == 2;
  if (phase_ == Phase::TRAIN && Context::solver_count() > 1) {
    stride_ = Context::solver_count();
    rank_ = Context::solver_rank();
  } else {
    stride_ = 1;
    rank_ = 0;
  }

  prefetcher_.Stop();  // in case of a second setup
  try {
    reader_ = std::make_unique<LMDBReader>(source_);
  } catch (const Error& e) {
    if (!param.has_backend())
      LAYER_THROW("data_param.source: " << e.what()
                                        << " (backend is not set: Caffe would read LEVELDB, "
                                           "crema reads LMDB only)");
    LAYER_THROW("data_param.source: " << e.what());
  }
  LAYER_REQUIRE(reader_->Entries() > 0, "LMDB '" << source_ << "' is empty");
  try {
    transformer_ = std::make_unique<DataTransformer>(layer_param_->transform_param(), phase_);
  } catch (const Error& e) {
    LAYER_THROW(e.what());
  }
  const uint32_t transformer_seed =
      TakeCaffeDataLayerSeeds(transformer_->NeedsRandom(), 0, /*prefetching=*/true);
  // Several solvers: each rank's transformer draws from a stream of its own.
  transform_random_.Init(transformer_seed + static_cast<uint32_t>(rank_),
                         int64_t{batch_size_} * transformer_->DrawsPerItem());

  // Shapes from the first entry.
  reader_->SeekToFirst();
  pb::Datum datum;
  const std::string_view value = reader_->value();
  if (!datum.ParseFromArray(value.data(), static_cast<int>(value.size())))
    LAYER_THROW("entry '" << reader_->key() << "' of LMDB '" << source_
                          << "' is not a Datum (is this a Caffe dataset?)");
  std::vector<int> shape;
  try {
    shape = transformer_->InferBlobShape(datum);
  } catch (const Error& e) {
    LAYER_THROW("entry '" << reader_->key() << "' of LMDB '" << source_ << "': " << e.what());
  }
  item_shape_.assign(shape.begin() + 1, shape.end());
  item_count_ = static_cast<int64_t>(item_shape_[0]) * item_shape_[1] * item_shape_[2];
  LAYER_REQUIRE(item_count_ * batch_size_ <= INT32_MAX, "a batch of " << batch_size_ << " items of "
                                                                      << shape_string(item_shape_)
                                                                      << " is too large");
  shape[0] = batch_size_;
  top[0]->Reshape(shape);
  if (output_labels_) top[1]->Reshape(std::vector<int>{batch_size_});
  LOG(INFO) << error_prefix() << "output data size: " << top[0]->shape_string() << " from "
            << source_ << " (" << reader_->Entries() << " entries)";

  // Preallocated batches: the producer never allocates.
  datum_ = std::make_unique<pb::Datum>();
  reader_batch_ = -1;
  prefetcher_.Init(
      prefetch_, shape, output_labels_ ? std::vector<int>{batch_size_} : std::vector<int>{},
      [this](PrefetchBatch* batch, int64_t index) { return LoadBatch(batch, index); },
      error_prefix());
}

void DataLayer::PositionReader(int64_t index) {
  const uint64_t n = reader_->Entries();
  const uint64_t per_batch = (static_cast<uint64_t>(batch_size_) * stride_) % n;
  const uint64_t k = static_cast<uint64_t>(index) % n;
  const uint64_t start = (rand_skip_ % n + (k * per_batch) % n + static_cast<uint64_t>(rank_)) % n;
  reader_->SeekToIndex(start);
}

void DataLayer::AdvanceReader() {
  for (int s = 0; s < stride_; ++s) {
    if (reader_->NextWrap()) VLOG(1) << error_prefix() << "restarting from the first entry";
  }
}

bool DataLayer::LoadBatch(PrefetchBatch* batch, int64_t index) {
  // The reader keeps its place from one batch to the next; after a seek, a stop or an error
  // it is positioned afresh. Either way batch `index` reads the same entries.
  if (reader_batch_ != index) PositionReader(index);
  reader_batch_ = -1;
  pb::Datum* datum = datum_.get();
  std::mt19937& rng = transform_random_.At(index);
  float* data = batch->data.mutable_cpu_data();
  float* label = output_labels_ ? batch->label.mutable_cpu_data() : nullptr;
  for (int i = 0; i < batch_size_; ++i) {
    if (prefetcher_.stopping()) return false;
    const std::string_view value = reader_->value();
    if (!datum->ParseFromArray(value.data(), static_cast<int>(value.size())))
      LAYER_THROW("entry '" << reader_->key() << "' of LMDB '" << source_
                            << "' is not a valid Datum (corrupt database?)");
    try {
      transformer_->Transform(*datum, data + i * item_count_, rng, item_shape_);
    } catch (const Error& e) {
      LAYER_THROW("entry '" << reader_->key() << "' of LMDB '" << source_ << "': " << e.what());
    }
    if (label) label[i] = static_cast<float>(datum->label());
    AdvanceReader();
  }
  reader_batch_ = index + 1;
  transform_random_.Finished(index);
  return true;
}

void DataLayer::SeekBatch(int64_t index) {
  LAYER_REQUIRE(index >= 0, "SeekBatch: batch index must not be negative, got " << index);
  prefetcher_.Seek(index);
}

void DataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  // The tops alias the batch buffers until the next Forward recycles them.
  BatchPrefetcher::AliasTops(prefetcher_.Next(), top);
}

REGISTER_LAYER_CLASS(Data);

}  // namespace crema
