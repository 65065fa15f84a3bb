#!/usr/bin/env bash
# `crema time` on every model-zoo deploy net at its deploy batch: forward and backward ms
# (mean over --iterations after one warm-up), and the net's forward GFLOP per iteration.
# Usage: bench/zoo_time.sh [CREMA_BINARY] [ITERATIONS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
crema=${1:-build/crema}
iterations=${2:-3}
threads=${3:-$(nproc)}
# Deploy nets have no loss, so their backward computes parameter gradients only (as
# Caffe's `time` does); the GFLOP/s column is the forward pass's.
echo "| model | batch | forward ms | backward ms | forward GFLOP/iter | forward GFLOP/s |"
echo "|---|---:|---:|---:|---:|---:|"
for deploy in models/*/deploy.prototxt; do
  model=$(basename "$(dirname "$deploy")")
  out=$("$crema" time --model "$deploy" --iterations "$iterations" --threads "$threads" 2>/dev/null)
  batch=$(grep -o 'dim: [0-9]*' "$deploy" | head -n 1 | awk '{print $2}')
  fwd=$(echo "$out" | sed -n 's/^Average Forward pass: \([0-9.]*\) ms.*/\1/p')
  bwd=$(echo "$out" | sed -n 's/^Average Backward pass: \([0-9.]*\) ms.*/\1/p')
  gflop=$(echo "$out" | sed -n 's/^Total forward GFLOP per iteration: \([0-9.]*\).*/\1/p')
  rate=$(awk -v g="$gflop" -v f="$fwd" 'BEGIN { printf "%.1f", g / (f / 1000) }')
  echo "| $model | $batch | $fwd | $bwd | $gflop | $rate |"
done
