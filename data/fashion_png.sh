#!/usr/bin/env bash
# Builds a small folder of real PNG images from Fashion-MNIST (Debian package
# dataset-fashion-mnist), the image lists for convert_imageset, and the grey LMDBs that
# models/lenet/lenet_png_train_test.prototxt reads:
#   data/fashion_png/train/<class>/<index>.png   the first 6000 training images
#   data/fashion_png/test/<class>/<index>.png    the first 1000 test images
#   data/fashion_png/train.txt, test.txt         lines "train/3/00012.png 3"
#   data/fashion_png/fashion_png_train_lmdb, fashion_png_test_lmdb
#                                                (crema convert_imageset --gray)
# Usage: data/fashion_png.sh [CREMA_BINARY]   (default: build/crema)
# Environment: TRAIN_LIMIT / TEST_LIMIT change the image counts (for a fresh folder).
# Safe to run again: a finished part (list file, LMDB) is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
crema="${1:-$repo/build/crema}"
out="$here/fashion_png"
train_limit="${TRAIN_LIMIT:-6000}"
test_limit="${TEST_LIMIT:-1000}"

if [ ! -x "$crema" ]; then
  echo "error: crema binary '$crema' not found or not executable; build it first" >&2
  echo "(cmake -S . -B build && cmake --build build) or pass its path as the first argument" >&2
  exit 1
fi

# Where the package puts the IDX files; ask dpkg, fall back to the usual place.
idx_dir=""
if command -v dpkg >/dev/null 2>&1 && dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  file="$(dpkg -L dataset-fashion-mnist | grep -m1 '/train-images-idx3-ubyte' || true)"
  [ -n "$file" ] && idx_dir="$(dirname "$file")"
fi
if [ -z "$idx_dir" ] && [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  idx_dir=/usr/share/datasets/fashion-mnist
fi
if [ -z "$idx_dir" ]; then
  echo "error: the Fashion-MNIST IDX files were not found." >&2
  echo "Install them with:  sudo apt-get install dataset-fashion-mnist" >&2
  exit 1
fi

pick() {  # the IDX file, compressed or not
  if [ -e "$idx_dir/$1.gz" ]; then echo "$idx_dir/$1.gz"
  elif [ -e "$idx_dir/$1" ]; then echo "$idx_dir/$1"
  else echo "error: $idx_dir/$1[.gz] is missing (broken dataset-fashion-mnist install?)" >&2; exit 1
  fi
}

images() {  # images IMAGES LABELS PREFIX LIMIT
  if [ -e "$out/$3.txt" ]; then
    echo "$out/$3.txt exists, skipping the $3 images"
    return
  fi
  local img lab
  img="$(pick "$1")"
  lab="$(pick "$2")"
  mkdir -p "$out"
  rm -rf "${out:?}/$3"   # a folder left by an interrupted run
  echo "Writing $4 $3 images from $img to $out/$3"
  "$crema" mnist_to_images "$img" "$lab" "$out" "$3" --limit "$4"
}

lmdb() {  # lmdb PREFIX
  local db="$out/fashion_png_$1_lmdb"
  if [ -e "$db/data.mdb" ]; then
    echo "$db exists, skipping"
    return
  fi
  rm -rf "$db.partial"
  echo "Converting $out/$1.txt -> $db"
  "$crema" convert_imageset --gray "$out/" "$out/$1.txt" "$db.partial"
  mv "$db.partial" "$db"   # only a complete database gets the final name
}

images train-images-idx3-ubyte train-labels-idx1-ubyte train "$train_limit"
images t10k-images-idx3-ubyte t10k-labels-idx1-ubyte test "$test_limit"
lmdb train
lmdb test
echo "Fashion-MNIST PNGs, lists and LMDBs are in $out"
