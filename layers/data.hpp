// DataLayer (type "Data"): batches of Datums read from an LMDB, transformed, prefetched.
//   bottom: none        top: data [batch_size, C, H', W'] (+ label [batch_size])
//   data_param: source (an LMDB directory), backend (LMDB; LEVELDB is refused), batch_size,
//               rand_skip (entries skipped before the first batch), prefetch (batches kept
//               ready, default 4).
//   transform_param: see crema/data_transformer.hpp; [C, H', W'] is the transformed shape of
//               the database's first entry, and every entry must transform to it.
//   forward: top = batch number k (k = 0, 1, ... over the layer's life), where
//     item i of batch k = entry (rand_skip + (k * batch_size + i) * S + r) mod Entries()
//     (S, r = solver count and rank in TRAIN with several solvers, else 1, 0; the database
//     wraps around like Caffe's cursor), transformed with the numbers Caffe's transformer
//     draws for it (TransformRandomStream: one generator seeded at setup as Caffe seeds its
//     transformer; with several solvers, seed + rank). So batch k depends only on
//     (source, k, random seed) and its crops and mirrors are Caffe's: SeekBatch(k) resumes
//     a run exactly.
//   backward: nothing
//
// Prefetch: a producer thread fills `prefetch` preallocated batches (free -> full queues);
// Forward hands the oldest full batch to the tops without copying (the tops alias the
// batch buffer until the next Forward) and recycles the previous one. The thread starts at
// the first Forward after setup or SeekBatch. An error in the thread (corrupt entry, shape
// mismatch) is passed over and thrown by Forward as crema::Error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crema/data_transformer.hpp"
#include "crema/db.hpp"
#include "crema/layer.hpp"
#include "crema/prefetch.hpp"

namespace crema {

class DataLayer : public Layer {
 public:
  explicit DataLayer(const pb::LayerParameter& param);
  ~DataLayer() override;
  const char* type() const override { return "Data"; }
  // Opens the database, reads the first entry for the shapes, allocates the batches.
  void LayerSetUp(const BlobVec& bottom, const BlobVec& top) override;
  // The tops are shaped at setup and in Forward.
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {}
  int ExactNumBottomBlobs() const override { return 0; }
  int MinTopBlobs() const override { return 1; }
  int MaxTopBlobs() const override { return 2; }

  // The next Forward delivers batch `index` (stops the producer and drops what it read).
  void SeekBatch(int64_t index) override;
  // Number of the batch the next Forward delivers.
  int64_t next_batch() const { return prefetcher_.next_index(); }
  int batch_size() const { return batch_size_; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override;
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  // The prefetcher's loader (producer thread): fills `batch` with batch number `index`;
  // false when asked to stop half-way.
  bool LoadBatch(PrefetchBatch* batch, int64_t index);
  // Moves the reader to the first entry of batch `index`.
  void PositionReader(int64_t index);
  void AdvanceReader();

  // Settings.
  std::string source_;
  int batch_size_ = 0;
  uint64_t rand_skip_ = 0;
  int prefetch_ = 4;
  bool output_labels_ = false;
  int stride_ = 1;  // entries per item: solver count in multi-solver TRAIN
  int rank_ = 0;
  std::vector<int> item_shape_;  // [C, H', W']
  int64_t item_count_ = 0;

  // Producer-thread state: the reader and the batch it is positioned at (-1: unknown,
  // after a seek, a stop half-way or an error).
  std::unique_ptr<LMDBReader> reader_;
  int64_t reader_batch_ = -1;
  std::unique_ptr<DataTransformer> transformer_;
  TransformRandomStream transform_random_;
  std::unique_ptr<pb::Datum> datum_;  // parse buffer of the producer thread

  // `prefetch` preallocated batches filled ahead of Forward by one producer thread.
  BatchPrefetcher prefetcher_;

#ifdef CREMA_WITH_CUDA
 public:
  // GPU mode runs the CPU code (decoding and transforming on the host); the tops move to the device
  // when a GPU layer first reads them (SyncedMemory copies lazily), so no GPU kernel is needed.
  bool HasGpuImplementation() const override {
    return true;
  }

 protected:
  void Forward_gpu(const BlobVec& bottom, const BlobVec& top) override {
    Forward_cpu(bottom, top);
  }
  void Backward_gpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {
    Backward_cpu(top, propagate_down, bottom);
  }
#endif  // CREMA_WITH_CUDA
};

}  // namespace crema
