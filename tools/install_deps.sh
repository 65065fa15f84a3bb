#!/usr/bin/env bash
# Installs crema's build and run dependencies from Debian's packages (idempotent: apt runs
# only when something is missing). The CUDA toolkit, when present at /usr/local/cuda, is
# picked up by the build; it is not installed here.
set -euo pipefail

packages=(
  cmake g++ make ccache pkg-config
  protobuf-compiler libprotobuf-dev
  libgoogle-glog-dev libgflags-dev
  libopenblas-openmp-dev
  liblmdb-dev lmdb-utils
  libopencv-dev
  libhdf5-dev
  graphviz python3-matplotlib python3-numpy
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: run as root (or install sudo)" >&2; exit 1; }
  sudo="sudo"
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
