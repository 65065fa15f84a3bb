#!/usr/bin/env bash
# From a folder of images to a trained net, its features and pictures of it:
#   Fashion-MNIST PNG folder -> LMDB (convert_imageset) -> LeNet trained from it ->
#   extract_features of ip1 -> learning-curve PNG and net-diagram PNG, in examples_out/.
# Assumes crema is built (tools/build.sh); set CREMA=path/to/crema to use another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
crema=${CREMA:-build/crema}
out=examples_out
mkdir -p "$out"

# 1. Images: data/fashion_png/{train,test}/<class>/<n>.png plus list files, and their LMDBs
#    (crema convert_imageset --gray data/fashion_png/ data/fashion_png/train.txt ...).
bash data/fashion_png.sh "$crema"

# 2. Train LeNet on the image LMDBs; the log (stderr) is what parse_log/plot read.
"$crema" train --solver models/lenet/lenet_png_solver.prototxt 2> "$out/lenet_png.log"
tail -n 3 "$out/lenet_png.log"

# 3. ip1 features of 1000 test images (10 batches of 100) as a NumPy array.
"$crema" extract_features --model models/lenet/lenet_png_train_test.prototxt \
  --weights models/lenet/lenet_png_iter_2000.caffemodel --blobs ip1 --iterations 10 \
  --output "$out/ip1_features.npy"

# 4. Pictures: the learning curve and the net.
/usr/bin/python3 tools/parse_log.py "$out/lenet_png.log" "$out"
/usr/bin/python3 tools/plot_training_log.py "$out/lenet_png.log" "$out/lenet_png_curve.png"
"$crema" draw_net models/lenet/lenet_png_train_test.prototxt "$out/lenet_png_net.png"
ls -l "$out"
