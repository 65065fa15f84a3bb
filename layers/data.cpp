#include "layers/data.hpp"

#include <random>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

namespace {

// FNV-1a: a stable 64-bit hash of the layer's identity, the RNG stream of its batches.
uint64_t HashString(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

DataLayer::DataLayer(const pb::LayerParameter& param) : Layer(param) {}

DataLayer::~DataLayer() {
  StopProducer();
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
  seed_stream_ =
      HashString("Data|" + name() + "|" + std::to_string(static_cast<int>(phase_)) + "|" + source_);

  StopProducer();  // in case of a second setup
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
  batches_.clear();
  free_.clear();
  full_.clear();
  current_ = nullptr;
  for (int i = 0; i < prefetch_; ++i) {
    auto batch = std::make_unique<Batch>();
    batch->data.Reshape(shape);
    batch->data.mutable_cpu_data();
    if (output_labels_) {
      batch->label.Reshape(std::vector<int>{batch_size_});
      batch->label.mutable_cpu_data();
    }
    free_.push_back(batch.get());
    batches_.push_back(std::move(batch));
  }
  next_forward_ = 0;
  failed_ = nullptr;
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

void DataLayer::StartProducer() {
  CHECK(!running_);
  CHECK(reader_) << "DataLayer used before setup";
  next_load_ = next_forward_;
  PositionReader(next_load_);
  stop_ = false;
  producer_ = std::thread(&DataLayer::ProducerLoop, this);
  running_ = true;
}

void DataLayer::StopProducer() {
  if (!running_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  producer_.join();
  running_ = false;
  // What was read ahead is dropped: the next start re-reads from next_forward_.
  std::lock_guard<std::mutex> lock(mutex_);
  while (!full_.empty()) {
    free_.push_back(full_.front());
    full_.pop_front();
  }
}

void DataLayer::ProducerLoop() {
  pb::Datum datum;
  for (;;) {
    Batch* batch = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_.load() || !free_.empty(); });
      if (stop_) return;
      batch = free_.front();
      free_.pop_front();
    }
    batch->error = nullptr;
    batch->index = next_load_;
    bool done = false;
    try {
      done = LoadBatch(batch, next_load_, &datum);
    } catch (const Error&) {
      batch->error = std::current_exception();
    } catch (const std::exception& e) {
      batch->error = std::make_exception_ptr(Error(error_prefix() + e.what()));
    } catch (...) {
      batch->error =
          std::make_exception_ptr(Error(error_prefix() + "unknown error while reading data"));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!done && !batch->error) {  // asked to stop half-way
        free_.push_back(batch);
        return;
      }
      full_.push_back(batch);
    }
    changed_.notify_all();
    if (batch->error) return;  // Forward rethrows; SeekBatch restarts
    ++next_load_;
  }
}

bool DataLayer::LoadBatch(Batch* batch, int64_t index, pb::Datum* datum) {
  std::mt19937 rng(static_cast<uint32_t>(Context::derive_seed(seed_stream_, index)));
  float* data = batch->data.mutable_cpu_data();
  float* label = output_labels_ ? batch->label.mutable_cpu_data() : nullptr;
  for (int i = 0; i < batch_size_; ++i) {
    if (stop_) return false;
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
  return true;
}

void DataLayer::SeekBatch(int64_t index) {
  LAYER_REQUIRE(index >= 0, "SeekBatch: batch index must not be negative, got " << index);
  StopProducer();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (current_) free_.push_back(current_);
    current_ = nullptr;
  }
  failed_ = nullptr;
  next_forward_ = index;
}

void DataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  if (failed_) std::rethrow_exception(failed_);
  if (!running_) StartProducer();
  Batch* batch = nullptr;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (current_) {
      free_.push_back(current_);
      current_ = nullptr;
      changed_.notify_all();
    }
    changed_.wait(lock, [&] { return !full_.empty(); });
    batch = full_.front();
    full_.pop_front();
    if (batch->error) {
      failed_ = batch->error;
      free_.push_back(batch);
    }
  }
  if (failed_) {
    StopProducer();  // the thread has already ended; join it
    std::rethrow_exception(failed_);
  }
  CHECK_EQ(batch->index, next_forward_) << "prefetch queue out of order";
  current_ = batch;
  ++next_forward_;
  // The tops alias the batch buffers until the next Forward recycles them.
  top[0]->Reshape(batch->data.shape());
  top[0]->data()->set_cpu_data(batch->data.mutable_cpu_data());
  if (output_labels_) {
    top[1]->Reshape(batch->label.shape());
    top[1]->data()->set_cpu_data(batch->label.mutable_cpu_data());
  }
}

REGISTER_LAYER_CLASS(Data);

}  // namespace crema
