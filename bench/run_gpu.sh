#!/usr/bin/env bash
# GPU benchmark, crema side by side with PyTorch on the same device, in one run. See
# bench/README.md ("GPU").
#
#   bash bench/run_gpu.sh                            # builds crema (CUDA) into build-gpu/ first
#   CREMA=.device/bin/crema bash bench/run_gpu.sh    # a given crema binary (no build)
#   bash bench/run_gpu.sh --dry-run                  # print the commands, run nothing
#
# The three tasks of the classic framework comparison, (1) and (2) for each precision mode in
# $MODES, (3) for each in $GRU_MODES:
#  (1) VGG-CIFAR training, 10 epochs of 50,000 images at batch 64 = 7813 iterations, synthetic
#      data: `crema train --gpu 0` on bench/gpu/vgg_cifar_synth_solver.prototxt for $ITERS
#      iterations (default 2000, extrapolated to 7813 at the steady rate; ITERS=7813 measures
#      the whole 10 epochs) against bench/pytorch_gpu_peer.py --task vgg_cifar;
#  (2) ResNet-50 feature extraction, 1000 images at batch 32: `crema time --phase TEST` on
#      models/resnet50_features/deploy.prototxt ($RESNET_ITERS batches, median forward x
#      1000/32) against bench/pytorch_gpu_peer.py --task resnet50_features;
#  (3) GRU-IMDB training, 3 epochs of 25,000 reviews at batch 64 = 1172 iterations: `crema
#      train --gpu 0` on models/gru_imdb (Data layer reading a synthetic IMDB LMDB that
#      `crema convert_imdb --synthetic 25000` writes first; Adam, gradients clipped to norm 5)
#      for $GRU_ITERS iterations (default: all 1172) against bench/pytorch_gpu_peer.py --task
#      gru_imdb (nn.GRU on cuDNN, the same update).
# Each mode runs crema then PyTorch on both tasks, the next mode PyTorch first, and so on.
# crema's precision is the net-level `precision { math: TF32|FP16|BF16 }`, inserted after the
# `name:` line of temporary copies of the prototxts (fp32: none, FP32 is the default). A run
# that fails (say, a precision crema does not support yet) shows "failed"; the script goes on.
# The Markdown table (task | mode | crema s | PyTorch s | ratio) is printed last.
#
# Knobs (environment): MODES ("fp32 tf32 fp16 bf16"), ITERS (2000), RESNET_ITERS (50, crema
# time iterations), TORCH_RESNET_ITERS (100), TORCH_VGG_WARMUP (50), TORCH_RESNET_WARMUP (10),
# GPU (0; empty: run everything on the CPU, for smoke tests), CREMA (a crema binary; implies
# NO_BUILD=1), NO_BUILD=1 (use $BUILD_DIR/crema as it is), BUILD_DIR (build-gpu), CUDA_ARCH
# (90), JOBS, PYTHON (python3: must import torch), REPORT (also write the report there),
# LOG (every run's raw output, appended to that one file as each run ends), RUN_TIMEOUT (300 s
# per run), TORCH_ARGS (extra pytorch_gpu_peer.py arguments, e.g. --channels-last), ALGOS
# (all: crema may use every cuDNN algorithm, FFT, Winograd and non-deterministic ones, as
# PyTorch's cudnn.benchmark does; default: crema's default choice, deterministic and, in fp32,
# no FFT/Winograd, so that its GPU results stay within 1e-4 of the CPU's), NO_GRAPH_MODES
# (fp32: crema's two tasks once more in these modes with CREMA_CUDA_GRAPHS=0, reported as
# the time with CUDA graphs over the time without; empty: no such runs), LEGACY_MODES
# (fp32 fp16: likewise with CREMA_CUDNN_API=legacy, cuDNN's deprecated cudnnFind* search in
# place of its graph API, reported as graph-API time over legacy time), COPY_MODES (fp16:
# ResNet-50 once more with CREMA_ACTIVATION_COPIES=0, every 16-bit convolution rounding its
# own input, reported as the time with copies over the time without), GRU_MODES (fp32:
# crema's GRU runs its products in fp32 whatever the net's precision), GRU_ITERS (1172),
# TORCH_GRU_WARMUP (20), GRU_STEP_MODES (fp32: the GRU once more with CREMA_GRU_KERNEL=step,
# a cuBLAS product and a kernel per time step in place of the one-launch sequence kernels,
# reported as sequence time over step time; only modes in GRU_MODES). NO_GRAPH_MODES runs
# the GRU too where GRU_MODES has the mode.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
start_s=$(date +%s)

