#!/usr/bin/env bash
# GPU check: crema's GPU tests, timings and the GPU benchmark against PyTorch, on GPU 0.
#
#   bash tools/gpu_check.sh            # the one command for a GPU machine (see below)
#   bash tools/gpu_check.sh --bundle   # use .device/bundle.tar.xz (tools/device_bundle.sh)
#   bash tools/gpu_check.sh --build    # build here, even when a bundle is present
#
# Where crema comes from:
#  - build (the default where crema's build dependencies are installed): configures and
#    builds (Release, CUDA on, benchmarks off) into $BUILD_DIR (default build-gpu/) for
#    $CUDA_ARCH (default 90, the H100/H200); fails if CMake did not enable the GPU backend;
#  - bundle (--bundle, or automatically when .device/bundle.tar.xz exists and protoc or the
#    glog headers are missing, as on a GPU machine with only PyTorch): unpacks the bundle into
#    .device/ and runs its bin/crema and bin/crema_tests, wrappers that source .device/env.sh
#    (LD_LIBRARY_PATH: the bundle's libraries, then the CUDA libraries of PyTorch's nvidia-*
#    wheels, /usr/local/cuda/lib64) for themselves; it makes the paths compiled into
#    crema_tests exist: the build machine's source folder becomes a link to this checkout (as
#    root, when nothing is there), its crema binary path a link to .device/bin/crema.
# Then:
#  0. `crema device_query --gpu 0 --cudnn_json`: cuDNN's description of the GPU
#     (cudnn_device.json, for tests/data/; see tests/test_cudnn_deviceless.cpp).
#  1. crema_tests --gtest_filter='*Gpu*:*Deviceless*' (every GPU test: GpuLayers, GpuMath,
#     GpuSolver, ..., and the deviceless cuDNN planning against this machine's cuDNN).
#     With no visible device they all skip; the script then says so and stops after them.
#     Then the convolution tests again under each forced route (CREMA_CONV_1X1_GEMM 0/1 x
#     CREMA_CONV_FUSED_CUDNN 0/1): left to timing, a device takes one route per shape, so the
#     others would go untested there (skipped with NO_ROUTE_SWEEP=1; filter ROUTE_FILTER).
#  2. `crema time --gpu 0` on bench/lenet_time.prototxt ($LENET_ITERS iterations, 200) and
#     bench/vgg_cifar.prototxt ($VGG_ITERS, 50).
#  3. The GPU benchmark, crema against PyTorch: bench/run_gpu.sh (skipped with NO_BENCH=1;
#     its knobs, MODES, ITERS, ..., pass through).
#  4. Prints the short tables last: tests, timings, then the benchmark's.
# With $OUT set, the full logs are written there too (at most 8 files): gpu_check.log (the
# summary), gpu_tests.log, timings.log, bench_report.md, bench_runs.log, build.log and
# cudnn_device.json.
# Knobs (environment): BUILD_DIR, CUDA_ARCH, JOBS (default nproc), LENET_ITERS, VGG_ITERS,
# NO_BUILD=1 (use the existing build), NO_BENCH=1, GTEST_FILTER ('*Gpu*:*Deviceless*'), TESTS_TIMEOUT (420 s),
# NO_ROUTE_SWEEP=1, ROUTE_FILTER.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
build=${BUILD_DIR:-build-gpu}
arch=${CUDA_ARCH:-90}
jobs=${JOBS:-$(nproc)}
lenet_iters=${LENET_ITERS:-200}
vgg_iters=${VGG_ITERS:-50}
filter=${GTEST_FILTER:-*Gpu*:*Deviceless*}
bundle=.device/bundle.tar.xz
work=$(mktemp -d /tmp/crema-gpu-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
log() { echo "[gpu_check] $*" >&2; }
out=${OUT:-}
[[ -n $out ]] && mkdir -p "$out"
logs=${out:-$work}  # the logs are written there as they grow: a run cut short keeps them
save() {  # file name: copy a log to $OUT when it is set
  [[ -n $out && -f $1 ]] && cp "$1" "$out/$2"
  return 0
}

mode=""
for arg in "$@"; do
  case $arg in
    --bundle) mode=bundle ;;
    --build) mode=build ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $arg (try --help)"; exit 2 ;;
  esac
done
if [[ -z $mode ]]; then
  if [[ -f $bundle ]] && { ! command -v protoc >/dev/null 2>&1 || [[ ! -f /usr/include/glog/logging.h ]]; }; then
    mode=bundle
  else
    mode=build
  fi
fi

