// Pieces of the least-squares problem that the solver tests (test_solver.cpp,
// test_solvers2.cpp) train: a deterministic, seekable data layer and the net
//     data (x [batch, K], t [batch, M]) -> InnerProduct 'ip' (M outputs) -> EuclideanLoss
// with the InnerProduct's weights set to known values.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "crema.pb.h"
#include "crema/layer.hpp"
#include "crema/net.hpp"

namespace crema {
namespace testing {

// Tops x [batch, K] and t [batch, M], shapes from dummy_data_param.shape(0) and shape(1).
// Batch b holds samples s = (b * batch + r) mod cycle, r = 0..batch-1, with x[r][k] =
// x_of(s, k) and t[r][m] = t_of(s, m). Seekable (SeekBatch), so a resumed run sees the same
// batches. A test registers its own subclass, which names the type and the sequence.
class CyclicDataLayer : public Layer {
 public:
  using Sequence = double (*)(int sample, int index);
  CyclicDataLayer(const pb::LayerParameter& param, const char* type, int cycle, Sequence x_of,
                  Sequence t_of)
      : Layer(param), type_(type), cycle_(cycle), x_of_(x_of), t_of_(t_of) {}
  const char* type() const override { return type_; }
  int ExactNumBottomBlobs() const override { return 0; }
  int ExactNumTopBlobs() const override { return 2; }
  void Reshape(const BlobVec& bottom, const BlobVec& top) override {
    const pb::DummyDataParameter& p = layer_param().dummy_data_param();
    LAYER_REQUIRE(p.shape_size() == 2, "needs two shapes");
    top[0]->Reshape(p.shape(0));
    top[1]->Reshape(p.shape(1));
  }
  void SeekBatch(int64_t index) override { next_ = index; }

 protected:
  void Forward_cpu(const BlobVec& bottom, const BlobVec& top) override {
    const int batch = top[0]->shape(0), k_dim = top[0]->count(1), m_dim = top[1]->count(1);
    float* x = top[0]->mutable_cpu_data();
    float* t = top[1]->mutable_cpu_data();
    for (int r = 0; r < batch; ++r) {
      const int sample = static_cast<int>((next_ * batch + r) % cycle_);
      for (int k = 0; k < k_dim; ++k) x[r * k_dim + k] = static_cast<float>(x_of_(sample, k));
      for (int m = 0; m < m_dim; ++m) t[r * m_dim + m] = static_cast<float>(t_of_(sample, m));
    }
    ++next_;
  }
  void Backward_cpu(const BlobVec& top, const std::vector<bool>& propagate_down,
                    const BlobVec& bottom) override {}

 private:
  const char* type_;
  int cycle_;
  Sequence x_of_, t_of_;
  int64_t next_ = 0;
};

// Multipliers of the InnerProduct's parameters (weights w, bias b).
struct LeastSquaresMults {
  double lr_w = 1, decay_w = 1, lr_b = 1, decay_b = 1;
};

// The net's prototxt: name `name`, data from a layer of type `data_type`, `batch` samples of
// `inputs` values, `outputs` outputs, with or without a bias. The fillers are constants;
// tests overwrite the weights with SetInnerProductWeights.
inline std::string LeastSquaresNetText(const std::string& name, const std::string& data_type,
                                       int batch, int inputs, int outputs, bool bias,
                                       const LeastSquaresMults& mults) {
  std::ostringstream net;
  net << "name: '" << name << "' "
      << "layer { name: 'data' type: '" << data_type << "' top: 'x' top: 't' dummy_data_param {"
      << " shape { dim: " << batch << " dim: " << inputs << " }"
      << " shape { dim: " << batch << " dim: " << outputs << " } } } "
      << "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y'"
      << " param { lr_mult: " << mults.lr_w << " decay_mult: " << mults.decay_w << " }";
  if (bias) net << " param { lr_mult: " << mults.lr_b << " decay_mult: " << mults.decay_b << " }";
  net << " inner_product_param { num_output: " << outputs
      << " bias_term: " << (bias ? "true" : "false")
      << " weight_filler { type: 'constant' value: 0.5 } bias_filler { type: 'constant' } } } "
      << "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'y' bottom: 't' top: 'loss' }";
  return net.str();
}

// Sets layer 'ip' of `net` to weights w0 (outputs x inputs) and, when b0 is given, bias b0.
inline void SetInnerProductWeights(Net* net, const double* w0, const double* b0) {
  Layer& ip = *net->layer_by_name("ip");
  Blob& w = *ip.blobs()[0];
  for (int i = 0; i < w.count(); ++i) w.mutable_cpu_data()[i] = static_cast<float>(w0[i]);
  if (b0 == nullptr) return;
  Blob& b = *ip.blobs()[1];
  for (int i = 0; i < b.count(); ++i) b.mutable_cpu_data()[i] = static_cast<float>(b0[i]);
}

}  // namespace testing
}  // namespace crema