dry_run=0
for arg in "$@"; do
  case $arg in
    --dry-run | -n) dry_run=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_gpu.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

MODES=${MODES:-fp32 tf32 fp16 bf16}
NO_GRAPH_MODES=${NO_GRAPH_MODES-fp32}
LEGACY_MODES=${LEGACY_MODES-fp32 fp16}
COPY_MODES=${COPY_MODES-fp16}
GRU_STEP_MODES=${GRU_STEP_MODES-fp32}
ITERS=${ITERS:-2000}
GRU_MODES=${GRU_MODES-fp32}
GRU_ITERS=${GRU_ITERS:-1172}
TORCH_GRU_WARMUP=${TORCH_GRU_WARMUP:-20}
RESNET_ITERS=${RESNET_ITERS:-50}
TORCH_RESNET_ITERS=${TORCH_RESNET_ITERS:-100}
TORCH_VGG_WARMUP=${TORCH_VGG_WARMUP:-50}
TORCH_RESNET_WARMUP=${TORCH_RESNET_WARMUP:-10}
GPU=${GPU-0}
PYTHON=${PYTHON:-python3}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
ALGOS=${ALGOS:-all}
TORCH_ARGS=${TORCH_ARGS:-}
build_dir=${BUILD_DIR:-build-gpu}
VGG_TARGET=7813        # 10 epochs of 50,000 images at batch 64
GRU_TARGET=1172        # 3 epochs of 25,000 reviews at batch 64
RESNET_IMAGES=1000
RESNET_BATCH=32        # models/resnet50_features/deploy.prototxt's batch
work=$(mktemp -d /tmp/crema-gpu-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
log() { echo "[run_gpu] $*" >&2; }

# ---- crema binary --------------------------------------------------------------------------
if [[ -n "${CREMA:-}" ]]; then
  crema=$CREMA
elif [[ "${NO_BUILD:-0}" == 1 || $dry_run == 1 ]]; then
  crema=$build_dir/crema
else
  log "building crema into $build_dir (Release, CUDA, sm_${CUDA_ARCH:-90}, no tests)"
  if ! CREMA_BUILD_DIR="$build_dir" CREMA_USE_CUDA=ON CREMA_JOBS="${JOBS:-$(nproc)}" \
      bash tools/build.sh -DCREMA_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" -DCREMA_BUILD_TESTS=OFF \
      -DCREMA_BUILD_BENCH=OFF >"$work/build.log" 2>&1; then
    tail -30 "$work/build.log" >&2
    log "build failed"
    exit 1
  fi
  crema=$build_dir/crema
fi
if [[ $dry_run == 0 && ! -x "$crema" ]]; then
  log "no crema binary at $crema"
  exit 1
fi

# ---- per-mode nets ------------------------------------------------------------------------
vgg_net=bench/gpu/vgg_cifar_synth_train.prototxt
vgg_solver=bench/gpu/vgg_cifar_synth_solver.prototxt
resnet_net=models/resnet50_features/deploy.prototxt
# Display every ITERS/20 iterations: crema logs the time of each interval, from which the
# steady-state rate (without the first iterations' setup) is taken.
display=$((ITERS >= 40 ? ITERS / 20 : 1))
gru_display=$((GRU_ITERS >= 40 ? GRU_ITERS / 20 : 1))
gru_net=models/gru_imdb/train_val.prototxt
gru_solver=models/gru_imdb/solver.prototxt

math_of() {
  case $1 in
    fp32) echo "" ;;  # FP32 is the default; no line, so builds without the field run it too
    tf32) echo TF32 ;;
    fp16) echo FP16 ;;
    bf16) echo BF16 ;;
    *) log "unknown mode $1 (fp32 tf32 fp16 bf16)"; exit 2 ;;
  esac
}
with_precision() {  # in out math: copy `in` with `precision { math: M }` after its name: line
  if [[ -z $3 ]]; then
    cp "$1" "$2"
  else
    awk -v line="precision { math: $3 }" \
      '{ print } !done && /^name:/ { print line; done = 1 } END { if (!done) exit 1 }' \
      "$1" >"$2" || { { echo "precision { math: $3 }"; cat "$1"; } >"$2"; }
  fi
}

