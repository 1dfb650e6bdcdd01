#!/usr/bin/env bash
# The edge server under load: CLIENTS `ionn client` processes (eight models
# in turn: the five of the zoo, and three ONNX files that `ionn zoo --weights-seed 2`
# writes, the zoo's AlexNet, GoogLeNet and MobileNet architectures with
# other weights, so that the layer store shares none of their weights with
# the zoo's; starts staggered by 0.5 s) upload and raise queries for
# SECONDS against one `ionn serve` on loopback, each planning with the
# ODROID XU4 profile of its architecture (so most layers are offloaded).
# Prints one row per client (queries, query steps, step round trip p50/p99,
# failures) and the server's query steps per second, layers held from its
# store and peak memory (VmHWM).
# Usage: bash bench/load.sh [CLIENTS=16] [SECONDS=60] [THREADS_PER_CLIENT=1]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-16}; seconds=${2:-60}; threads=${3:-1}
ionn=build/bin/ionn
tmp=$(mktemp -d)
trap 'kill "$serve_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$ionn" serve --listen 127.0.0.1:0 --regression data/profiles/odroid-xu4_gtx1080ti/server_regression.csv \
  --max-sessions 64 --max-sessions-per-peer 64 --max-model-bytes $((8 << 30)) --workers 32 2>"$tmp/serve.log" &
serve_pid=$!
. scripts/port_of.sh
port=$(port_of "$tmp/serve.log") || { echo "serve did not start"; cat "$tmp/serve.log"; exit 1; }
models=(alexnet googlenet resnet50 inception_bn mobilenet alexnet.onnx googlenet.onnx mobilenet.onnx)
for f in alexnet googlenet mobilenet; do "$ionn" zoo "$f" --weights-seed 2 -o "$tmp/$f.onnx" 2>/dev/null; done
pids=()
for i in $(seq 0 $((clients - 1))); do
  m=${models[$((i % ${#models[@]}))]}
  if [[ "$m" == *.onnx ]]; then
    source_args=("$tmp/$m" --client-profile "data/profiles/odroid-xu4_gtx1080ti/${m%.onnx}.csv")
  else
    source_args=(--zoo "$m" --paper-profiles)
  fi
  "$ionn" client "${source_args[@]}" --server "127.0.0.1:$port" --duration-s "$seconds" --threads "$threads" \
    --format json --quiet >"$tmp/client-$i.json" 2>"$tmp/client-$i.err" &
  pids+=($!)
  sleep 0.5
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
hwm=$(awk '/VmHWM/ {print $2, $3}' "/proc/$serve_pid/status")
kill -TERM "$serve_pid"; wait "$serve_pid" || true
steps=$(sed -n 's/.*served \([0-9]*\) query steps.*/\1/p' "$tmp/serve.log")
refused=$(sed -n 's/.* \([0-9]*\) calls refused.*/\1/p' "$tmp/serve.log")
held=$(sed -n 's/.* bytes uploaded, \([0-9]*\) bytes held from the layer store (\([0-9]*\) layers).*/\2 layers, \1 bytes/p' "$tmp/serve.log")
printf "%-3s %-15s %8s %8s %8s %10s %10s %6s %6s %6s\n" "#" model queries "fell back" steps "p50 ms" "p99 ms" lost upload held
for i in $(seq 0 $((clients - 1))); do
  /usr/bin/python3 - "$tmp/client-$i.json" "$i" "${models[$((i % ${#models[@]}))]}" <<'PY' || echo "$i client failed: $(cat "$tmp/client-$i.err")"
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<3} {sys.argv[3]:<15} {j['query_count']:>8} {j['queries_fell_back']:>8} {j['query_steps']:>8} {j['step_round_trip_ms_p50']:>10.2f} "
      f"{j['step_round_trip_ms_p99']:>10.2f} {str(j['server_lost']):>6} {str(j['upload_complete']):>6} {j['held_layers']:>6}")
PY
done
echo "clients failed: $failed; server: $steps query steps in ${seconds} s ($(/usr/bin/python3 -c "print(round(${steps:-0}/$seconds, 1))")/s), $refused calls refused, held from the store: $held, peak memory $hwm"
