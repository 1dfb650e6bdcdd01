#!/usr/bin/env bash
# Faults with real processes on loopback: `ionn serve` is killed with
# SIGKILL while `ionn client` uploads AlexNet through `ionn link` (40 Mbps)
# and raises queries. The client must finish every query (here, once the
# server is gone), say that it lost the server, and its last output must
# equal a whole-model run of `ionn run` on the same input, bit for bit.
# Usage: fault_test.sh path/to/ionn source-dir
set -u
ionn=$1
src=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$tmp"/*.log "$tmp"/*.err; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
  exit 1
}
profiles=$src/data/profiles/odroid-xu4_gtx1080ti

# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"

"$ionn" serve --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --regression "$profiles/server_regression.csv" \
  2>"$tmp/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
serve_port=$(port_of "$tmp/serve.log") || fail "serve did not start"
"$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$serve_port" --uplink-mbps 40 --downlink-mbps 40 \
  2>"$tmp/link.log" &
pids+=($!)
link_port=$(port_of "$tmp/link.log") || fail "link did not start"

"$ionn" client --zoo alexnet --paper-profile --server "127.0.0.1:$link_port" -a original --duration-s 6 \
  --deadline-s 5 --format json --quiet --output "$tmp/client.npy" >"$tmp/client.json" 2>"$tmp/client.err" &
client_pid=$!
pids+=("$client_pid")

# Kill the server once it has run a query step (its metrics say so):
# mid-upload (the rest takes a minute at 40 Mbps), while queries run
# layers there.
metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' "$tmp/serve.log" | head -1)
[ -n "$metrics_port" ] || fail "serve did not say its metrics port"
steps=0
for _ in $(seq 600); do
  if exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"; then
    printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    steps=$(awk '$1 == "ionn_query_steps_total" {print int($2)}' <&3)
    exec 3<&-
  fi
  [ "${steps:-0}" -ge 1 ] && break
  sleep 0.05
done
[ "${steps:-0}" -ge 1 ] || fail "no query step ran on the server within 30 s"
kill -9 "$serve_pid"
wait "$client_pid"
rc=$?
pids=("${pids[@]/$client_pid}")  # reaped: its pid may be reused
[ "$rc" -eq 0 ] || fail "client exit $rc"

# The client's JSON result (one key per line, as `ionn client --format json` writes it).
field() { sed -n "s/^ *\"$1\": \(.*\),\?$/\1/p" "$tmp/client.json" | sed 's/,$//' | head -1; }
[ "$(field server_lost)" = true ] || fail "the client did not notice the server was gone"
[ "$(field upload_complete)" = false ] || fail "the upload completed although the server was killed"
queries=$(field queries) offloaded=$(field queries_offloaded) fell_back=$(field queries_fell_back)
[ "${queries:-0}" -ge 5 ] || fail "only $queries queries"
[ "${offloaded:-0}" -ge 1 ] || fail "no query ran layers on the server before it was killed"
[ "${fell_back:-9}" -le 1 ] || fail "$fell_back queries recomputed: more than the one in flight"
echo "fault: $queries queries, $offloaded offloaded, $fell_back recomputed after the kill, server error: $(field server_error)"

"$ionn" run --zoo alexnet --output "$tmp/local.npy" >/dev/null 2>"$tmp/run.err" || fail "ionn run"
cmp -s "$tmp/client.npy" "$tmp/local.npy" || fail "the last query's output differs from a whole-model run"
echo "fault: all checks passed"