limit=()  # each run is stopped after RUN_TIMEOUT seconds (it then shows "failed")
command -v timeout >/dev/null 2>&1 && limit=(timeout -k 10 "$RUN_TIMEOUT")
[[ $dry_run == 0 && -n "${LOG:-}" ]] && : >"$LOG"

case $ALGOS in
  all) export CREMA_CUDNN_FAST_ALGOS=1 CREMA_CUDNN_NONDETERMINISTIC=1 ;;
  default) ;;
  *) echo "run_gpu.sh: ALGOS must be all or default" >&2; exit 2 ;;
esac
gpu_flag=()
torch_device=cpu
if [[ -n $GPU ]]; then
  gpu_flag=(--gpu "$GPU")
  torch_device=cuda:$GPU
fi

run() {  # name command...: run, stdout to $work/name.out, stderr to $work/name.err
  local name=$1
  shift
  if [[ $dry_run == 1 ]]; then
    printf '%q ' "$@"
    echo
    return 0
  fi
  log "$name: $*"
  local t0 t1
  t0=$(date +%s.%N)
  "${limit[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err"
  local rc=$?
  t1=$(date +%s.%N)
  echo "$rc $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >"$work/$name.rc"
  if [[ $rc != 0 ]]; then
    log "$name failed (exit status $rc$([[ $rc == 124 || $rc == 137 ]] && echo ", over RUN_TIMEOUT=${RUN_TIMEOUT}s")):"
    tail -5 "$work/$name.err" >&2
  fi
  if [[ -n "${LOG:-}" ]]; then  # appended run by run, so a run cut short keeps what came before
    {
      echo "==== $name (exit status $rc, $(cut -d' ' -f2 "$work/$name.rc") s): $*"
      echo "---- stdout"
      cat "$work/$name.out"
      echo "---- stderr"
      cat "$work/$name.err"
    } >>"$LOG"
  fi
  return 0
}

crema_vgg() {  # mode [tag env...]: a tag names a second run with extra environment
  local m=$1 tag=${2:-}
  local extra=("${@:3}")
  local math
  math=$(math_of "$m") || exit 2
  with_precision "$vgg_net" "$work/vgg_$m.prototxt" "$math"
  sed -e "s|^net:.*|net: \"$work/vgg_$m.prototxt\"|" -e "s|^max_iter:.*|max_iter: $ITERS|" \
    -e "s|^display:.*|display: $display|" "$vgg_solver" >"$work/solver_$m.prototxt"
  run "crema_vgg${tag}_$m" env "${extra[@]}" "$crema" train --solver "$work/solver_$m.prototxt" \
    "${gpu_flag[@]}"
}
crema_resnet() {  # mode [tag env...]
  local m=$1 tag=${2:-}
  local extra=("${@:3}")
  local math
  math=$(math_of "$m") || exit 2
  with_precision "$resnet_net" "$work/resnet_$m.prototxt" "$math"
  # GLOG_v=1: the log (stderr) names each convolution's cuDNN algorithms and each 1x1
  # convolution's timed route (cuBLAS GEMMs or cuDNN), which the report counts.
  run "crema_resnet${tag}_$m" env "${extra[@]}" GLOG_v=1 "$crema" time --model "$work/resnet_$m.prototxt" \
    "${gpu_flag[@]}" --phase TEST --iterations "$RESNET_ITERS"
}
crema_gru() {  # mode [tag env...]
  local m=$1 tag=${2:-}
  local extra=("${@:3}")
  local math
  math=$(math_of "$m") || exit 2
  sed "s|data/imdb/|$work/imdb/|" "$gru_net" >"$work/gru_src_$m.prototxt"
  with_precision "$work/gru_src_$m.prototxt" "$work/gru_$m.prototxt" "$math"
  sed -e "s|^net:.*|net: \"$work/gru_$m.prototxt\"|" -e "s|^max_iter:.*|max_iter: $GRU_ITERS|" \
    -e "s|^display:.*|display: $gru_display|" -e 's|^test_interval:.*|test_interval: 1000000|' \
    -e 's|^snapshot:.*|snapshot: 0|' -e "s|^snapshot_prefix:.*|snapshot_prefix: \"$work/gru\"|" \
    "$gru_solver" >"$work/gru_solver_$m.prototxt"
  printf 'test_initialization: false\nsnapshot_after_train: false\n' >>"$work/gru_solver_$m.prototxt"
  run "crema_gru${tag}_$m" env "${extra[@]}" "$crema" train --solver "$work/gru_solver_$m.prototxt" \
    "${gpu_flag[@]}"
}
torch_gru() {  # mode
  # shellcheck disable=SC2086
  run "torch_gru_$1" "$PYTHON" bench/pytorch_gpu_peer.py --task gru_imdb --mode "$1" \
    --device "$torch_device" --iters "$GRU_ITERS" --warmup "$TORCH_GRU_WARMUP"
}
torch_vgg() {  # mode
  # shellcheck disable=SC2086
  run "torch_vgg_$1" "$PYTHON" bench/pytorch_gpu_peer.py --task vgg_cifar --mode "$1" \
    --device "$torch_device" --iters "$ITERS" --warmup "$TORCH_VGG_WARMUP" $TORCH_ARGS
}
torch_resnet() {  # mode
  # shellcheck disable=SC2086
  run "torch_resnet_$1" "$PYTHON" bench/pytorch_gpu_peer.py --task resnet50_features \
    --mode "$1" --device "$torch_device" --iters "$TORCH_RESNET_ITERS" \
    --warmup "$TORCH_RESNET_WARMUP" --no-layer-sync $TORCH_ARGS
}

