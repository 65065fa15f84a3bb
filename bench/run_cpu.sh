#!/usr/bin/env bash
# CPU benchmark, crema side by side with PyTorch, in one run. See bench/README.md.
#
#   bash bench/run_cpu.sh
#
# 1. Builds crema (Release, CPU only, no tests) into $CREMA_BUILD_DIR (default build-bench/)
#    through tools/build.sh; incremental, so a second run only relinks what changed.
# 2. Makes a Python venv with PyTorch from PyPI in $CREMA_BENCH_VENV (default
#    ~/.cache/crema-bench/venv), once.
# 3. Measures OpenBLAS sgemm (1024^3) with bench/bench_sgemm (Google Benchmark).
# 4. For $ROUNDS rounds, alternating the order every round so machine noise hits both:
#    `crema time` and bench/pytorch_peer.py on LeNet, VGG-CIFAR and the GRU-IMDB model with
#    $THREADS threads; for the GRU also a full training step, `crema train` (Adam, gradient
#    clipping, the Data layer reading a synthetic IMDB LMDB made by `crema convert_imdb
#    --synthetic`) against PyTorch's step with the same update.
# 5. Prints a Markdown report and appends it to bench/RESULTS.md under a dated heading.
#
# Knobs (environment): THREADS (default: nproc), ROUNDS (3), LENET_ITERS (100),
# VGG_ITERS (20), GRU_ITERS (20), CREMA_BUILD_DIR, CREMA_JOBS (build parallelism), CREMA_BENCH_VENV,
# CREMA_BENCH_NO_BUILD=1 (use the existing build as is), RESULTS (output file).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start_s=$(date +%s)

THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
LENET_ITERS=${LENET_ITERS:-100}
VGG_ITERS=${VGG_ITERS:-20}
GRU_ITERS=${GRU_ITERS:-20}
build_dir=${CREMA_BUILD_DIR:-build-bench}
venv=${CREMA_BENCH_VENV:-$HOME/.cache/crema-bench/venv}
results=${RESULTS:-bench/RESULTS.md}
work=$(mktemp -d /tmp/crema-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

log() { echo "[run_cpu] $*" >&2; }

# ---- 1. crema -------------------------------------------------------------------------
if [[ "${CREMA_BENCH_NO_BUILD:-0}" != 1 ]]; then
  log "building crema into $build_dir (Release, CPU only)"
  CREMA_BUILD_DIR="$build_dir" CREMA_USE_CUDA="${CREMA_USE_CUDA:-OFF}" \
    bash tools/build.sh -DCREMA_BUILD_TESTS=OFF -DCREMA_BUILD_BENCH=ON >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    log "build failed"
    exit 1
  }
fi
crema_bin="$build_dir/crema"
[[ -x "$crema_bin" ]] || { log "no crema binary at $crema_bin"; exit 1; }

# ---- 2. PyTorch venv --------------------------------------------------------------------
if ! "$venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
  log "installing PyTorch and numpy from PyPI into $venv (the Linux x86_64 torch wheel pulls the"
  log "CUDA runtime wheels too: ~5 GB on disk, downloaded once; only the CPU is used)"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi
py="$venv/bin/python"

# ---- 3. sgemm ceiling ------------------------------------------------------------------
sgemm_json="$work/sgemm.json"
if [[ -x "$build_dir/bench/bench_sgemm" ]]; then
  log "sgemm 1024^3 (1 and $THREADS threads)"
  CREMA_BENCH_THREADS=$THREADS "$build_dir/bench/bench_sgemm" --benchmark_format=json \
    --benchmark_min_time=1 >"$sgemm_json" 2>"$work/sgemm.err" || echo '{}' >"$sgemm_json"
else
  log "bench_sgemm not built (Google Benchmark missing?): sgemm line skipped"
  echo '{}' >"$sgemm_json"
fi

