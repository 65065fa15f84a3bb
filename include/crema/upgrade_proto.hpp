// Bringing nets and solvers written for older Caffe versions up to the current format.
//
// Nets pass through these steps, in this order, each applied only when needed:
//   1. V0 -> V1: layers nested as `layers { layer { type: "conv" ... } }` become V1 layers
//      with enum types; "padding" layers are folded into the pad of the conv/pool layer
//      that consumes them.
//   2. Data transformation: scale / mean_file / crop_size / mirror given inside
//      data_param, image_data_param or window_data_param move to transform_param.
//   3. V1 -> V2: `layers { type: CONVOLUTION ... }` become `layer { type: "Convolution" }`,
//      and blobs_lr / weight_decay / param / blob_share_mode become `param {}` entries.
//   4. Net inputs: `input:` with `input_dim:` or `input_shape {}` become an "Input" layer
//      placed first.
//   5. BatchNorm: a BatchNorm layer declaring three `param {}` gets lr_mult 0 and
//      decay_mult 0 in each (its blobs are statistics, never learned by the solver).
// Solvers: the enum `solver_type` becomes the string `type`.
//
// Impossible upgrades throw crema::Error naming the file (`source_name`) and the layer.
#pragma once

#include <string>

#include "crema/common.hpp"

namespace crema {
namespace pb {
class V1LayerParameter;
}  // namespace pb

// ---- Whole-message entry points ----

// True when any of the net upgrade steps above would change `net`.
bool NetNeedsUpgrade(const pb::NetParameter& net);
// Applies every needed net upgrade, logging a WARNING for each that was applied.
// Returns whether `net` changed.
bool UpgradeNetAsNeeded(const std::string& source_name, pb::NetParameter* net);

bool SolverNeedsTypeUpgrade(const pb::SolverParameter& solver);
// Applies the solver upgrade if needed (with a WARNING). Returns whether `solver`
// changed.
bool UpgradeSolverAsNeeded(const std::string& source_name, pb::SolverParameter* solver);

// ---- Individual steps (exposed for tests and the upgrade tools) ----

// Step 1. Needed when any V1 layer carries a nested V0 `layer`.
bool NetNeedsV0ToV1Upgrade(const pb::NetParameter& net);
// Removes V0 "padding" layers from `net->layers`, moving their pad into the consuming
// conv or pool layer and rewiring its bottom to the padding layer's input.
void UpgradeV0PaddingLayers(const std::string& source_name, pb::NetParameter* net);
// Converts one V0 layer (nested in `v0`) into an equivalent V1 layer in `v1`. Settings
// that do not apply to the layer's type are dropped with an ERROR log, as Caffe does;
// returns false when that happened.
bool UpgradeV0LayerParameter(const std::string& source_name, const pb::V1LayerParameter& v0,
                             pb::V1LayerParameter* v1);
// Maps a V0 type string ("conv", "innerproduct", ...) to a V1 LayerType value. Throws
// for strings no V0 net could contain.
int UpgradeV0LayerType(const std::string& source_name, const std::string& v0_type);
// The whole of step 1: padding layers, then every layer. Net-wide fields other than
// name, input, input_dim and force_backward are dropped, as Caffe does (V0 nets had no
// others). Returns false when some layer setting was dropped.
bool UpgradeV0Net(const std::string& source_name, pb::NetParameter* net);

// Step 2. Looks at V1 `layers` of types DATA, IMAGE_DATA and WINDOW_DATA (as Caffe
// does) and also at V2 `layer`s of types "Data", "ImageData" and "WindowData" (which
// Caffe silently ignores).
bool NetNeedsDataUpgrade(const pb::NetParameter& net);
// Moves the legacy fields into transform_param. A legacy field whose transform_param
// counterpart is already set to a different value is a contradiction: crema::Error.
void UpgradeNetDataTransformation(const std::string& source_name, pb::NetParameter* net);

// Step 3. Needed when `net.layers` is not empty.
bool NetNeedsV1ToV2Upgrade(const pb::NetParameter& net);
// Replaces `net->layers` by equivalent `net->layer` entries. A net having both is
// refused (crema::Error), as in Caffe. Returns false when a V1 layer still held a V0
// layer (which is dropped, with an ERROR log).
bool UpgradeV1Net(const std::string& source_name, pb::NetParameter* net);
// The V2 type string of a V1 LayerType value ("" for NONE). Every value of the V1 enum
// has a name; anything else throws crema::Error.
std::string UpgradeV1LayerType(int v1_type);

// Step 4. Needed when `net.input` is not empty.
bool NetNeedsInputUpgrade(const pb::NetParameter& net);
// Inputs with shapes (input_shape, or four input_dim values each) become one Input layer
// named "input", inserted first. Inputs without any shape (as in old .caffemodel files)
// are simply dropped. Mismatched counts throw crema::Error.
void UpgradeNetInput(const std::string& source_name, pb::NetParameter* net);

// Step 5. Needed when a "BatchNorm" layer has exactly three `param {}` entries not all
// already set to lr_mult 0 and decay_mult 0. (Caffe tests only the count, so it always
// reports such nets as needing an upgrade; the result of the upgrade is the same.)
bool NetNeedsBatchNormUpgrade(const pb::NetParameter& net);
// Sets lr_mult and decay_mult to 0 in those three entries, leaving their other fields.
void UpgradeNetBatchNorm(pb::NetParameter* net);

// Solver step: sets `type` from `solver_type` ("SGD", "Nesterov", "AdaGrad", "RMSProp",
// "AdaDelta", "Adam") and clears `solver_type`. Having both fields is an error.
void UpgradeSolverType(const std::string& source_name, pb::SolverParameter* solver);

}  // namespace crema