device_name=cpu
if [[ -n $GPU ]] && command -v nvidia-smi >/dev/null 2>&1; then
  device_name=$(nvidia-smi -i "$GPU" --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader 2>/dev/null | sed 's/, / \/ driver /; s/, / \/ /' || echo "?")
fi
[[ $dry_run == 1 ]] || log "device: $device_name; crema $crema; modes: $MODES; VGG $ITERS iterations"

if [[ -n $GRU_MODES ]]; then  # the GRU's data: a synthetic IMDB set of the real one's layout
  run imdb_data "$crema" convert_imdb --out "$work/imdb" --synthetic 25000
fi
i=0
for m in $MODES; do
  math_of "$m" >/dev/null || exit 2
  if ((i % 2 == 0)); then
    crema_vgg "$m"; torch_vgg "$m"; crema_resnet "$m"; torch_resnet "$m"
  else
    torch_vgg "$m"; crema_vgg "$m"; torch_resnet "$m"; crema_resnet "$m"
  fi
  i=$((i + 1))
done
for m in $GRU_MODES; do
  math_of "$m" >/dev/null || exit 2
  if ((i % 2 == 0)); then crema_gru "$m"; torch_gru "$m"; else torch_gru "$m"; crema_gru "$m"; fi
  i=$((i + 1))
done
for m in $NO_GRAPH_MODES; do  # crema again without CUDA graphs: what they bring
  math_of "$m" >/dev/null || exit 2
  crema_vgg "$m" _nograph CREMA_CUDA_GRAPHS=0
  crema_resnet "$m" _nograph CREMA_CUDA_GRAPHS=0
  [[ " $GRU_MODES " == *" $m "* ]] && crema_gru "$m" _nograph CREMA_CUDA_GRAPHS=0
done
for m in $LEGACY_MODES; do  # crema again on cuDNN's legacy API: what the graph API brings
  math_of "$m" >/dev/null || exit 2
  crema_vgg "$m" _legacy CREMA_CUDNN_API=legacy
  crema_resnet "$m" _legacy CREMA_CUDNN_API=legacy
done
for m in $COPY_MODES; do  # ResNet-50 again without 16-bit activation copies: what they bring
  math_of "$m" >/dev/null || exit 2
  crema_resnet "$m" _nocopies CREMA_ACTIVATION_COPIES=0
done
for m in $GRU_STEP_MODES; do  # the GRU again with per-step kernels: what one launch brings
  [[ " $GRU_MODES " == *" $m "* ]] && crema_gru "$m" _steps CREMA_GRU_KERNEL=step
done
if [[ $dry_run == 1 ]]; then
  trap - EXIT
  echo "# dry run: nothing ran; the generated nets and solvers are kept in $work"
  exit 0
fi

