// `crema convert_imageset [flags] ROOT/ LIST DB`: a folder of images and a list file to an
// LMDB of Datums, as Caffe's convert_imageset (see crema/image_tools.hpp).
#include <gflags/gflags.h>

#include <iostream>

#include "crema/image_tools.hpp"
#include "tools/command.hpp"

DEFINE_bool(gray, false, "convert_imageset: decode images as 1-channel grey");
DEFINE_bool(shuffle, false, "convert_imageset: shuffle the list (reproducibly, see --seed)");
DEFINE_int64(seed, 0, "convert_imageset: seed of --shuffle (same seed, same order)");
DEFINE_int32(resize_width, 0, "convert_imageset: resize every image to this width");
DEFINE_int32(resize_height, 0, "convert_imageset: resize every image to this height");
DEFINE_bool(check_size, false, "convert_imageset: require every image to have one size");
DEFINE_bool(encoded, false, "convert_imageset: store encoded images (PNG/JPEG bytes)");
DEFINE_string(encode_type, "", "convert_imageset: re-encode images as png, jpg...");

namespace crema {
namespace tools {
namespace {

int RunConvertImageset(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.size() == 3, "convert_imageset needs 3 arguments: ROOT/ LIST DB (got "
                                      << args.size() << "); see `crema help convert_imageset`");
  CREMA_REQUIRE(FLAGS_seed >= 0, "--seed must not be negative, got " << FLAGS_seed);
  ConvertImagesetOptions options;
  options.gray = FLAGS_gray;
  options.shuffle = FLAGS_shuffle;
  options.seed = static_cast<uint64_t>(FLAGS_seed);
  options.resize_width = FLAGS_resize_width;
  options.resize_height = FLAGS_resize_height;
  options.check_size = FLAGS_check_size;
  options.encoded = FLAGS_encoded;
  options.encode_type = FLAGS_encode_type;
  const ConvertImagesetResult result = ConvertImageset(args[0], args[1], args[2], options);
  std::cout << "Wrote " << result.written << " of " << result.entries << " images to " << args[2]
            << "; skipped " << result.skipped;
  if (result.skipped > 0) {
    std::cout << " (";
    for (size_t i = 0; i < result.skipped_files.size() && i < 5; ++i)
      std::cout << (i ? ", " : "") << result.skipped_files[i];
    if (result.skipped_files.size() > 5) std::cout << ", ...";
    std::cout << ")";
  }
  std::cout << std::endl;
  if (result.written == 0) {
    std::cerr << "crema convert_imageset: error: no image could be read; the database " << args[2]
              << " is empty" << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace

REGISTER_COMMAND(
    "convert_imageset", "convert a folder of images and a list file to an LMDB of Datums",
    "crema convert_imageset [--gray] [--shuffle [--seed N]] [--resize_width W --resize_height H]\n"
    "                       [--check_size] [--encoded] [--encode_type png|jpg] ROOT/ LIST DB\n"
    "  ROOT   the folder the paths of LIST are relative to\n"
    "  LIST   one \"relative/path label\" per line (paths may contain spaces: the label is\n"
    "         the last word)\n"
    "  DB     the LMDB directory to create (must not exist yet)\n"
    "Each image becomes a Datum under the key \"%08d_<path>\" (its line number in the list,\n"
    "after shuffling): uint8 channels x height x width pixels in OpenCV's BGR order (one grey\n"
    "channel with --gray), or with --encoded the image file's bytes (re-encoded to\n"
    "--encode_type, or when resized). --resize_width/--resize_height resize bilinearly;\n"
    "--check_size stops at the first image whose size differs from the first one.\n"
    "Missing or undecodable images are reported and skipped. Progress is logged every 1000\n"
    "images. Exit status 0 when at least one image was written, else 1.",
    RunConvertImageset);

}  // namespace tools
}  // namespace crema
