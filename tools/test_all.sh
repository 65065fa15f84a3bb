#!/usr/bin/env bash
# Installs dependencies, builds crema and its tests, and runs the whole suite (2 at a
# time). GPU tests skip with a message where no device is present; where the CUDA headers
# are installed they then run on crema's CUDA emulator (tools/emu_check.sh, a second build
# in build-emu/), so every run checks the GPU code too. CREMA_SKIP_EMU=1 leaves that out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
(cd "${CREMA_BUILD_DIR:-build}" && ctest -j "${CREMA_TEST_JOBS:-2}" --output-on-failure --timeout 600)
if [[ "${CREMA_SKIP_EMU:-0}" == 1 ]]; then
  echo "test_all: CUDA emulator run skipped (CREMA_SKIP_EMU=1)"
elif [[ ! -f /usr/local/cuda/include/cuda_runtime.h ]]; then
  echo "test_all: no CUDA headers in /usr/local/cuda/include: GPU tests not run on the emulator"
else
  CREMA_BUILD_DIR=build-emu bash tools/emu_check.sh
fi
