// BatchPrefetcher: a producer thread that fills numbered batches (data + label blobs) ahead of
// the consumer, for data layers whose batch k depends only on k (so any batch can be
// produced again after a seek).
//
//   depth batches circulate between two queues: free -> (producer loads batch n) -> full ->
//   (consumer takes it; it stays "current" until the next Next() or Seek()) -> free.
//   Next() returns batch next_index() and starts the thread on first use; Seek(k) stops
//   the thread, drops what it read ahead and makes the next Next() deliver batch k.
//
// GPU mode (Context::mode() at Init): the batch buffers are page-locked host memory, and
// the producer thread, after loading a batch, copies it to the device on its own stream
// (cudaMemcpyAsync) and waits for that copy, so the transfer overlaps the compute of the
// current iteration too. Before overwriting a recycled batch it makes its stream wait for
// the event the consumer recorded on release: kernels of the previous iteration that still
// read the batch (a first layer's weight gradient) finish first. The tops then alias the
// device buffers.
//
// The loader runs on the producer thread: load(batch, k) fills *batch (it may Reshape the
// blobs: the consumer re-reads their shapes) and returns false when it saw stopping() and
// gave up half-way. A crema::Error it throws is handed to the consumer and rethrown by
// Next() (and by every later Next() until Seek()); other exceptions are wrapped into a
// crema::Error prefixed with `error_prefix`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crema/blob.hpp"
#include "crema/common.hpp"

namespace crema {

// FNV-1a: a stable 64-bit hash, for deriving a data layer's RNG stream from its identity.
inline uint64_t StableHash(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// Fisher-Yates with one generator output per step (j = rng() mod (i + 1)), so the result
// is the same on every platform (std::shuffle's is not specified).
template <typename T, typename Rng>
void StableShuffle(std::vector<T>* items, Rng& rng) {
  for (size_t i = items->size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap((*items)[i - 1], (*items)[j]);
  }
}

// Caffe's data layers take seeds from the main generator while they are set up, in this
// order: one for their DataTransformer when it draws random numbers (mirror, or a crop in
// TRAIN); then `own_seeds` of the layer's own (ImageData: shuffle, rand_skip; WindowData:
// one when it mirrors or crops); and, for the prefetching layers (Data, ImageData,
// WindowData), the transformer's seed once more (replacing the first) and one for the
// prefetch thread. crema takes as many from Context::rng(), so the fillers of the layers
// after them draw what Caffe's draw (a net's uniform and xavier weights are Caffe's for the
// same random_seed). Returns the seed the transformer ends up with (0 when it draws none):
// Data and ImageData layers draw their crops and mirrors from it as Caffe's do
// (TransformRandomStream); shuffles and WindowData use crema's own streams.
uint32_t TakeCaffeDataLayerSeeds(bool transformer_random, int own_seeds, bool prefetching);

// The generator a Caffe DataTransformer draws from in a data layer: a Mersenne Twister
// seeded once, at setup, from which every item of every batch draws `draws_per_item`
// numbers in turn (DataTransformer::DrawsPerItem), batch after batch. At(k) returns it
// positioned at batch k's first draw: where batch k - 1 left it, or, after a seek or a batch
// stopped half-way, reseeded and advanced by k * batch_size * draws_per_item draws. So the
// crops and mirrors of batch k are Caffe's, and depend only on (seed, k).
class TransformRandomStream {
 public:
  void Init(uint32_t seed, int64_t draws_per_batch);
  std::mt19937& At(int64_t batch);
  // Batch `batch` has drawn all its numbers (the next At(batch + 1) continues from here).
  void Finished(int64_t batch) { next_batch_ = batch + 1; }

 private:
  std::mt19937 rng_;
  uint32_t seed_ = 0;
  int64_t draws_per_batch_ = 0;
  int64_t next_batch_ = -1;  // the batch rng_ is positioned at; -1: unknown
};

struct PrefetchBatch {
  Blob data;
  Blob label;
  int64_t index = -1;
  std::exception_ptr error;
  // GPU mode: the producer has copied data and label to the device (on_device), and the
  // consumer marks with `released` (a cudaEvent_t) when the compute stream is done with them.
  bool on_device = false;
  void* released = nullptr;
};

class BatchPrefetcher {
 public:
  using Loader = std::function<bool(PrefetchBatch* batch, int64_t index)>;

  BatchPrefetcher() = default;
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Stops any running thread and allocates `depth` batches of the given shapes (an empty
  // label shape leaves the labels unallocated). Next() will deliver batch 0.
  void Init(int depth, const std::vector<int>& data_shape, const std::vector<int>& label_shape,
            Loader loader, std::string error_prefix);

  // Data parallelism: solver `rank` of `count` reads every count-th batch of the source,
  // so its k-th batch is source batch k * count + rank (the loader receives that number;
  // Next/Seek/next_index keep counting this solver's own batches). Default (0, 1).
  // Together the solvers of one iteration read batches k*count .. k*count + count - 1.
  // Call after Init. (The Data layer shards by record instead, as Caffe does.)
  void SetShard(int rank, int count);

  // Waits for batch next_index() and returns it; the previous one is recycled. The batch
  // stays valid (and unchanged) until the next call to Next(), Seek() or Init().
  PrefetchBatch* Next();
  void Seek(int64_t index);
  int64_t next_index() const { return next_forward_; }
  // For the loader: true once the consumer wants the thread to end.
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  void Stop();

  // Convenience for layers: points top[0] (and top[1] when present) at the batch buffers
  // without copying (the device buffers when the batch is on the device).
  static void AliasTops(PrefetchBatch* batch, const BlobVec& top);

 private:
  void Run();

  std::vector<std::unique_ptr<PrefetchBatch>> batches_;
  std::deque<PrefetchBatch*> free_;
  std::deque<PrefetchBatch*> full_;
  PrefetchBatch* current_ = nullptr;
  Loader loader_;
  std::string error_prefix_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool running_ = false;
  int64_t next_load_ = 0;
  int shard_rank_ = 0, shard_count_ = 1;
  int64_t next_forward_ = 0;
  std::exception_ptr failed_;
  // GPU mode.
  bool gpu_ = false;
  int device_ = 0;
  void* stream_ = nullptr;     // cudaStream_t of the producer's copies
  std::vector<void*> pinned_;  // page-locked buffers behind the batches
  void ReleaseGpuResources();
  void PushToDevice(PrefetchBatch* batch);
};

}  // namespace crema
