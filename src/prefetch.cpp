#include "crema/prefetch.hpp"

#include <glog/logging.h>

#include <utility>

#ifdef CREMA_WITH_CUDA
#include <cuda_runtime.h>

#include "src/cuda_stream.hpp"
#include "src/cuda_util.hpp"
#endif

namespace crema {

namespace {
#ifdef CREMA_WITH_CUDA
void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    CREMA_THROW("CUDA error in " << what << ": " << cudaGetErrorString(status));
}
#endif
}  // namespace

uint32_t TakeCaffeDataLayerSeeds(bool transformer_random, int own_seeds, bool prefetching) {
  std::mt19937& rng = Context::rng();
  uint32_t transformer_seed = transformer_random ? static_cast<uint32_t>(rng()) : 0;
  rng.discard(own_seeds);
  if (prefetching) {
    if (transformer_random) transformer_seed = static_cast<uint32_t>(rng());
    rng.discard(1);  // the prefetch thread's
  }
  return transformer_seed;
}

void TransformRandomStream::Init(uint32_t seed, int64_t draws_per_batch) {
  seed_ = seed;
  draws_per_batch_ = draws_per_batch;
  next_batch_ = -1;
}

std::mt19937& TransformRandomStream::At(int64_t batch) {
  if (batch != next_batch_) {
    rng_.seed(seed_);
    rng_.discard(static_cast<unsigned long long>(batch) *
                 static_cast<unsigned long long>(draws_per_batch_));
  }
  next_batch_ = -1;  // until Finished(batch)
  return rng_;
}

BatchPrefetcher::~BatchPrefetcher() {
  Stop();
  ReleaseGpuResources();
}

void BatchPrefetcher::ReleaseGpuResources() {
#ifdef CREMA_WITH_CUDA
  if (!gpu_) return;
  cudaSetDevice(device_);
  for (auto& batch : batches_)
    if (batch->released) cudaEventDestroy(static_cast<cudaEvent_t>(batch->released));
  batches_.clear();  // the blobs point into the pinned buffers
  for (void* ptr : pinned_) CudaHostFree(ptr);
  pinned_.clear();
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
  stream_ = nullptr;
  gpu_ = false;
#endif
}

// Producer thread: the batch's host buffers go to the device on the producer's stream,
// after the compute stream released the batch's device buffers.
void BatchPrefetcher::PushToDevice(PrefetchBatch* batch) {
#ifdef CREMA_WITH_CUDA
  cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  check(cudaStreamWaitEvent(stream, static_cast<cudaEvent_t>(batch->released), 0),
        "cudaStreamWaitEvent");
  batch->data.data()->async_gpu_push(stream);
  if (batch->label.count() > 0) batch->label.data()->async_gpu_push(stream);
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (prefetch copy)");
  batch->on_device = true;
#endif
}

void BatchPrefetcher::Init(int depth, const std::vector<int>& data_shape,
                           const std::vector<int>& label_shape, Loader loader,
                           std::string error_prefix) {
  CHECK_GE(depth, 1);
  Stop();
  ReleaseGpuResources();
  loader_ = std::move(loader);
  error_prefix_ = std::move(error_prefix);
  batches_.clear();
  free_.clear();
  full_.clear();
  current_ = nullptr;
#ifdef CREMA_WITH_CUDA
  if (Context::mode() == Mode::GPU) {
    gpu_ = true;
    device_ = CudaCurrentDevice();
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    stream_ = stream;
  }
#endif
  for (int i = 0; i < depth; ++i) {
    auto batch = std::make_unique<PrefetchBatch>();
    batch->data.Reshape(data_shape);
    if (!label_shape.empty()) batch->label.Reshape(label_shape);
#ifdef CREMA_WITH_CUDA
    if (gpu_) {
      for (Blob* blob : {&batch->data, &batch->label}) {
        if (blob->count() == 0) continue;
        pinned_.push_back(CudaHostMalloc(blob->count() * sizeof(float)));
        blob->data()->set_cpu_data(pinned_.back());
      }
      cudaEvent_t released = nullptr;
      check(cudaEventCreateWithFlags(&released, cudaEventDisableTiming), "cudaEventCreate");
      check(cudaEventRecord(released, cuda_stream()), "cudaEventRecord");
      batch->released = released;
    }
#endif
    batch->data.mutable_cpu_data();
    if (!label_shape.empty()) batch->label.mutable_cpu_data();
    free_.push_back(batch.get());
    batches_.push_back(std::move(batch));
  }
  next_forward_ = 0;
  failed_ = nullptr;
}

