// Blob: an N-d float array with a gradient of the same shape (data and diff), the unit of
// storage for activations and parameters. Shapes are row-major, outermost axis first;
// images are N x C x H x W.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crema/common.hpp"
#include "crema/syncedmem.hpp"

namespace crema {

constexpr int kMaxBlobAxes = 32;

class Blob {
 public:
  Blob() = default;
  explicit Blob(const std::vector<int>& shape) { Reshape(shape); }
  Blob(int num, int channels, int height, int width) { Reshape(num, channels, height, width); }
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;

  // Changes the shape. Memory is reallocated only when the new count exceeds the capacity
  // already held, so shrinking and re-growing within capacity never allocates.
  void Reshape(const std::vector<int>& shape);
  void Reshape(const pb::BlobShape& shape);
  void Reshape(int num, int channels, int height, int width);
  void ReshapeLike(const Blob& other) { Reshape(other.shape()); }

  const std::vector<int>& shape() const { return shape_; }
  // Negative axes count from the end: shape(-1) is the last dimension.
  int shape(int axis) const { return shape_[CanonicalAxisIndex(axis)]; }
  int num_axes() const { return static_cast<int>(shape_.size()); }
  int count() const { return count_; }
  // Product of dimensions in [start, end).
  int count(int start_axis, int end_axis) const;
  int count(int start_axis) const { return count(start_axis, num_axes()); }
  int CanonicalAxisIndex(int axis_index) const;
  std::string shape_string() const { return crema::shape_string(shape_); }

  // Caffe's legacy 4-D view: missing axes read as 1. Only valid for blobs of <= 4 axes.
  int num() const { return LegacyShape(0); }
  int channels() const { return LegacyShape(1); }
  int height() const { return LegacyShape(2); }
  int width() const { return LegacyShape(3); }
  int LegacyShape(int index) const;

  int offset(int n, int c = 0, int h = 0, int w = 0) const;
  int offset(const std::vector<int>& indices) const;

  const float* cpu_data() const;
  const float* cpu_diff() const;
  float* mutable_cpu_data();
  float* mutable_cpu_diff();
  const float* gpu_data() const;
  const float* gpu_diff() const;
  float* mutable_gpu_data();
  float* mutable_gpu_diff();
  float data_at(int n, int c, int h, int w) const { return cpu_data()[offset(n, c, h, w)]; }
  float diff_at(int n, int c, int h, int w) const { return cpu_diff()[offset(n, c, h, w)]; }

  const std::shared_ptr<SyncedMemory>& data() const { return data_; }
  const std::shared_ptr<SyncedMemory>& diff() const { return diff_; }

  // Copies data (or diff) from `source`; with reshape == false the counts must agree.
  void CopyFrom(const Blob& source, bool copy_diff = false, bool reshape = false);
  // Makes this blob use other's storage (same count required). Used by in-place-like
  // layers (Flatten, Reshape) and by parameter sharing.
  void ShareData(const Blob& other);
  void ShareDiff(const Blob& other);

  // data -= diff (the solver has already put the scaled step into diff).
  void Update();
  // Sums over the active side (CPU or GPU, wherever the head is).
  float asum_data() const;
  float asum_diff() const;
  float sumsq_data() const;
  float sumsq_diff() const;
  void scale_data(float factor);
  void scale_diff(float factor);

  // Serialisation to Caffe's BlobProto: shape (field 7) + data (5) [+ diff (6)].
  // FromProto accepts `shape`, legacy num/channels/height/width, float or double data.
  // With reshape == false the stored shape must equal ours (legacy 4-D shapes compared the
  // way Caffe compares them); a mismatch throws crema::Error with both shapes.
  void FromProto(const pb::BlobProto& proto, bool reshape = true);
  void ToProto(pb::BlobProto* proto, bool write_diff = false) const;
  bool ShapeEquals(const pb::BlobProto& other) const;

 private:
  std::shared_ptr<SyncedMemory> data_;
  std::shared_ptr<SyncedMemory> diff_;
  std::vector<int> shape_;
  int count_ = 0;
  size_t capacity_ = 0;
};

using BlobVec = std::vector<Blob*>;

}  // namespace crema
