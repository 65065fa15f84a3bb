// ActivationCopies: 16-bit copies of activations, written by the layer that produces a blob
// and read by the mixed-precision convolutions that consume it (FP16/BF16 nets).
//
// Blobs stay fp32 (include/crema/mixed_precision.hpp); a 16-bit convolution rounds its input
// to 16 bits first, a pass that reads 4 bytes and writes 2 per value. When the blob was just
// written by a test-time fused convolution (src/inference_fusion.hpp), that convolution's
// output pass can also write the rounded copy the consumer needs: the consumer then skips its
// rounding pass. The copy holds exactly the values the consumer's own rounding would give
// (the same fp32 value, rounded to nearest even), so results do not change.
//
// The handshake, per net (MixedPrecision::copies):
//  - a producer that has just taken mutable access to a blob calls Produce(data, ...): that
//    offers copies of the data, and returns the storage of a request it can fill, if any,
//    for it to write the copy along with the fp32 data;
//  - a consumer asks Find(data, view) for its input: a copy is returned only when a producer
//    wrote it for this view after the data's last change (SyncedMemory::version); otherwise,
//    if a producer offered copies of the data, the request is recorded (its storage
//    allocated at once, so never while a CUDA graph is captured) and the consumer rounds the
//    input itself, as it does for data no producer offered (no memory is spent on those).
// So the first pass records offers and requests, later passes use them. A request whose
// copy was found stale twice in a row (something changed the data between producer and
// consumer, e.g. an in-place layer that is not fused) is dropped: its producer stops writing it.
//
// Views: the data of `num` items, each [channels][spatial] in the blob's NCHW order, rounded
// to `precision`, laid out NCHW (x16[(n*C + c)*S + s]) or NHWC (x16[(n*S + s)*C + c]).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "crema/blob.hpp"
#include "crema/mixed_precision.hpp"

namespace crema {

class ActivationCopies {
 public:
  struct View {
    Precision precision = Precision::FP16;
    bool nhwc = false;
    int64_t num = 0;
    int channels = 0;
    int64_t spatial = 0;
    bool operator==(const View& o) const {
      return precision == o.precision && nhwc == o.nhwc && num == o.num && channels == o.channels &&
             spatial == o.spatial;
    }
    int64_t count() const { return num * channels * spatial; }
  };
  // Where a producer writes a copy: device storage for view.count() 16-bit values.
  struct Target {
    void* data = nullptr;  // null: no copy to write
    View view;
  };
  struct Counts {
    int64_t hits = 0;       // Find calls answered with a copy
    int64_t misses = 0;     // Find calls that were not
    int64_t produced = 0;   // Produce calls that returned storage
    int64_t abandoned = 0;  // requests dropped as stale
    int64_t requests = 0;   // requests recorded (each holds storage)
  };

  // CREMA_ACTIVATION_COPIES=0 in the environment turns the mechanism off (Find and Produce
  // then always answer null): for comparisons.
  ActivationCopies();

  // The consumer's side, for the data of a blob it is about to read: the copy in `view`
  // (device memory) if one is current, else null (and the view is requested if a producer
  // offered copies of the data).
  const void* Find(const std::shared_ptr<SyncedMemory>& data, const View& view);

  // The producer's side, right after its mutable access to `data`: offers copies of it, and
  // returns storage for a copy a consumer requested whose precision, num, channels and
  // spatial equal `produced` (in the layout requested: the producer writes either). The
  // copy counts as current for the data's present version. Returns a null Target when
  // there is none.
  Target Produce(const std::shared_ptr<SyncedMemory>& data, const View& produced);

  const Counts& counts() const { return counts_; }
  // Device memory the requests' copies hold, in bytes.
  int64_t bytes() const;
  bool enabled() const { return enabled_; }

 private:
  struct Request {
    View view;
    std::shared_ptr<Blob> storage;  // view.count() 16-bit values, as (count + 1) / 2 floats
    bool written = false;           // a producer wrote it for data version `version`
    uint64_t version = 0;
    int stale = 0;  // Find calls in a row that met a copy written for an older version
    bool dropped = false;
  };
  struct Entry {
    std::weak_ptr<SyncedMemory> data;
    std::vector<Request> requests;
  };
  // The live entry for `data` (an entry whose memory died is replaced), or null.
  Entry* entry(const std::shared_ptr<SyncedMemory>& data, bool create);

  bool enabled_ = true;
  std::map<const SyncedMemory*, Entry> entries_;
  Counts counts_;
};

}  // namespace crema