# ---- crema: build it, or unpack the bundle -------------------------------------------------
if [[ $mode == bundle ]]; then
  [[ -f $bundle ]] || { log "no $bundle: run tools/device_bundle.sh on the build machine"; exit 1; }
  if [[ ! -x .device/bin/crema || $bundle -nt .device/bin/crema ]]; then
    log "unpacking $bundle into .device/"
    rm -rf .device/bin .device/libexec .device/lib
    if command -v xz >/dev/null 2>&1; then
      tar -C .device -xJf "$bundle" || { log "cannot unpack $bundle"; exit 1; }
    else  # no xz(1): Python's lzma
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$bundle" .device || { log "cannot unpack $bundle"; exit 1; }
    fi
    touch .device/bin/crema
  fi
  # bin/crema and bin/crema_tests are wrappers that source .device/env.sh for themselves: the
  # bundle's libraries stay out of this shell, so PyTorch (bench/run_gpu.sh) never sees them.
  crema=$root/.device/bin/crema
  tests=$root/.device/bin/crema_tests
  log "bundle: $(tr '\n' ' ' <.device/BUILD_INFO)"
  # crema_tests reads tests/data and models/ below the build machine's source folder and runs
  # the crema binary at the build machine's path: make both exist here.
  src=$(sed -n 's/^source_dir=//p' .device/BUILD_INFO)
  bin=$(sed -n 's/^crema_binary=//p' .device/BUILD_INFO)
  if [[ -n $src && ! $src -ef $root ]]; then
    if [[ ! -e $src && ! -L $src ]] && mkdir -p "$(dirname "$src")" && ln -s "$root" "$src"; then
      log "linked $src -> $root (the source folder compiled into crema_tests)"
    else
      log "warning: $src is not this checkout and cannot be linked: tests reading data there may fail"
    fi
  fi
  if [[ -n $bin && ! -x $bin ]]; then
    if mkdir -p "$(dirname "$bin")" && ln -sf "$crema" "$bin"; then
      log "linked $bin -> $crema (the crema binary compiled into crema_tests)"
    else
      log "warning: cannot link $bin: the CLI tests will fail"
    fi
  fi
  "$crema" --help >/dev/null 2>"$work/help.err" || {
    cat "$work/help.err" >&2
    log "the bundle's crema does not start (missing libraries?)"
    exit 1
  }
else
  if [[ "${NO_BUILD:-0}" != 1 ]]; then
    log "configuring $build (CUDA architectures $arch)"
    if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCREMA_USE_CUDA=ON \
        -DCREMA_CUDA_ARCHITECTURES="$arch" -DCREMA_BUILD_BENCH=OFF >"$work/configure.log" 2>&1; then
      tail -30 "$work/configure.log" >&2
      save "$work/configure.log" build.log
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
      save "$work/build.log" build.log
      log "build failed"
      exit 1
    fi
    save "$work/build.log" build.log
  fi
  crema="$build/crema"
  tests="$build/tests/crema_tests"
fi

gpu_name=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
  [[ -n $gpu_name ]] && log "GPU: $gpu_name"
fi

# ---- 0. cuDNN's description of the GPU ------------------------------------------------------
if "$crema" device_query --gpu 0 --cudnn_json "$logs/cudnn_device.json" >"$work/query.log" 2>&1; then
  log "cuDNN's description of GPU 0: $logs/cudnn_device.json"
else
  log "no cuDNN description of GPU 0: $(tail -1 "$work/query.log")"
fi

# ---- 1. tests -----------------------------------------------------------------------------
log "running the GPU tests ($filter)"
tests_log=$logs/gpu_tests.log
limit=()
command -v timeout >/dev/null 2>&1 && limit=(timeout -k 10 "${TESTS_TIMEOUT:-420}")
"${limit[@]}" "$tests" --gtest_filter="$filter" 2>&1 | tee "$tests_log"
tests_rc=${PIPESTATUS[0]}
passed=$(grep -oE '\[  PASSED  \] [0-9]+' "$tests_log" | grep -oE '[0-9]+$' || echo 0)
failed=$(grep -oE '\[  FAILED  \] [0-9]+ test' "$tests_log" | grep -oE '[0-9]+' || echo 0)
skipped=$(grep -oE '\[  SKIPPED \] [0-9]+ test' "$tests_log" | grep -oE '[0-9]+' || echo 0)
failed_names=$(grep -E '^\[  FAILED  \] [A-Za-z]' "$tests_log" | sed 's/^\[  FAILED  \] //; s/ (.*//' | sort -u | head -20 | tr '\n' ' ')