# ---- 4. side-by-side timings -----------------------------------------------------------
run_torch() {  # net iterations warmup round
  "$py" bench/pytorch_peer.py --net "$1" --threads "$THREADS" --iterations "$2" --warmup "$3" \
    >"$work/torch_$1_$4.json"
}
# The GRU reads a synthetic IMDB set (same layout as `data/imdb.sh`'s) through its Data layer.
log "synthetic IMDB set for the GRU (crema convert_imdb --synthetic 2000)"
"$crema_bin" convert_imdb --out "$work/imdb" --synthetic 2000 >"$work/imdb.log" 2>&1 || {
  cat "$work/imdb.log" >&2
  exit 1
}
sed "s|data/imdb/|$work/imdb/|" models/gru_imdb/train_val.prototxt >"$work/gru_imdb.prototxt"
# Training: display every 5 iterations (the first interval, with the setup, is left out of
# the steady rate), no test pass, no snapshot.
sed -e "s|^net:.*|net: \"$work/gru_imdb.prototxt\"|" -e "s|^max_iter:.*|max_iter: $((GRU_ITERS + 5))|" \
  -e 's|^display:.*|display: 5|' -e 's|^test_interval:.*|test_interval: 1000000|' \
  -e 's|^snapshot:.*|snapshot: 0|' -e "s|^snapshot_prefix:.*|snapshot_prefix: \"$work/gru\"|" \
  models/gru_imdb/solver.prototxt >"$work/gru_solver.prototxt"
echo 'test_initialization: false' >>"$work/gru_solver.prototxt"
echo 'snapshot_after_train: false' >>"$work/gru_solver.prototxt"

declare -A model=([lenet]=bench/lenet_time.prototxt [vgg_cifar]=bench/vgg_cifar.prototxt
  [gru_imdb]="$work/gru_imdb.prototxt")
run_crema() {  # net iterations round
  "$crema_bin" time --model "${model[$1]}" --iterations "$2" --threads "$THREADS" \
    >"$work/crema_$1_$3.txt" 2>"$work/crema_$1_$3.log" || {
    tail -20 "$work/crema_$1_$3.log" >&2
    log "crema time failed on $1"
    exit 1
  }
  [[ $1 == gru_imdb ]] || return 0
  "$crema_bin" train --solver "$work/gru_solver.prototxt" --threads "$THREADS" \
    >"$work/crema_train_$1_$3.txt" 2>"$work/crema_train_$1_$3.log" || {
    tail -20 "$work/crema_train_$1_$3.log" >&2
    log "crema train failed on $1"
    exit 1
  }
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; ++r)); do
  for net in lenet vgg_cifar gru_imdb; do
    case $net in
      lenet) iters=$LENET_ITERS warm=10 ;;
      vgg_cifar) iters=$VGG_ITERS warm=3 ;;
      gru_imdb) iters=$GRU_ITERS warm=3 ;;
    esac
    log "round $r/$ROUNDS: $net ($iters iterations, $THREADS threads)"
    if ((r % 2)); then
      run_crema $net $iters $r
      run_torch $net $iters $warm $r
    else
      run_torch $net $iters $warm $r
      run_crema $net $iters $r
    fi
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 5. report -------------------------------------------------------------------------
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
blas_lib=$(ldd "$build_dir/libcrema.so" 2>/dev/null | awk '/libopenblas/ {print $3}')
blas_real=$(readlink -f "${blas_lib:-/nonexistent}" 2>/dev/null || true)
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
git_dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (+ local changes)" || true)
elapsed=$(($(date +%s) - start_s))

report="$work/report.md"
python3 - "$work" "$ROUNDS" "$sgemm_json" >"$report" <<'EOF'
import json, re, statistics, sys
work, rounds, sgemm_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def parse_crema(path):
    text = open(path).read()
    m = re.search(r"Average Forward-Backward: ([\d.]+) ms \(median ([\d.]+)\)", text)
    if not m:
        sys.exit(f"no 'Average Forward-Backward' line in {path}")
    fwd = re.search(r"Average Forward pass: ([\d.]+) ms \(median ([\d.]+)\)", text)
    bwd = re.search(r"Average Backward pass: ([\d.]+) ms \(median ([\d.]+)\)", text)
    convs = {}
    in_table = False
    for line in text.splitlines():
        if line.startswith("layer") and "GFLOP/s" in line:
            in_table = True
            continue
        if line.startswith("Average"):
            in_table = False
        if in_table:
            f = line.split()
            if len(f) == 7 and f[1] == "Convolution":
                convs[f[0]] = dict(fwd=float(f[2]), bwd=float(f[3]), mflop=float(f[4]),
                                   gflops=float(f[5]))
    return dict(median=float(m.group(2)), fwd=float(fwd.group(2)) if fwd else None,
                bwd=float(bwd.group(2)) if bwd else None, convs=convs)