# ---- report -------------------------------------------------------------------------------
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
git_dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (+ local changes)" || true)
elapsed=$(($(date +%s) - start_s))
export GRU_MODES GRU_ITERS GRU_TARGET GRU_STEP_MODES MODES NO_GRAPH_MODES LEGACY_MODES COPY_MODES ITERS VGG_TARGET RESNET_IMAGES RESNET_BATCH RESNET_ITERS display ALGOS
python3 - "$work" >"$work/report.md" <<'EOF'
import json, os, re, sys
work = sys.argv[1]
env = os.environ
modes = env["MODES"].split()
iters, target = int(env["ITERS"]), int(env["VGG_TARGET"])
images, batch = int(env["RESNET_IMAGES"]), int(env["RESNET_BATCH"])


def read(name, ext):
    try:
        return open(os.path.join(work, f"{name}.{ext}")).read()
    except OSError:
        return ""


def status(name):
    rc = read(name, "rc").split()
    return (int(rc[0]), float(rc[1])) if rc else (None, None)


def crema_vgg(m, tag=""):
    """Seconds for the 10 epochs (measured, or extrapolated at the steady rate), details."""
    return crema_train(f"crema_vgg{tag}_{m}", target)


def crema_gru(m, tag=""):
    """Seconds for the 3 epochs (measured, or extrapolated at the steady rate), details."""
    return crema_train(f"crema_gru{tag}_{m}", int(env["GRU_TARGET"]))


def crema_train(name, target):
    rc, wall = status(name)
    out, err = read(name, "out"), read(name, "err")
    t = re.search(r"Trained (\d+) iterations in ([\d.]+) s(?: \(([\d.]+) ms/iter\))?", out)
    if rc != 0 or not t:
        return None, f"failed (exit status {rc})"
    n = int(t.group(1))
    measured = float(t.group(3)) * n / 1e3 if t.group(3) else float(t.group(2))
    # "Iteration K (R iter/s, Ls/D iters)": the interval ending at K. The first one or two
    # include the first iterations' setup (cuDNN algorithm choice, allocations): skip them.
    lines = [(int(k), float(l), int(d)) for k, l, d in re.findall(
        r"Iteration (\d+) \([\d.e+-]+ iter/s, ([\d.e+-]+)s/(\d+) iters\)", err)]
    steady_lines = [x for x in lines if x[0] >= 2 * x[2]]
    if steady_lines:
        steady = sum(x[1] for x in steady_lines) / sum(x[2] for x in steady_lines)
    else:
        steady = measured / n
    total = measured + (target - n) * steady if n < target else measured
    return total, (f"{n} iterations in {measured:.2f} s, steady {steady * 1e3:.3f} ms/iter"
                   + (f" over {len(steady_lines)} display intervals" if steady_lines else "")
                   + graph_note(err))


def graph_note(text):
    """src/net_graph.cpp's summary line ("CUDA graphs: forward N of M layers in S segment(s),
    backward ...; C captured, L launches, F failed captures"), shortened; the last one wins."""
    g = re.findall(r"CUDA graphs: forward (\d+) of (\d+) layers in (\d+) segment\(s\), backward "
                   r"(\d+) layers in (\d+) segment\(s\); (\d+) captured, (\d+) launches, "
                   r"(\d+) failed captures", text)
    if not g:
        return ""
    fl, n, fs, bl, bs, cap, launches, failed = g[-1]
    return (f"; CUDA graphs: forward {fl}/{n} layers in {fs}, backward {bl} layers in {bs}, "
            f"{cap} captured, {launches} launches, {failed} failed")


