#include "layers/embed.hpp"

#include <algorithm>
#include <string>

#include "crema.pb.h"
#include "crema/layer_registry.hpp"
#include "crema/math_functions.hpp"

namespace crema {

EmbedLayer::EmbedLayer(const pb::LayerParameter& param) : Layer(param) {
  const pb::EmbedParameter& p = param.embed_param();
  num_output_ = static_cast<int>(p.num_output());
  input_dim_ = static_cast<int>(p.input_dim());
  bias_term_ = p.bias_term();
}

void EmbedLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::EmbedParameter& p = layer_param_->embed_param();
  LAYER_REQUIRE(num_output_ > 0, "num_output must be positive, got " << p.num_output());
  LAYER_REQUIRE(input_dim_ > 0, "input_dim must be positive, got " << p.input_dim());
  const std::vector<int> weight_shape = {input_dim_, num_output_};
  const std::vector<int> bias_shape = {num_output_};
  SetUpWeightAndBias(weight_shape, p.weight_filler(), bias_term_, bias_shape, p.bias_filler());
  param_propagate_down_.resize(blobs_.size(), true);
}

void EmbedLayer::Reshape(const BlobVec& bottom, const BlobVec& top) {
  M_ = bottom[0]->count();
  ids_shape_ = bottom[0]->shape();
  std::vector<int> shape = bottom[0]->shape();
  shape.push_back(num_output_);
  top[0]->Reshape(shape);
}

double EmbedLayer::ForwardFlops(const BlobVec& bottom, const BlobVec& top) const {
  return bias_term_ ? static_cast<double>(M_) * num_output_ : 0.0;
}

void EmbedLayer::ThrowBadId(int64_t position, float value, bool earlier_batch) const {
  const bool in_range = value >= 0.f && value < static_cast<float>(input_dim_);
  const std::string where = "(at position " + std::to_string(position) + " of the bottom " +
                            shape_string(ids_shape_) +
                            (earlier_batch ? ", in an earlier batch)" : ")");
  if (!in_range)
    LAYER_THROW("index " << value << " " << where << " is out of range [0, " << input_dim_
                         << ") (input_dim " << input_dim_ << ")");
  LAYER_THROW("index " << value << " " << where << " is not an integer");
}

void EmbedLayer::CheckIds(const Blob& ids) const {
  const float* x = ids.cpu_data();
  for (int m = 0; m < M_; ++m) {
    const float v = x[m];
    const bool valid = v >= 0.f && v < static_cast<float>(input_dim_) &&
                       v == static_cast<float>(static_cast<int>(v));
    if (!valid) ThrowBadId(m, v, /*earlier_batch=*/false);
  }
}

void EmbedLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  CheckIds(*bottom[0]);
  const float* x = bottom[0]->cpu_data();
  const float* W = blobs_[0]->cpu_data();
  const float* b = bias_term_ ? blobs_[1]->cpu_data() : nullptr;
  float* y = top[0]->mutable_cpu_data();
  const int N = num_output_;
  parallel_for(M_, std::max(1, 16384 / N), [=](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const float* row = W + static_cast<long>(x[m]) * N;
      float* out = y + m * N;
      if (b) {
        for (int j = 0; j < N; ++j) out[j] = row[j] + b[j];
      } else {
        for (int j = 0; j < N; ++j) out[j] = row[j];
      }
    }
  });
}

void EmbedLayer::Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                              const BlobVec& bottom) {
  if (propagate_down[0]) LAYER_THROW("cannot backpropagate to the ids (bottom 0)");
  const float* dy = top[0]->cpu_diff();
  const int N = num_output_;
  if (param_propagate_down(0)) {
    CheckIds(*bottom[0]);
    const float* x = bottom[0]->cpu_data();
    float* dW = blobs_[0]->mutable_cpu_diff();
    // In order of m, so repeated ids accumulate deterministically.
    for (int m = 0; m < M_; ++m)
      cpu_axpy(N, 1.f, dy + static_cast<long>(m) * N, dW + static_cast<long>(x[m]) * N);
  }
  if (bias_term_ && param_propagate_down(1)) {
    float* db = blobs_[1]->mutable_cpu_diff();
    for (int m = 0; m < M_; ++m) {
      const float* row = dy + static_cast<long>(m) * N;
      for (int j = 0; j < N; ++j) db[j] += row[j];
    }
  }
}

REGISTER_LAYER_CLASS(Embed);

}  // namespace crema
