#!/usr/bin/env bash
# GPU check: build crema with CUDA, run the GPU tests, time LeNet and VGG-CIFAR on GPU 0.
#
#   bash tools/gpu_check.sh
#
# 1. Configures and builds (Release, CUDA on, benchmarks off) into $BUILD_DIR (default
#    build-gpu/) for $CUDA_ARCH (default 90, the H100/H200); fails if CMake did not
#    enable the GPU backend.
# 2. Runs crema_tests --gtest_filter='*Gpu*' (suites GpuLayers, GpuMath, GpuSolver). With
#    no visible device they all skip; the script then says so and stops after the tests.
# 3. `crema time --gpu 0` on bench/lenet_time.prototxt ($LENET_ITERS iterations, 200) and
#    bench/vgg_cifar.prototxt ($VGG_ITERS, 50).
# 4. Prints a short table last.
# Knobs (environment): BUILD_DIR, CUDA_ARCH, JOBS (default nproc), LENET_ITERS, VGG_ITERS,
# NO_BUILD=1 (use the existing build).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build-gpu}
arch=${CUDA_ARCH:-90}
jobs=${JOBS:-$(nproc)}
lenet_iters=${LENET_ITERS:-200}
vgg_iters=${VGG_ITERS:-50}
work=$(mktemp -d /tmp/crema-gpu-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
log() { echo "[gpu_check] $*" >&2; }

# ---- 1. build -------------------------------------------------------------------------
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  log "configuring $build (CUDA architectures $arch)"
  if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCREMA_USE_CUDA=ON \
      -DCREMA_CUDA_ARCHITECTURES="$arch" -DCREMA_BUILD_BENCH=OFF >"$work/configure.log" 2>&1; then
    tail -30 "$work/configure.log" >&2
    log "configure failed"
    exit 1
  fi
  grep -E 'crema GPU backend|cuDNN' "$work/configure.log" >&2
  if ! grep -q 'crema GPU backend: ON' "$work/configure.log"; then
    log "CMake did not enable CUDA (no nvcc?): nothing to check"
    exit 1
  fi
  log "building with -j$jobs"
  if ! cmake --build "$build" -j"$jobs" >"$work/build.log" 2>&1; then
    grep -E 'error|Error' "$work/build.log" | head -30 >&2
    log "build failed"
    exit 1
  fi
fi
crema="$build/crema"
tests="$build/tests/crema_tests"

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
fi

# ---- 2. tests -------------------------------------------------------------------------
log "running the GPU tests"
"$tests" --gtest_filter='*Gpu*' 2>&1 | tee "$work/tests.log"
tests_rc=${PIPESTATUS[0]}
passed=$(grep -oE '\[  PASSED  \] [0-9]+' "$work/tests.log" | grep -oE '[0-9]+$' || echo 0)
failed=$(grep -oE '\[  FAILED  \] [0-9]+ test' "$work/tests.log" | grep -oE '[0-9]+' || echo 0)
skipped=$(grep -oE '\[  SKIPPED \] [0-9]+ test' "$work/tests.log" | grep -oE '[0-9]+' || echo 0)

# ---- 3. timings -----------------------------------------------------------------------
time_net() {  # name prototxt iterations
  local out="$work/time_$1.log"
  if "$crema" time --model="$2" --gpu=0 --iterations="$3" >"$out" 2>&1; then
    local f b fb
    f=$(grep -oE 'Average Forward pass: [0-9.]+' "$out" | grep -oE '[0-9.]+$')
    b=$(grep -oE 'Average Backward pass: [0-9.]+' "$out" | grep -oE '[0-9.]+$')
    fb=$(grep -oE 'Average Forward-Backward: [0-9.]+' "$out" | grep -oE '[0-9.]+$')
    printf '| %-10s | %10s | %10s | %12s |\n' "$1" "${f:-?}" "${b:-?}" "${fb:-?}" >>"$work/table"
  else
    tail -5 "$out" >&2
    printf '| %-10s | %10s | %10s | %12s |\n' "$1" failed failed failed >>"$work/table"
  fi
}
: >"$work/table"
if grep -q 'no CUDA device: GPU test skipped' "$work/tests.log"; then
  log "no CUDA device visible: tests skipped, no timings"
else
  log "timing LeNet ($lenet_iters iterations) and VGG-CIFAR ($vgg_iters) on GPU 0"
  time_net lenet bench/lenet_time.prototxt "$lenet_iters"
  time_net vgg_cifar bench/vgg_cifar.prototxt "$vgg_iters"
fi

# ---- 4. summary -----------------------------------------------------------------------
echo
echo "GPU tests: $passed passed, $failed failed, $skipped skipped (exit status $tests_rc)"
if [[ -s "$work/table" ]]; then
  echo
  echo "| net        | forward ms | backward ms | fwd+bwd ms   |"
  echo "|------------|-----------:|------------:|-------------:|"
  cat "$work/table"
fi
[[ $tests_rc == 0 ]]