def parse_crema_train(path):
    """Steady ms per training iteration from `crema train`'s display lines ("Iteration K (R
    iter/s, Ss/D iters)"), leaving out the intervals that hold the setup (K < 2 D)."""
    text = open(path).read()
    lines = [(int(k), float(sec), int(d)) for k, sec, d in re.findall(
        r"Iteration (\d+) \([\d.e+-]+ iter/s, ([\d.e+-]+)s/(\d+) iters\)", text)]
    steady = [x for x in lines if x[0] >= 2 * x[2]]
    if not steady:
        sys.exit(f"no steady display interval in {path}")
    return 1e3 * sum(x[1] for x in steady) / sum(x[2] for x in steady)

def med(xs):
    return statistics.median(xs)

def spread(xs):
    return f"{min(xs):.1f}–{max(xs):.1f}" if len(xs) > 1 else ""

sg = json.load(open(sgemm_path))
sgemm = {}
for b in sg.get("benchmarks", []):
    m = re.match(r"(BM_\w+)/n:(\d+)/threads:(\d+)", b["name"])
    if m and "GFLOP/s" in b:
        sgemm[(m.group(1), int(m.group(3)))] = b["GFLOP/s"]  # already a GFLOP/s rate
ctx = sg.get("context", {})

print("| net | crema fwd+bwd ms/iter (median) | PyTorch fwd+bwd ms/iter (median) "
      "| ratio crema/PyTorch (fwd+bwd) | PyTorch full step ms/iter (fwd+bwd+SGD, median) "
      "| crema conv layers: GFLOP/s (fwd+bwd) |")
print("|---|---:|---:|---:|---:|---|")
details = []
torch_meta = None
for net, label in (("lenet", "LeNet (MNIST 1x28x28)"), ("vgg_cifar", "VGG-CIFAR (3x32x32)"),
                   ("gru_imdb", "GRU-IMDB (150 word ids)")):
    cr = [parse_crema(f"{work}/crema_{net}_{r}.txt") for r in range(1, rounds + 1)]
    th = [json.load(open(f"{work}/torch_{net}_{r}.json")) for r in range(1, rounds + 1)]
    torch_meta = th[0]
    c = [x["median"] for x in cr]
    t_fb = [x["fwd_bwd_median_ms"] for x in th]
    t_st = [x["step_median_ms"] for x in th]
    convs = []
    for name in cr[0]["convs"]:
        g = med([x["convs"][name]["gflops"] for x in cr])
        convs.append(f"{name} {g:.1f}")
    print(f"| {label} | {med(c):.2f} | {med(t_fb):.2f} | {med(c) / med(t_fb):.2f} "
          f"| {med(t_st):.2f} | {', '.join(convs)} |")
    details.append(f"- {label}: per-round medians (ms): crema "
                   f"{', '.join(f'{v:.2f}' for v in c)}; PyTorch fwd+bwd "
                   f"{', '.join(f'{v:.2f}' for v in t_fb)}; PyTorch step "
                   f"{', '.join(f'{v:.2f}' for v in t_st)}")
    fw = [x["fwd"] for x in cr if x["fwd"] is not None]
    bw = [x["bwd"] for x in cr if x["bwd"] is not None]
    if fw and bw:
        details[-1] += f"; crema forward {med(fw):.2f} + backward {med(bw):.2f}"
