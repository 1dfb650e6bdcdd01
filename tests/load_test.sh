#!/usr/bin/env bash
# The edge server under a memory cap: CLIENTS (default 32) `ionn client`
# processes upload and raise queries for SECONDS (default 12) against one
# `ionn serve --max-memory-bytes CAP` on loopback: four models in turn
# (GoogLeNet and MobileNet from the zoo, and both again with other weights,
# written by `ionn zoo --weights-seed 2`, so the layer store shares only some
# layers). The cap (default 1 GiB) holds fewer sessions than there are
# clients: those refused run their queries here and try again. Every client
# must exit 0 with every query checked against a whole-model run (--verify:
# 0 wrong), and the server's peak resident memory (VmHWM) must stay under
# the cap. Not run in sanitizer builds (their shadow memory is not the
# server's).
# Usage: load_test.sh path/to/ionn source-dir [CLIENTS] [SECONDS] [CAP_MIB]
set -u
ionn=$1
src=$2
clients=${3:-32}
seconds=${4:-12}
cap_mib=${5:-1024}
tmp=$(mktemp -d)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  tail -5 "$tmp/serve.log"
  exit 1
}
profiles=$src/data/profiles/odroid-xu4_gtx1080ti
# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"

cap=$((cap_mib << 20))
"$ionn" serve --listen 127.0.0.1:0 --regression "$profiles/server_regression.csv" --max-memory-bytes "$cap" \
  --max-sessions 64 --max-sessions-per-peer 64 --max-calls-per-peer 64 --workers 64 2>"$tmp/serve.log" &
serve_pid=$!
port=$(port_of "$tmp/serve.log") || fail "serve did not start"
for m in googlenet mobilenet; do "$ionn" zoo "$m" --weights-seed 2 -o "$tmp/$m.onnx" 2>/dev/null || fail "zoo $m"; done
models=(googlenet mobilenet googlenet.onnx mobilenet.onnx)
pids=()
for i in $(seq 0 $((clients - 1))); do
  m=${models[$((i % ${#models[@]}))]}
  if [[ "$m" == *.onnx ]]; then
    source_args=("$tmp/$m" --client-profile "$profiles/${m%.onnx}.csv")
  else
    source_args=(--zoo "$m" --paper-profiles)
  fi
  "$ionn" client "${source_args[@]}" --server "127.0.0.1:$port" --duration-s "$seconds" --verify \
    --format json --quiet >"$tmp/client-$i.json" 2>"$tmp/client-$i.err" &
  pids+=($!)
  sleep 0.1
done
failed=0 queries=0 offloaded=0 wrong=0 refused=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    failed=$((failed + 1))
    echo "client $i failed: $(tail -2 "$tmp/client-$i.err")"
    continue
  fi
  field() { sed -n "s/^ \"$1\": \([0-9]*\),\?$/\1/p" "$tmp/client-$i.json" | head -1; }
  queries=$((queries + $(field query_count))) offloaded=$((offloaded + $(field queries_offloaded)))
  wrong=$((wrong + $(field queries_wrong)))
  grep -q '"lost": ".*memory limit' "$tmp/client-$i.json" && refused=$((refused + 1))
done
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_pid=
summary=$(grep "served .* query steps" "$tmp/serve.log" | sed 's/.*serve: //')
echo "load: $clients clients x ${seconds} s: $queries queries ($offloaded offloaded), $wrong wrong, $failed clients failed;" \
  "$refused refused a session at first (memory full); server peak RSS $((hwm_kib >> 10)) MiB under a cap of $cap_mib MiB; $summary"
[ "$failed" -eq 0 ] || fail "$failed clients failed"
[ "$wrong" -eq 0 ] || fail "$wrong queries with a wrong output"
[ "$offloaded" -ge "$clients" ] || fail "only $offloaded queries offloaded"
[ "$hwm_kib" -lt $((cap_mib << 10)) ] || fail "peak RSS $((hwm_kib >> 10)) MiB passed the cap of $cap_mib MiB"
echo "load: all checks passed"