void BatchPrefetcher::SetShard(int rank, int count) {
  CHECK_GE(count, 1);
  CHECK(rank >= 0 && rank < count) << "rank " << rank << " of " << count;
  Stop();
  shard_rank_ = rank;
  shard_count_ = count;
}

void BatchPrefetcher::Stop() {
  if (!running_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
  running_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  // Read-ahead is dropped; the next start re-reads from next_forward_.
  while (!full_.empty()) {
    free_.push_back(full_.front());
    full_.pop_front();
  }
}

void BatchPrefetcher::Run() {
#ifdef CREMA_WITH_CUDA
  if (gpu_) cudaSetDevice(device_);
#endif
  for (;;) {
    PrefetchBatch* batch = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_.load() || !free_.empty(); });
      if (stop_) return;
      batch = free_.front();
      free_.pop_front();
    }
    batch->error = nullptr;
    batch->index = next_load_;
    batch->on_device = false;
    bool complete = false;
    try {
      complete = loader_(batch, next_load_ * shard_count_ + shard_rank_);
      if (complete && gpu_) PushToDevice(batch);
    } catch (const Error&) {
      batch->error = std::current_exception();
    } catch (const std::exception& e) {
      batch->error = std::make_exception_ptr(Error(error_prefix_ + e.what()));
    } catch (...) {
      batch->error =
          std::make_exception_ptr(Error(error_prefix_ + "unknown error while loading data"));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!complete && !batch->error) {  // gave up because of stop_
        free_.push_back(batch);
        return;
      }
      full_.push_back(batch);
    }
    changed_.notify_all();
    if (batch->error) return;  // the consumer rethrows; Seek restarts the thread
    ++next_load_;
  }
}

PrefetchBatch* BatchPrefetcher::Next() {
  CHECK(!batches_.empty()) << "BatchPrefetcher used before Init";
  if (failed_) std::rethrow_exception(failed_);
  if (!running_) {
    next_load_ = next_forward_;
    stop_ = false;
    thread_ = std::thread(&BatchPrefetcher::Run, this);
    running_ = true;
  }
  PrefetchBatch* batch = nullptr;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (current_) {
#ifdef CREMA_WITH_CUDA
      // Work queued so far may still read the batch on the device.
      if (gpu_)
        check(cudaEventRecord(static_cast<cudaEvent_t>(current_->released), cuda_stream()),
              "cudaEventRecord");
#endif
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
    Stop();  // the thread has returned already: join it
    std::rethrow_exception(failed_);
  }
  CHECK_EQ(batch->index, next_forward_) << "prefetch queue out of order";
  current_ = batch;
  ++next_forward_;
  return batch;
}

void BatchPrefetcher::Seek(int64_t index) {
  CHECK_GE(index, 0);
  Stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
#ifdef CREMA_WITH_CUDA
    if (current_ && gpu_)
      check(cudaEventRecord(static_cast<cudaEvent_t>(current_->released), cuda_stream()),
            "cudaEventRecord");
#endif
    if (current_) free_.push_back(current_);
    current_ = nullptr;
  }
  failed_ = nullptr;
  next_forward_ = index;
}

void BatchPrefetcher::AliasTops(PrefetchBatch* batch, const BlobVec& top) {
  auto alias = [batch](Blob* source, Blob* target) {
    target->Reshape(source->shape());
#ifdef CREMA_WITH_CUDA
    if (batch->on_device) {
      // gpu_data() (not mutable): the source stays SYNCED, so the producer's next write
      // to the host side copies nothing back.
      target->data()->set_gpu_data(const_cast<float*>(source->gpu_data()));
      return;
    }
#endif
    target->data()->set_cpu_data(source->mutable_cpu_data());
  };
  alias(&batch->data, top[0]);
  if (top.size() > 1) alias(&batch->label, top[1]);
}

}  // namespace crema