print()
# The GRU's full training step: crema train (Data layer, forward, backward, clipping, Adam)
# against PyTorch's step (forward, backward, clipping, Adam).
gru_train = [parse_crema_train(f"{work}/crema_train_gru_imdb_{r}.log") for r in range(1, rounds + 1)]
gru_step = [json.load(open(f"{work}/torch_gru_imdb_{r}.json"))["step_median_ms"]
            for r in range(1, rounds + 1)]
print("| full training step | crema train ms/iter (steady, median) | PyTorch step ms/iter (median) "
      "| ratio crema/PyTorch |")
print("|---|---:|---:|---:|")
print(f"| GRU-IMDB, batch 64, Adam + clipping | {med(gru_train):.2f} | {med(gru_step):.2f} "
      f"| {med(gru_train) / med(gru_step):.2f} |")
details.append("- GRU-IMDB full step: per-round (ms): crema train "
               f"{', '.join(f'{v:.2f}' for v in gru_train)}; PyTorch step "
               f"{', '.join(f'{v:.2f}' for v in gru_step)}")
print()
threads = torch_meta["threads"] if torch_meta else "?"
if sgemm:
    parts = []
    for (name, t), g in sorted(sgemm.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        who = "OpenBLAS cblas_sgemm" if name == "BM_openblas_sgemm" else "crema cpu_gemm"
        parts.append(f"{who} {t} thread{'s' if t > 1 else ''}: {g:.1f}")
    print("sgemm 1024x1024x1024, GFLOP/s: " + "; ".join(parts) + ".")
    print()
print("Per-round medians, to judge the noise:")
for d in details:
    print(d)
print()
if torch_meta:
    print(f"PyTorch {torch_meta['torch']} (BLAS {torch_meta['blas']}, oneDNN "
          f"{'on' if torch_meta['mkldnn'] else 'off'}), {torch_meta['threads']} threads, "
          f"interop 1.")
if ctx.get("openblas_config"):
    print(f"OpenBLAS config: {ctx['openblas_config'].strip()} (core {ctx.get('openblas_corename', '?')}).")
EOF

{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — $(hostname)"
  echo
  echo "Machine: nproc $(nproc), ${cpu_model}; OpenBLAS ${blas_real:-?}. Threads: $THREADS."
  echo "crema ${git_rev}${git_dirty}, build \`$build_dir\` (Release). Batch 64, random data,"
  echo "$ROUNDS alternating rounds; LeNet $LENET_ITERS, VGG-CIFAR $VGG_ITERS and GRU-IMDB $GRU_ITERS timed"
  echo "iterations per round; each figure is the median over rounds of the per-round median."
  echo "Load average before/after: $load_before / $load_after. Whole script: ${elapsed} s."
  # The load after the run includes the benchmark's own threads; only the load before it
  # says whether something else was competing for the cores.
  if awk -v a="${load_before%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > 0.5 * n) }'; then
    echo
    echo "**Warning: the machine was busy when the run started (1-minute load above half the cores): these figures"
    echo "are dominated by noise and support no performance claim.**"
  fi
  echo
  echo "crema's figure is \`crema time\` (forward + backward, no solver update); the ratio"
  echo "compares it with PyTorch's forward + backward. PyTorch's full step adds SGD"
  echo "(momentum 0.9, weight decay 5e-4) for LeNet and VGG-CIFAR, not compared. The GRU-IMDB"
  echo "model (Embed 30000x125, GRU 100, fc 2; 150 steps, batch 64) reads a synthetic IMDB set"
  echo "(\`crema convert_imdb --synthetic\`) through its Data layer; its full training step"
  echo "(gradient clipping to norm 5, Adam) is compared: \`crema train\`'s steady time per"
  echo "iteration against PyTorch's step on random word ids."
  echo
  cat "$report"
} >"$work/section.md"

if [[ ! -f "$results" ]]; then
  {
    echo "# crema CPU benchmark results"
    echo
    echo "Appended by bench/run_cpu.sh, one section per run (see bench/README.md)."
  } >"$results"
fi
cat "$work/section.md" >>"$results"
cat "$work/section.md"
log "appended to $results (${elapsed} s)"