def crema_resnet(m, tag=""):
    name = f"crema_resnet{tag}_{m}"
    rc, wall = status(name)
    out = read(name, "out")
    # The end-to-end figure (no event between layers) when this crema prints it.
    w = re.search(r"Whole net, forward without per-layer marks: ([\d.]+) ms \(median ([\d.]+)\)",
                  out)
    f = w or re.search(r"Average Forward pass: ([\d.]+) ms \(median ([\d.]+)\)", out)
    if rc != 0 or not f:
        return None, f"failed (exit status {rc})"
    med, mean = float(f.group(2)), float(f.group(1))
    # layers/convolution.cu logs "1x1 convolution <shape>: cuBLAS GEMMs a ms, cuDNN b ms: <route>".
    routes = re.findall(r"1x1 convolution .*: (GEMMs|cuDNN)$", read(name, "err"), re.M)
    route_note = (f"; 1x1 convolutions: {routes.count('GEMMs')} shapes as cuBLAS GEMMs, "
                  f"{routes.count('cuDNN')} through cuDNN (timed)" if routes else "")
    # ... and "convolution <key>: cuDNN fused with bias and activation a ms, ... b ms: <choice>"
    # (FP32/TF32 convolutions whose epilogue has no residual sum; src/inference_fusion.hpp).
    fused = re.findall(r"cuDNN fused with bias and activation .*: (fused|apart)$",
                       read(name, "err"), re.M)
    if fused:
        route_note += (f"; epilogues: {fused.count('fused')} shapes inside cuDNN's fused call, "
                       f"{fused.count('apart')} as a pass of their own (timed)")
    # src/cudnn_adapter.cu logs "cuDNN convolution <shape>: fwd engine N (...), ..." and
    # "legacy API: ..." where a direction runs on cuDNN's legacy API.
    setups = re.findall(r"cuDNN convolution .*: (.*)$", read(name, "err"), re.M)
    if setups:
        legacy = sum("legacy API" in s for s in setups)
        engines = sorted({int(e) for s in setups for e in re.findall(r"fwd engine (\d+)", s)})
        route_note += (f"; cuDNN: {len(setups) - legacy} of {len(setups)} convolution setups "
                       f"on the graph API (forward engines {engines})")
    # tools/cmd_core.cpp: "16-bit activation copies: H convolution inputs taken from their
    # producer, M rounded by the convolution".
    copies = re.search(r"16-bit activation copies: (\d+) convolution inputs taken from their "
                       r"producer, (\d+) rounded", out)
    if copies:
        route_note += (f"; 16-bit inputs: {copies.group(1)} taken from their producer, "
                       f"{copies.group(2)} rounded by the convolution (host-code passes)")
    route_note += graph_note(out)
    return med * images / batch / 1e3, (f"forward median {med:.3f} ms/batch (mean {mean:.3f}), "
                                        f"{env['RESNET_ITERS']} batches"
                                        + ("" if w else ", events between layers") + route_note)


