#include "crema/activation_copies.hpp"

#include <cstdlib>
#include <iterator>
#include <string>

namespace crema {

namespace {
// A copy found stale this many times in a row is no longer requested.
constexpr int kStaleLimit = 2;
}  // namespace

ActivationCopies::ActivationCopies() {
#ifdef CREMA_WITH_CUDA
  const char* setting = std::getenv("CREMA_ACTIVATION_COPIES");
  enabled_ = !(setting && std::string(setting) == "0");
#else
  enabled_ = false;  // only the GPU's 16-bit convolutions use copies
#endif
}

ActivationCopies::Entry* ActivationCopies::entry(const std::shared_ptr<SyncedMemory>& data,
                                                 bool create) {
  auto it = entries_.find(data.get());
  if (it != entries_.end() && it->second.data.lock() != data) {  // memory reused after a free
    entries_.erase(it);
    it = entries_.end();
  }
  if (it != entries_.end()) return &it->second;
  if (!create) return nullptr;
  for (auto dead = entries_.begin(); dead != entries_.end();)  // forget freed memory
    dead = dead->second.data.expired() ? entries_.erase(dead) : std::next(dead);
  Entry& made = entries_[data.get()];
  made.data = data;
  return &made;
}

const void* ActivationCopies::Find(const std::shared_ptr<SyncedMemory>& data, const View& view) {
  if (!enabled_ || !data || view.count() <= 0) return nullptr;
  Entry* e = entry(data, /*create=*/false);
  if (!e) {  // no producer has offered to write copies of this data
    ++counts_.misses;
    return nullptr;
  }
  Request* request = nullptr;
  for (Request& r : e->requests)
    if (r.view == view) request = &r;
  if (!request) {  // the first time: ask producers for it
    Request made;
    made.view = view;
    made.storage =
        std::make_shared<Blob>(std::vector<int>{static_cast<int>((view.count() + 1) / 2)});
#ifdef CREMA_WITH_CUDA
    made.storage->mutable_gpu_data();  // allocated now: not while a CUDA graph is captured
#endif
    e->requests.push_back(made);
    ++counts_.requests;
    ++counts_.misses;
    return nullptr;
  }
  if (!request->dropped && request->written && request->version == data->version()) {
    request->stale = 0;
    ++counts_.hits;
    return request->storage->gpu_data();
  }
  if (!request->dropped && request->written && ++request->stale >= kStaleLimit) {
    request->dropped = true;
    ++counts_.abandoned;
  }
  ++counts_.misses;
  return nullptr;
}

int64_t ActivationCopies::bytes() const {
  int64_t total = 0;
  for (const auto& entry : entries_)
    for (const Request& request : entry.second.requests)
      total += static_cast<int64_t>(request.storage->count()) * sizeof(float);
  return total;
}

ActivationCopies::Target ActivationCopies::Produce(const std::shared_ptr<SyncedMemory>& data,
                                                   const View& produced) {
  Target target;
  if (!enabled_ || !data) return target;
  Entry* e = entry(data, /*create=*/true);  // the offer: consumers may now ask
  for (Request& request : e->requests) {
    View same_layout = produced;
    same_layout.nhwc = request.view.nhwc;
    if (request.dropped || !(request.view == same_layout)) continue;
    request.written = true;
    request.version = data->version();
    ++counts_.produced;
    target.data = request.storage->mutable_gpu_data();
    target.view = request.view;
    return target;
  }
  return target;
}

}  // namespace crema
