// `crema compute_image_mean DB [MEAN.binaryproto]`: the mean image of an LMDB of Datums, as
// Caffe's compute_image_mean (see crema/image_tools.hpp).
#include <iomanip>
#include <iostream>

#include "crema/image_tools.hpp"
#include "tools/command.hpp"

namespace crema {
namespace tools {
namespace {

int RunComputeImageMean(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.size() == 1 || args.size() == 2,
                "compute_image_mean needs DB [OUTPUT.binaryproto] (got "
                    << args.size() << " arguments); see `crema help compute_image_mean`");
  const ImageMean mean = ComputeImageMean(args[0], args.size() == 2 ? args[1] : "");
  std::cout << "Mean of " << mean.count << " items of " << mean.channels << " x " << mean.height
            << " x " << mean.width;
  if (args.size() == 2) std::cout << " written to " << args[1];
  std::cout << "\n";
  for (int c = 0; c < mean.channels; ++c)
    std::cout << "mean_value channel [" << c << "]: " << std::setprecision(8)
              << mean.channel_mean[c] << "\n";
  return 0;
}

}  // namespace

REGISTER_COMMAND("compute_image_mean", "compute the mean image of an LMDB of Datums",
                 "crema compute_image_mean DB [MEAN.binaryproto]\n"
                 "  DB      an LMDB of Datums (raw, float or encoded; encoded images are\n"
                 "          decoded with their stored channels)\n"
                 "  MEAN    where to write the mean as a 1 x C x H x W BlobProto, usable as\n"
                 "          transform_param { mean_file: ... }\n"
                 "Every item must have the same size. Prints the mean of each channel (the\n"
                 "values for transform_param { mean_value: ... }).",
                 RunComputeImageMean);

}  // namespace tools
}  // namespace crema
