// Net summary: per-layer output shapes, learnable parameter counts and forward FLOPs of a
// built Net, with totals; what `crema summarize` prints and what the model-zoo tests check.
//
// Counting rules:
//   learnable parameters  every parameter blob that some layer learns (the layer has
//                         param_propagate_down true for it and its lr_mult is not 0), each
//                         storage counted once: a blob shared by name is counted at its
//                         owner. BatchNorm's statistics (mean, variance, scale factor: lr 0)
//                         are not learnable; they go to `frozen_params`.
//   FLOPs                 Layer::ForwardFlops at the net's current shapes: 2 x the
//                         multiply-adds of convolutions, inner products, recurrent cells,
//                         Scale...; layers that do not report FLOPs (ReLU, pooling,
//                         BatchNorm, ...) count 0.
//   activation_bytes      the float storage of all top blobs, each storage counted once
//                         (in-place tops, Split copies and Reshape/Flatten views share their
//                         bottom's storage). Data only; training needs as much again for
//                         the gradients.
//   param_bytes           the float storage of all parameter blobs (learnable and frozen),
//                         shared ones counted once. Data only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crema/net.hpp"

namespace crema {

struct NetSummaryRow {
  std::string name;  // layer name
  std::string type;  // layer type
  std::vector<std::vector<int>> top_shapes;
  int64_t params = 0;         // learnable values owned by this layer
  int64_t frozen_params = 0;  // parameter values it owns that are not learned
  double flops = 0;           // forward FLOPs (2 x multiply-adds)
};

struct NetSummary {
  std::vector<NetSummaryRow> rows;  // one per layer of the net, in order (Splits included)
  int64_t total_params = 0;         // learnable
  int64_t total_frozen_params = 0;  // e.g. BatchNorm statistics
  double total_flops = 0;
  int64_t activation_bytes = 0;
  int64_t param_bytes = 0;
};

NetSummary Summarize(const Net& net);

// The table `crema summarize` prints: one line per layer (Split layers folded away unless
// `show_splits`), then the totals.
std::string FormatNetSummary(const Net& net, const NetSummary& summary, bool show_splits = false);

// 25557032 -> "25,557,032".
std::string GroupThousands(int64_t value);

}  // namespace crema
