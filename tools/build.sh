#!/usr/bin/env bash
# Configures and builds crema into build/ (Release). GPU code is built when the CUDA
# toolkit is found (/usr/local/cuda); set CREMA_USE_CUDA=OFF to force a CPU-only build.
# Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${CREMA_BUILD_DIR:-build}
jobs=${CREMA_JOBS:-$(nproc)}
# ccache: hash paths relative to the checkout, so a fresh clone reuses earlier objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
  -DCREMA_USE_CUDA="${CREMA_USE_CUDA:-ON}" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
