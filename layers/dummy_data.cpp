#include "layers/dummy_data.hpp"

#include "crema.pb.h"
#include "crema/layer_registry.hpp"

namespace crema {

void DummyDataLayer::LayerSetUp(const BlobVec& bottom, const BlobVec& top) {
  const pb::DummyDataParameter& param = layer_param_->dummy_data_param();
  const int num_top = static_cast<int>(top.size());
  const int num_fillers = param.data_filler_size();
  LAYER_REQUIRE(num_fillers == 0 || num_fillers == 1 || num_fillers == num_top,
                "dummy_data_param needs 0, 1 or one data_filler per top (" << num_top << "); got "
                                                                           << num_fillers);
  const bool legacy = param.num_size() > 0 || param.channels_size() > 0 ||
                      param.height_size() > 0 || param.width_size() > 0;
  auto once_or_per_top = [&](int n, const char* field) {
    LAYER_REQUIRE(n == 1 || n == num_top, "dummy_data_param must give '"
                                              << field << "' once or once per top (" << num_top
                                              << "); got it " << n << " times");
  };
  if (legacy) {
    LAYER_REQUIRE(param.shape_size() == 0,
                  "dummy_data_param gives both 'shape' and the legacy num/channels/height/width");
    once_or_per_top(param.num_size(), "num");
    once_or_per_top(param.channels_size(), "channels");
    once_or_per_top(param.height_size(), "height");
    once_or_per_top(param.width_size(), "width");
  } else {
    once_or_per_top(param.shape_size(), "shape");
  }

  fillers_.clear();
  refill_.clear();
  try {
    if (num_fillers <= 1) {
      pb::FillerParameter filler;  // default: constant 0
      filler.set_type("constant");
      filler.set_value(0.f);
      if (num_fillers == 1) filler.CopyFrom(param.data_filler(0));
      fillers_.push_back(CreateFiller(filler));
      refill_.push_back(filler.type() != "constant");
    } else {
      for (int i = 0; i < num_top; ++i) {
        fillers_.push_back(CreateFiller(param.data_filler(i)));
        refill_.push_back(param.data_filler(i).type() != "constant");
      }
    }
  } catch (const Error& e) {
    LAYER_THROW(e.what());
  }

  auto pick = [](int n, int i) { return n == 1 ? 0 : i; };
  for (int i = 0; i < num_top; ++i) {
    try {
      if (legacy) {
        top[i]->Reshape(static_cast<int>(param.num(pick(param.num_size(), i))),
                        static_cast<int>(param.channels(pick(param.channels_size(), i))),
                        static_cast<int>(param.height(pick(param.height_size(), i))),
                        static_cast<int>(param.width(pick(param.width_size(), i))));
      } else {
        top[i]->Reshape(param.shape(pick(param.shape_size(), i)));
      }
    } catch (const Error& e) {
      LAYER_THROW("top " << i << ": " << e.what());
    }
  }
  // Constant tops are filled once, now; the others at every forward.
  for (int i = 0; i < num_top; ++i) {
    const int f = fillers_.size() > 1 ? i : 0;
    if (!refill_[f] && top[i]->count() > 0) fillers_[f]->Fill(top[i]);
  }
}

void DummyDataLayer::Forward_cpu(const BlobVec& bottom, const BlobVec& top) {
  for (size_t i = 0; i < top.size(); ++i) {
    const size_t f = fillers_.size() > 1 ? i : 0;
    if (refill_[f] && top[i]->count() > 0) fillers_[f]->Fill(top[i]);
  }
}

REGISTER_LAYER_CLASS(DummyData);

}  // namespace crema
