// `crema mnist_to_images IMAGES LABELS OUT_DIR PREFIX [--limit N]`: IDX files to a folder of
// PNGs plus an image list (see crema/image_tools.hpp).
#include <gflags/gflags.h>

#include <iostream>

#include "crema/image_tools.hpp"
#include "tools/command.hpp"

DEFINE_int64(limit, 0, "mnist_to_images: convert only the first N images (0: all)");

namespace crema {
namespace tools {
namespace {

int RunMnistToImages(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.size() == 4,
                "mnist_to_images needs 4 arguments: IMAGES LABELS OUT_DIR "
                "PREFIX (got "
                    << args.size() << "); see `crema help mnist_to_images`");
  CREMA_REQUIRE(FLAGS_limit >= 0, "--limit must not be negative, got " << FLAGS_limit);
  const int64_t n = MnistToImages(args[0], args[1], args[2], args[3], FLAGS_limit);
  std::cout << "Wrote " << n << " PNG images under " << args[2] << "/" << args[3]
            << " and the list " << args[2] << "/" << args[3] << ".txt" << std::endl;
  return 0;
}

}  // namespace

REGISTER_COMMAND(
    "mnist_to_images", "write MNIST-format IDX files as a folder of PNGs and an image list",
    "crema mnist_to_images IMAGES LABELS OUT_DIR PREFIX [--limit N]\n"
    "  IMAGES, LABELS  IDX files (.gz accepted), e.g. train-images-idx3-ubyte.gz\n"
    "  OUT_DIR/PREFIX  the images go to OUT_DIR/PREFIX/<label>/<index>.png (grey PNG)\n"
    "Also writes OUT_DIR/PREFIX.txt with lines \"PREFIX/<label>/<index>.png <label>\", the\n"
    "list format of convert_imageset (written last: its presence means the folder is\n"
    "complete). --limit N converts only the first N images.",
    RunMnistToImages);

}  // namespace tools
}  // namespace crema
