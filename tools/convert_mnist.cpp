// `crema convert_mnist IMAGES LABELS DB`: IDX files (MNIST, Fashion-MNIST; .gz accepted) to
// an LMDB of Datums, as Caffe's convert_mnist_data.
#include <iostream>

#include "crema/mnist.hpp"
#include "tools/command.hpp"

namespace crema {
namespace tools {
namespace {

int RunConvertMnist(const std::vector<std::string>& args) {
  CREMA_REQUIRE(args.size() == 3, "convert_mnist needs 3 arguments: IMAGES LABELS DB (got "
                                      << args.size() << "); see `crema help convert_mnist`");
  const MnistConversion result = ConvertMnistToLmdb(args[0], args[1], args[2]);
  std::cout << "Wrote " << result.items << " items of 1 x " << result.rows << " x " << result.cols
            << " to " << args[2] << std::endl;
  return 0;
}

}  // namespace

REGISTER_COMMAND("convert_mnist", "convert MNIST-format IDX files to an LMDB of Datums",
                 "crema convert_mnist IMAGES LABELS DB\n"
                 "  IMAGES  IDX image file (magic 2051), e.g. train-images-idx3-ubyte[.gz]\n"
                 "  LABELS  IDX label file (magic 2049), e.g. train-labels-idx1-ubyte[.gz]\n"
                 "  DB      the LMDB directory to create (must not exist yet)\n"
                 "Each image becomes a Datum (channels 1, uint8 pixels, label) under the key\n"
                 "\"%08d\" of its index, as Caffe's convert_mnist_data writes them.",
                 RunConvertMnist);

}  // namespace tools
}  // namespace crema
