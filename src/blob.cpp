#include "crema/blob.hpp"

#include <climits>
#include <cstring>

#include "crema.pb.h"
#include "crema/math_functions.hpp"
#ifdef CREMA_WITH_CUDA
#include "src/cuda_util.hpp"
#endif

namespace crema {

void Blob::Reshape(const std::vector<int>& shape) {
  CREMA_REQUIRE(
      shape.size() <= static_cast<size_t>(kMaxBlobAxes),
      "blob shape " << crema::shape_string(shape) << " has more than " << kMaxBlobAxes << " axes");
  int64_t count = 1;
  for (int d : shape) {
    CREMA_REQUIRE(d >= 0,
                  "blob dimensions must be non-negative, got shape " << crema::shape_string(shape));
    count *= d;
    CREMA_REQUIRE(count <= INT_MAX,
                  "blob shape " << crema::shape_string(shape) << " has more than INT_MAX elements");
  }
  shape_ = shape;
  count_ = static_cast<int>(count);
  if (static_cast<size_t>(count_) > capacity_ || !data_) {
    capacity_ = count_;
    data_ = std::make_shared<SyncedMemory>(capacity_ * sizeof(float));
    diff_ = std::make_shared<SyncedMemory>(capacity_ * sizeof(float));
  }
}

void Blob::Reshape(const pb::BlobShape& shape) {
  std::vector<int> dims;
  for (int i = 0; i < shape.dim_size(); ++i) {
    CREMA_REQUIRE(shape.dim(i) >= 0 && shape.dim(i) <= INT_MAX,
                  "blob dimension " << shape.dim(i) << " is out of range");
    dims.push_back(static_cast<int>(shape.dim(i)));
  }
  Reshape(dims);
}

void Blob::Reshape(int num, int channels, int height, int width) {
  Reshape(std::vector<int>{num, channels, height, width});
}

int Blob::count(int start_axis, int end_axis) const {
  CHECK_LE(start_axis, end_axis);
  CHECK_GE(start_axis, 0);
  CHECK_LE(end_axis, num_axes());
  int c = 1;
  for (int i = start_axis; i < end_axis; ++i) c *= shape_[i];
  return c;
}

int Blob::CanonicalAxisIndex(int axis_index) const {
  const int n = num_axes();
  CREMA_REQUIRE(axis_index >= -n && axis_index < n,
                "axis " << axis_index << " is out of range for a blob of shape " << shape_string()
                        << " (" << n << " axes)");
  return axis_index < 0 ? axis_index + n : axis_index;
}

int Blob::LegacyShape(int index) const {
  CREMA_REQUIRE(num_axes() <= 4,
                "the 4-D (num/channels/height/width) view needs a blob of at "
                "most 4 axes, got shape "
                    << shape_string());
  if (index >= num_axes() || index < -num_axes()) return 1;
  return shape(index);
}

int Blob::offset(int n, int c, int h, int w) const {
  return ((n * channels() + c) * height() + h) * width() + w;
}

int Blob::offset(const std::vector<int>& indices) const {
  CHECK_LE(indices.size(), shape_.size());
  int off = 0;
  for (int i = 0; i < num_axes(); ++i) {
    off *= shape_[i];
    if (i < static_cast<int>(indices.size())) off += indices[i];
  }
  return off;
}

const float* Blob::cpu_data() const {
  CHECK(data_);
  return static_cast<const float*>(data_->cpu_data());
}
const float* Blob::cpu_diff() const {
  CHECK(diff_);
  return static_cast<const float*>(diff_->cpu_data());
}
float* Blob::mutable_cpu_data() {
  CHECK(data_);
  return static_cast<float*>(data_->mutable_cpu_data());
}
float* Blob::mutable_cpu_diff() {
  CHECK(diff_);
  return static_cast<float*>(diff_->mutable_cpu_data());
}
const float* Blob::gpu_data() const {
  CHECK(data_);
  return static_cast<const float*>(data_->gpu_data());
}
const float* Blob::gpu_diff() const {
  CHECK(diff_);
  return static_cast<const float*>(diff_->gpu_data());
}
float* Blob::mutable_gpu_data() {
  CHECK(data_);
  return static_cast<float*>(data_->mutable_gpu_data());
}
float* Blob::mutable_gpu_diff() {
  CHECK(diff_);
  return static_cast<float*>(diff_->mutable_gpu_data());
}

void Blob::CopyFrom(const Blob& source, bool copy_diff, bool reshape) {
  if (source.count() != count_ || source.shape() != shape_) {
    CREMA_REQUIRE(reshape, "cannot copy a blob of shape "
                               << source.shape_string() << " into one of shape " << shape_string());
    ReshapeLike(source);
  }
  if (count_ == 0) return;
#ifdef CREMA_WITH_CUDA
  if (Context::mode() == Mode::GPU) {
    CudaCopyDeviceToDevice(copy_diff ? mutable_gpu_diff() : mutable_gpu_data(),
                           copy_diff ? source.gpu_diff() : source.gpu_data(),
                           count_ * sizeof(float));
    return;
  }
#endif
  cpu_copy(count_, copy_diff ? source.cpu_diff() : source.cpu_data(),
           copy_diff ? mutable_cpu_diff() : mutable_cpu_data());
}

void Blob::ShareData(const Blob& other) {
  CHECK_EQ(count_, other.count());
  data_ = other.data();
}

void Blob::ShareDiff(const Blob& other) {
  CHECK_EQ(count_, other.count());
  diff_ = other.diff();
}

namespace {
[[maybe_unused]] bool at_gpu(const std::shared_ptr<SyncedMemory>& mem) {
  return mem && mem->head() == SyncedMemory::Head::AT_GPU;
}
}  // namespace

void Blob::Update() {
  if (count_ == 0) return;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(data_) || at_gpu(diff_)) {
    gpu_axpy(count_, -1.f, gpu_diff(), mutable_gpu_data());
    return;
  }
#endif
  cpu_axpy(count_, -1.f, cpu_diff(), mutable_cpu_data());
}