def torch_run(task, m):
    name = f"torch_{task}_{m}"
    rc, wall = status(name)
    try:
        j = json.loads(read(name, "out").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"failed (exit status {rc})", {}
    if rc != 0:
        return None, f"failed (exit status {rc})", {}
    if task in ("vgg", "gru"):
        d = (f"{j['iters']} iterations in {j['measured_s']:.2f} s ({j['warmup']} warm-up "
             f"{j['warmup_s']:.2f} s), steady {j['steady_ms_per_iter']:.3f} ms/iter")
    else:
        d = f"forward {j['ms_per_batch']:.3f} ms/batch over {j['iters']} batches"
    return j["total_s"], d, j


def fmt(x):
    return "failed" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


rows, details, meta = [], [], {}
extrap = iters < target
vgg_label = (f"VGG-CIFAR train, 10 epochs ({target} it, batch 64)"
             + (f", from {iters} it" if extrap else ""))
res_label = f"ResNet-50 features, {images} images (batch {batch})"
for m in modes:
    c, cd = crema_vgg(m)
    t, td, j = torch_run("vgg", m)
    meta = meta or j
    rows.append((vgg_label, m, fmt(c), fmt(t), ratio(c, t)))
    details.append(f"- VGG-CIFAR {m}: crema {cd}; PyTorch {td}")
    c, cd = crema_resnet(m)
    t, td, j = torch_run("resnet", m)
    meta = meta or j
    rows.append((res_label, m, fmt(c), fmt(t), ratio(c, t)))
    details.append(f"- ResNet-50 {m}: crema {cd}; PyTorch {td}")

gru_target, gru_iters = int(env["GRU_TARGET"]), int(env["GRU_ITERS"])
gru_label = (f"GRU-IMDB train, 3 epochs ({gru_target} it, batch 64)"
             + (f", from {gru_iters} it" if gru_iters < gru_target else ""))
for m in env.get("GRU_MODES", "").split():
    c, cd = crema_gru(m)
    t, td, j = torch_run("gru", m)
    meta = meta or j
    rows.append((gru_label, m, fmt(c), fmt(t), ratio(c, t)))
    details.append(f"- GRU-IMDB {m}: crema {cd}; PyTorch {td}")

for m in env.get("NO_GRAPH_MODES", "").split():
    notes = []
    tasks = [("VGG-CIFAR", crema_vgg), ("ResNet-50", crema_resnet)]
    if m in env.get("GRU_MODES", "").split():
        tasks.append(("GRU-IMDB", crema_gru))
    for label, run_task in tasks:
        with_graphs, _ = run_task(m)
        without, _ = run_task(m, "_nograph")
        notes.append(f"{label} {fmt(without)} s (with graphs / without: "
                     f"{ratio(with_graphs, without)})")
    details.append(f"- crema {m} without CUDA graphs (CREMA_CUDA_GRAPHS=0): " + "; ".join(notes))

for m in env.get("LEGACY_MODES", "").split():
    notes = []
    for label, run_task in (("VGG-CIFAR", crema_vgg), ("ResNet-50", crema_resnet)):
        graph_api, _ = run_task(m)
        legacy, _ = run_task(m, "_legacy")
        notes.append(f"{label} {fmt(legacy)} s (graph API / legacy: {ratio(graph_api, legacy)})")
    details.append(f"- crema {m} on cuDNN's legacy API (CREMA_CUDNN_API=legacy): "
                   + "; ".join(notes))

for m in env.get("COPY_MODES", "").split():
    with_copies, _ = crema_resnet(m)
    without, _ = crema_resnet(m, "_nocopies")
    details.append(f"- crema {m} ResNet-50 without 16-bit activation copies "
                   f"(CREMA_ACTIVATION_COPIES=0): {fmt(without)} s (with / without: "
                   f"{ratio(with_copies, without)})")

for m in env.get("GRU_STEP_MODES", "").split():
    if m not in env.get("GRU_MODES", "").split():
        continue
    sequence, _ = crema_gru(m)
    steps, _ = crema_gru(m, "_steps")
    details.append(f"- crema {m} GRU-IMDB with per-step kernels (CREMA_GRU_KERNEL=step): "
                   f"{fmt(steps)} s (sequence kernels / step kernels: {ratio(sequence, steps)})")

print("Details (crema's VGG time is `crema train`'s, its first iterations included; "
      "PyTorch's likewise includes its warm-up):")
print()
for d in details:
    print(d)
print()
print("ResNet-50: crema's figure is `crema time`'s whole-net forward (an event per batch, none "
      "between layers); PyTorch's loop is timed with CUDA events around it. cuDNN algorithms: "
      + ("every one cuDNN offers, for both (CREMA_CUDNN_FAST_ALGOS=1 "
         "CREMA_CUDNN_NONDETERMINISTIC=1 for crema, cudnn.benchmark for PyTorch)"
         if env["ALGOS"] == "all" else
         "crema's default (deterministic, no FFT/Winograd in fp32); PyTorch: cudnn.benchmark")
      + ".")
print()
if extrap:
    print(f"VGG-CIFAR: {iters} iterations measured, the 10 epochs ({target} iterations) "
          "extrapolated as measured time + remaining iterations x steady time per iteration "
          "(ITERS=7813 measures them all).")
print("GRU-IMDB: crema reads a synthetic IMDB set (`crema convert_imdb --synthetic 25000`) "
      "through its Data layer; PyTorch cycles 64 random batches kept on the device. Both clip "
      "the gradients to norm 5 and step Adam; PyTorch's GRU is cuDNN's.")
print("Classic benchmark on a P100, for reference: VGG-CIFAR 10 epochs 51–93 s; ResNet-50 "
      "features of 1000 images 1.6–7.9 s.")
print()
print("| task | mode | crema s | PyTorch s | ratio crema/PyTorch |")
print("|---|---|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
if meta:
    with open(os.path.join(work, "torch_meta"), "w") as f:
        f.write(f"PyTorch {meta.get('torch')} (CUDA {meta.get('cuda')}, cuDNN {meta.get('cudnn')}, "
                f"cudnn.benchmark on{', channels_last' if meta.get('channels_last') else ''}), "
                f"device {meta.get('device_name')}")
EOF

{
  echo
  echo "## GPU benchmark $(date -u '+%Y-%m-%d %H:%M UTC') — $(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
  echo
  echo "Device: ${device_name}. $(cat "$work/torch_meta" 2>/dev/null || echo "PyTorch: no run succeeded")."
  echo "crema ${git_rev}${git_dirty} (\`$crema\`). Modes: $MODES. Whole script: ${elapsed} s."
  echo
  cat "$work/report.md"
} >"$work/section.md"

[[ -n "${REPORT:-}" ]] && cp "$work/section.md" "$REPORT"
cat "$work/section.md"
