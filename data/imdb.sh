#!/usr/bin/env bash
# Builds the IMDB LMDBs that models/gru_imdb reads:
#   data/imdb/imdb_train_lmdb, data/imdb/imdb_test_lmdb  (25000 reviews each, 150 word ids)
#   data/imdb/imdb_vocab.txt                              (id word, the 30000 ids)
# from the unpacked aclImdb_v1 archive (Maas et al. 2011), which crema does not download:
# fetch aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ yourself and
# unpack it (its license is the data set's, not crema's).
#
# Usage: data/imdb.sh [ACLIMDB_DIR [CREMA_BINARY]]
#   ACLIMDB_DIR   default: data/imdb/aclImdb
#   CREMA_BINARY  default: build/crema
#   data/imdb.sh --synthetic [CREMA_BINARY]   25000 + 25000 synthetic reviews of the same
#                 layout instead (for timing and smoke tests; see `crema help convert_imdb`)
# Safe to run again: LMDBs that already exist are left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
out="$here/imdb"
source_dir="${1:-$out/aclImdb}"
crema="${2:-$repo/build/crema}"

if [ -e "$out/imdb_train_lmdb/data.mdb" ] || [ -e "$out/imdb_test_lmdb/data.mdb" ]; then
  echo "$out/imdb_train_lmdb or imdb_test_lmdb exists already; remove both to rebuild them"
  exit 0
fi
[ -x "$crema" ] || { echo "error: no crema binary at $crema (build it first)" >&2; exit 1; }
mkdir -p "$out"
if [ "$source_dir" = --synthetic ]; then
  exec "$crema" convert_imdb --out "$out" --synthetic 25000
fi
if [ ! -d "$source_dir/train/pos" ]; then
  echo "error: $source_dir/train/pos not found." >&2
  echo "Unpack aclImdb_v1.tar.gz (https://ai.stanford.edu/~amaas/data/sentiment/) into $out," >&2
  echo "or pass its folder: data/imdb.sh /path/to/aclImdb" >&2
  echo "(data/imdb.sh --synthetic writes a synthetic set of the same layout instead)" >&2
  exit 1
fi
exec "$crema" convert_imdb --out "$out" "$source_dir"