float Blob::asum_data() const {
  if (count_ == 0) return 0;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(data_)) return gpu_asum(count_, gpu_data());
#endif
  return cpu_asum(count_, cpu_data());
}

float Blob::asum_diff() const {
  if (count_ == 0) return 0;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(diff_)) return gpu_asum(count_, gpu_diff());
#endif
  return cpu_asum(count_, cpu_diff());
}

float Blob::sumsq_data() const {
  if (count_ == 0) return 0;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(data_)) return gpu_dot(count_, gpu_data(), gpu_data());
#endif
  return cpu_sumsq(count_, cpu_data());
}

float Blob::sumsq_diff() const {
  if (count_ == 0) return 0;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(diff_)) return gpu_dot(count_, gpu_diff(), gpu_diff());
#endif
  return cpu_sumsq(count_, cpu_diff());
}

void Blob::scale_data(float factor) {
  if (count_ == 0) return;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(data_)) return gpu_scal(count_, factor, mutable_gpu_data());
#endif
  cpu_scal(count_, factor, mutable_cpu_data());
}

void Blob::scale_diff(float factor) {
  if (count_ == 0) return;
#ifdef CREMA_WITH_CUDA
  if (at_gpu(diff_)) return gpu_scal(count_, factor, mutable_gpu_diff());
#endif
  cpu_scal(count_, factor, mutable_cpu_diff());
}

namespace {

// The shape a BlobProto describes: `shape` when present, else the legacy 4-D fields.
std::vector<int> proto_shape(const pb::BlobProto& proto) {
  std::vector<int> shape;
  if (proto.has_shape()) {
    for (int i = 0; i < proto.shape().dim_size(); ++i) {
      const int64_t d = proto.shape().dim(i);
      CREMA_REQUIRE(d >= 0 && d <= INT_MAX, "blob dimension " << d << " is out of range");
      shape.push_back(static_cast<int>(d));
    }
  } else if (proto.has_num() || proto.has_channels() || proto.has_height() || proto.has_width()) {
    shape = {proto.num(), proto.channels(), proto.height(), proto.width()};
  }
  return shape;
}

}  // namespace

bool Blob::ShapeEquals(const pb::BlobProto& other) const {
  if (!other.has_shape() &&
      (other.has_num() || other.has_channels() || other.has_height() || other.has_width())) {
    // Legacy 4-D proto: compare with our shape padded to 4 axes on the left, as Caffe does.
    if (num_axes() > 4) return false;
    return LegacyShape(-4) == other.num() && LegacyShape(-3) == other.channels() &&
           LegacyShape(-2) == other.height() && LegacyShape(-1) == other.width();
  }
  return proto_shape(other) == shape_;
}

void Blob::FromProto(const pb::BlobProto& proto, bool reshape) {
  if (reshape) {
    Reshape(proto_shape(proto));
  } else {
    CREMA_REQUIRE(ShapeEquals(proto),
                  "stored blob shape " << crema::shape_string(proto_shape(proto))
                                       << " does not match the expected shape " << shape_string());
  }
  float* data = mutable_cpu_data();
  if (proto.double_data_size() > 0) {
    CREMA_REQUIRE(proto.double_data_size() == count_, "stored blob has " << proto.double_data_size()
                                                                         << " values for shape "
                                                                         << shape_string());
    for (int i = 0; i < count_; ++i) data[i] = static_cast<float>(proto.double_data(i));
  } else {
    CREMA_REQUIRE(proto.data_size() == count_, "stored blob has " << proto.data_size()
                                                                  << " values for shape "
                                                                  << shape_string());
    if (count_ > 0) std::memcpy(data, proto.data().data(), count_ * sizeof(float));
  }
  if (proto.double_diff_size() > 0) {
    CREMA_REQUIRE(proto.double_diff_size() == count_, "stored blob diff has wrong size");
    float* diff = mutable_cpu_diff();
    for (int i = 0; i < count_; ++i) diff[i] = static_cast<float>(proto.double_diff(i));
  } else if (proto.diff_size() > 0) {
    CREMA_REQUIRE(proto.diff_size() == count_, "stored blob diff has " << proto.diff_size()
                                                                       << " values for shape "
                                                                       << shape_string());
    std::memcpy(mutable_cpu_diff(), proto.diff().data(), count_ * sizeof(float));
  }
}

void Blob::ToProto(pb::BlobProto* proto, bool write_diff) const {
  proto->clear_shape();
  for (int d : shape_) proto->mutable_shape()->add_dim(d);
  proto->clear_data();
  proto->clear_diff();
  proto->clear_double_data();
  proto->clear_double_diff();
  if (count_ > 0) {
    const float* data = cpu_data();
    proto->mutable_data()->Add(data, data + count_);
    if (write_diff) {
      const float* diff = cpu_diff();
      proto->mutable_diff()->Add(diff, diff + count_);
    }
  }
}

}  // namespace crema
