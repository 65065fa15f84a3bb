#include "crema/prefetch.hpp"

#include <glog/logging.h>

#include <utility>

namespace crema {

void BatchPrefetcher::Init(int depth, const std::vector<int>& data_shape,
                           const std::vector<int>& label_shape, Loader loader,
                           std::string error_prefix) {
  CHECK_GE(depth, 1);
  Stop();
  loader_ = std::move(loader);
  error_prefix_ = std::move(error_prefix);
  batches_.clear();
  free_.clear();
  full_.clear();
  current_ = nullptr;
  for (int i = 0; i < depth; ++i) {
    auto batch = std::make_unique<PrefetchBatch>();
    batch->data.Reshape(data_shape);
    batch->data.mutable_cpu_data();
    if (!label_shape.empty()) {
      batch->label.Reshape(label_shape);
      batch->label.mutable_cpu_data();
    }
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
    bool complete = false;
    try {
      complete = loader_(batch, next_load_ * shard_count_ + shard_rank_);
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
    if (current_) free_.push_back(current_);
    current_ = nullptr;
  }
  failed_ = nullptr;
  next_forward_ = index;
}

void BatchPrefetcher::AliasTops(PrefetchBatch* batch, const BlobVec& top) {
  top[0]->Reshape(batch->data.shape());
  top[0]->data()->set_cpu_data(batch->data.mutable_cpu_data());
  if (top.size() > 1) {
    top[1]->Reshape(batch->label.shape());
    top[1]->data()->set_cpu_data(batch->label.mutable_cpu_data());
  }
}

}  // namespace crema
