#!/usr/bin/env bash
# Builds the Fashion-MNIST LMDBs used by models/ from the IDX files of the Debian package
# dataset-fashion-mnist:
#   data/fashion_mnist/fashion_train_lmdb  (60000 items of 1 x 28 x 28, labels 0-9)
#   data/fashion_mnist/fashion_test_lmdb   (10000 items)
# Usage: data/fashion_mnist.sh [CREMA_BINARY]   (default: build/crema)
# Safe to run again: an LMDB that already exists is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
crema="${1:-$repo/build/crema}"
out="$here/fashion_mnist"

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

# The files may be installed compressed or not.
pick() {
  if [ -e "$idx_dir/$1.gz" ]; then echo "$idx_dir/$1.gz"
  elif [ -e "$idx_dir/$1" ]; then echo "$idx_dir/$1"
  else echo "error: $idx_dir/$1[.gz] is missing (broken dataset-fashion-mnist install?)" >&2; exit 1
  fi
}

convert() {  # convert IMAGES LABELS DB
  local db="$out/$3"
  if [ -e "$db/data.mdb" ]; then
    echo "$db exists, skipping"
    return
  fi
  if [ ! -x "$crema" ]; then
    echo "error: crema binary '$crema' not found or not executable; build it first" >&2
    echo "(cmake -S . -B build && cmake --build build) or pass its path as the first argument" >&2
    exit 1
  fi
  local images labels
  images="$(pick "$1")"
  labels="$(pick "$2")"
  mkdir -p "$out"
  rm -rf "$db.partial"
  echo "Converting $images -> $db"
  "$crema" convert_mnist "$images" "$labels" "$db.partial"
  mv "$db.partial" "$db"   # only a complete database gets the final name
}

convert train-images-idx3-ubyte train-labels-idx1-ubyte fashion_train_lmdb
convert t10k-images-idx3-ubyte t10k-labels-idx1-ubyte fashion_test_lmdb
echo "Fashion-MNIST LMDBs are in $out"
