// The dataset tools around images, as library functions (the `crema` subcommands in
// tools/cmd_*.cpp are thin wrappers over these, and the tests call them directly).
//
//   ConvertImageset   an image list ("relative/path label" per line) -> LMDB of Datums, as
//                     Caffe's convert_imageset: raw uint8 C x H x W (BGR for colour, as
//                     OpenCV decodes) or the encoded file bytes; keys "%08d_<path>" where
//                     the number is the line's position in the (possibly shuffled) list.
//                     Unreadable images are logged and skipped (their key numbers are left
//                     unused, as in Caffe).
//   ComputeImageMean  mean over all Datums of an LMDB (encoded ones decoded as stored),
//                     written as a legacy 1 x C x H x W BlobProto, as Caffe's tool.
//   ExtractFeatures   runs a net N times and writes named blobs per item to an LMDB of float
//                     Datums, a .npy array, or a CSV file.
//   NetToDot/DrawNet  a Graphviz description of a net (layers, blobs with shapes).
//   MnistToImages     IDX images -> one PNG per image plus a list file for ConvertImageset.
//
// Every user mistake is a crema::Error naming the file or blob involved.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crema/common.hpp"

namespace crema {

class Net;

// ---- convert_imageset ----------------------------------------------------------------
struct ConvertImagesetOptions {
  bool gray = false;     // decode as 1-channel grey (else 3-channel BGR)
  bool shuffle = false;  // shuffle the list before writing
  uint64_t seed = 0;     // shuffle seed (same seed, same order)
  int resize_width = 0;  // both > 0: every image is resized (bilinear) to this size
  int resize_height = 0;
  bool check_size = false;    // every image must have the first image's C x H x W
  bool encoded = false;       // store the encoded image (PNG/JPEG bytes) instead of pixels
  std::string encode_type;    // "png", "jpg"...: re-encode to this; implies encoded
  int progress_every = 1000;  // a progress line every this many list entries (0: none)
};

struct ConvertImagesetResult {
  int64_t entries = 0;                     // lines in the list
  int64_t written = 0;                     // Datums in the database
  int64_t skipped = 0;                     // entries whose image was missing or undecodable
  std::vector<std::string> skipped_files;  // their paths as given in the list
  double seconds = 0;
};

// One entry of an image list: the path as written (may contain spaces) and the label.
struct ImageListEntry {
  std::string path;
  int label = 0;
};

// Parses a list file: one "path label" per line, the label being the last whitespace-
// separated token (so paths may contain spaces). Blank lines are ignored. A line without a
// label or with a label that is not an integer is a crema::Error naming the file and line.
std::vector<ImageListEntry> ReadImageList(const std::string& list_path);

// Converts the images of `list_path` under `root` (a directory; "" means the working
// directory) into a new LMDB at `db_path`. Throws crema::Error for a missing root or
// list, an empty list, inconsistent options, or (with check_size) the first image whose
// size differs from the first one written. Images that cannot be read are skipped and
// reported in the result (and by LOG(WARNING)).
ConvertImagesetResult ConvertImageset(const std::string& root, const std::string& list_path,
                                      const std::string& db_path,
                                      const ConvertImagesetOptions& options);

// ---- compute_image_mean --------------------------------------------------------------
struct ImageMean {
  int channels = 0, height = 0, width = 0;
  int64_t count = 0;                 // Datums averaged
  std::vector<float> mean;           // C x H x W
  std::vector<double> channel_mean;  // mean of each channel plane
};

// Averages every Datum of the LMDB at `db_path`; writes the BlobProto to `output_path`
// unless it is empty. Throws crema::Error for an empty database or a Datum whose size
// differs from the first one (naming its key).
ImageMean ComputeImageMean(const std::string& db_path, const std::string& output_path);

// ---- extract_features ----------------------------------------------------------------
enum class FeatureFormat { LMDB, NPY, CSV };

// "lmdb" / "npy" / "csv"; "" picks by the extension of `output` (.npy, .csv, else LMDB).
FeatureFormat ParseFeatureFormat(const std::string& format, const std::string& output);

// Runs `net` forward `iterations` times; after each pass, every item (outermost index) of
// blob blob_names[i] is appended to outputs[i]:
//   LMDB  a Datum with float_data = the item's values, channels = their count, height =
//         width = 1, under the key "%010d" of the item's running index (as Caffe's tool);
//   NPY   one float32 array of shape [items, per-item dims...] (NPY format 1.0);
//   CSV   one line per item, values separated by commas.
// Throws crema::Error for a blob the net does not have (listing those it has), a count
// mismatch between blob names and outputs, or a blob whose per-item shape changes.
// Returns the number of items written per blob.
int64_t ExtractFeatures(Net* net, const std::vector<std::string>& blob_names,
                        const std::vector<std::string>& outputs, int iterations,
                        FeatureFormat format);

// ---- draw_net -----------------------------------------------------------------------
struct DrawNetOptions {
  std::string rankdir = "LR";  // LR, TB, BT or RL
  std::string phase = "ALL";   // TRAIN, TEST, or ALL (every layer)
  bool shapes = true;          // build the net to label blobs with their shapes
};

// The Graphviz dot text of the net. Layers are boxes ("name\n(type)\n kernel/stride/pad,
// num_output"), blobs are octagons ("name\nshape"); an in-place layer (one bottom, the same
// one top) is drawn in green with edges to and from its blob, as Caffe's draw_net does.
// Blob shapes come from building the net (random weights) for the phase (both phases for
// ALL); when that fails, the graph is drawn without shapes and `warning` (if given)
// receives the reason.
std::string NetToDot(const pb::NetParameter& param, const DrawNetOptions& options,
                     std::string* warning = nullptr);

// Reads `prototxt`, writes `output`: .dot as is, .png/.svg/.pdf through Graphviz's `dot`.
// Returns the warning NetToDot produced ("" if none). Throws crema::Error for an unknown
// extension, a missing `dot` program, or a `dot` failure (with its message).
std::string DrawNet(const std::string& prototxt, const std::string& output,
                    const DrawNetOptions& options);

// ---- mnist_to_images ----------------------------------------------------------------
// Writes the first `limit` images (all when limit <= 0) of an IDX image/label pair as
// grey PNGs out_dir/prefix/<label>/<index %05d>.png, and the list out_dir/prefix.txt with
// lines "prefix/<label>/<index>.png <label>" (written last, under a temporary name first,
// so its presence means the folder is complete). Returns the number of images written.
int64_t MnistToImages(const std::string& images_path, const std::string& labels_path,
                      const std::string& out_dir, const std::string& prefix, int64_t limit);

}  // namespace crema
