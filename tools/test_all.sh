#!/usr/bin/env bash
# Installs dependencies, builds crema and its tests, and runs the whole suite (2 at a
# time). GPU tests skip with a message where no device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
cd "${CREMA_BUILD_DIR:-build}"
ctest -j "${CREMA_TEST_JOBS:-2}" --output-on-failure --timeout 600
