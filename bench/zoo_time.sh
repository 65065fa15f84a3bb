#!/usr/bin/env bash
# `crema time` on every model-zoo deploy net at its deploy batch: forward and backward ms
# (mean over --iterations after one warm-up), and the net's forward GFLOP per iteration.
# Usage: bench/zoo_time.sh [CREMA_BINARY] [ITERATIONS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
crema=${1:-build/crema}
iterations=${2:-3}
threads=${3:-$(nproc)}
echo "| model | batch | forward ms | backward ms | forward GFLOP/iter | fwd+bwd GFLOP/s |"
echo "|---|---:|---:|---:|---:|---:|"
for deploy in models/*/deploy.prototxt; do
  model=$(basename "$(dirname "$deploy")")
  out=$("$crema" time --model "$deploy" --iterations "$iterations" --threads "$threads" 2>/dev/null)
  batch=$(grep -m1 -o 'dim: [0-9]*' "$deploy" | awk '{print $2}')
  fwd=$(echo "$out" | sed -n 's/^Average Forward pass: \([0-9.]*\) ms.*/\1/p')
  bwd=$(echo "$out" | sed -n 's/^Average Backward pass: \([0-9.]*\) ms.*/\1/p')
  gflop=$(echo "$out" | sed -n 's/^Total forward GFLOP per iteration: \([0-9.]*\).*/\1/p')
  rate=$(awk -v g="$gflop" -v f="$fwd" -v b="$bwd" 'BEGIN { printf "%.1f", 3 * g / ((f + b) / 1000) }')
  echo "| $model | $batch | $fwd | $bwd | $gflop | $rate |"
done