# Every convolution route on the device: the tests that run convolutions, once per forced
# combination of the two timed route choices (layers/convolution.cu).
route_filter=${ROUTE_FILTER:-GpuConvFused.*:GpuFusion.*:GpuLayers.Conv*:GpuLayers.Deconv*:GpuGraph.*}
route_lines=()
if [[ "${NO_ROUTE_SWEEP:-0}" != 1 ]] && ! grep -q 'no CUDA device: GPU test skipped' "$tests_log"; then
  for gemm in 0 1; do
    for fused in 0 1; do
      log "convolution tests with CREMA_CONV_1X1_GEMM=$gemm CREMA_CONV_FUSED_CUDNN=$fused"
      {
        echo
        echo "==== CREMA_CONV_1X1_GEMM=$gemm CREMA_CONV_FUSED_CUDNN=$fused ($route_filter)"
      } >>"$tests_log"
      CREMA_CONV_1X1_GEMM=$gemm CREMA_CONV_FUSED_CUDNN=$fused "${limit[@]}" "$tests" \
        --gtest_filter="$route_filter" >"$work/route.log" 2>&1
      route_rc=$?
      cat "$work/route.log" >>"$tests_log"
      ok=$(grep -oE '\[  PASSED  \] [0-9]+' "$work/route.log" | grep -oE '[0-9]+$' || echo 0)
      bad=$(grep -E '^\[  FAILED  \] [A-Za-z]' "$work/route.log" | sed 's/^\[  FAILED  \] //; s/ (.*//' |
        sort -u | tr '\n' ' ')
      route_lines+=("GEMM=$gemm FUSED=$fused: $ok passed${bad:+, failed: $bad} (exit status $route_rc)")
      [[ $route_rc != 0 ]] && tests_rc=$route_rc
    done
  done
fi

# ---- 2. timings ---------------------------------------------------------------------------
time_net() {  # name prototxt iterations
  local out_log="$work/time_$1.log"  # (the figures are both logged and tabulated: first one)
  if "$crema" time --model="$2" --gpu=0 --iterations="$3" >"$out_log" 2>&1; then
    local f b fb
    f=$(grep -oE 'Average Forward pass: [0-9.]+' "$out_log" | head -1 | grep -oE '[0-9.]+$')
    b=$(grep -oE 'Average Backward pass: [0-9.]+' "$out_log" | head -1 | grep -oE '[0-9.]+$')
    fb=$(grep -oE 'Average Forward-Backward: [0-9.]+' "$out_log" | head -1 | grep -oE '[0-9.]+$')
    printf '| %-10s | %10s | %10s | %12s |\n' "$1" "${f:-?}" "${b:-?}" "${fb:-?}" >>"$work/table"
  else
    tail -5 "$out_log" >&2
    printf '| %-10s | %10s | %10s | %12s |\n' "$1" failed failed failed >>"$work/table"
  fi
  { echo "==== crema time $2 ($3 iterations)"; cat "$out_log"; } >>"$logs/timings.log"
}
: >"$work/table"
: >"$logs/timings.log"
no_device=0
if grep -q 'no CUDA device: GPU test skipped' "$tests_log"; then
  no_device=1
  log "no CUDA device visible: tests skipped, no timings, no benchmark"
else
  log "timing LeNet ($lenet_iters iterations) and VGG-CIFAR ($vgg_iters) on GPU 0"
  time_net lenet bench/lenet_time.prototxt "$lenet_iters"
  time_net vgg_cifar bench/vgg_cifar.prototxt "$vgg_iters"
fi

# ---- 3. the GPU benchmark against PyTorch ---------------------------------------------------
bench_rc=""
if [[ $no_device == 0 && "${NO_BENCH:-0}" != 1 ]]; then
  log "GPU benchmark: bench/run_gpu.sh (MODES=${MODES:-fp32 tf32 fp16 bf16}, ITERS=${ITERS:-2000})"
  CREMA=$crema GPU=0 REPORT="$logs/bench_report.md" LOG="$logs/bench_runs.log" \
    bash bench/run_gpu.sh
  bench_rc=$?
fi

# ---- 4. summary ---------------------------------------------------------------------------
{
  echo
  echo "crema: $mode ($crema)${gpu_name:+; GPU: $gpu_name}"
  echo "GPU tests: $passed passed, $failed failed, $skipped skipped (exit status $tests_rc)"
  [[ -n $failed_names ]] && echo "Failed: $failed_names"
  if [[ ${#route_lines[@]} -gt 0 ]]; then
    echo "Convolution tests per forced route (CREMA_CONV_1X1_GEMM, CREMA_CONV_FUSED_CUDNN):"
    printf '  %s\n' "${route_lines[@]}"
  fi
  if [[ -s "$work/table" ]]; then
    echo
    echo "| net        | forward ms | backward ms | fwd+bwd ms   |"
    echo "|------------|-----------:|------------:|-------------:|"
    cat "$work/table"
  fi
  if [[ -n $bench_rc ]]; then
    echo
    if [[ -s "$logs/bench_report.md" ]]; then
      echo "GPU benchmark (bench/run_gpu.sh; details above and in bench_report.md):"
      echo
      sed -n '/^| task /,$p' "$logs/bench_report.md"
    else
      echo "GPU benchmark: bench/run_gpu.sh failed (exit status $bench_rc)"
    fi
  fi
} >"$work/summary"
cat "$work/summary"
save "$work/summary" gpu_check.log
[[ $tests_rc == 0 ]]
