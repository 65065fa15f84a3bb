#!/usr/bin/env bash
# The main job: install dependencies, build crema, turn Fashion-MNIST (Debian's
# dataset-fashion-mnist) into LMDBs, train LeNet on the CPU and print the test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
bash data/fashion_mnist.sh build/crema
./build/crema train --solver models/lenet/lenet_solver.prototxt "$@"
