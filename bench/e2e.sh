#!/usr/bin/env bash
# The paper's experiment for real on this machine, beside the simulator's
# prediction for the same cost graph: `ionn serve`, `ionn link` at 80 Mbps
# both ways, and `ionn client` on zoo AlexNet emulating the paper's ODROID
# XU4 client (each local segment padded to the published profile; layers
# still computed), for original and recursive-efficiency. The server's
# times are measured here first (`ionn profile --column server`), and both
# the client and the simulator plan with them, so both replay the same plan.
# The simulator uses link sharing "fair": the client's upload and its query
# tensors travel on two TCP connections that share the link.
# Every client run is a first meeting (`--ignore-held`): the server's layer
# store holds the model after the first run, and would spare the second
# its upload.
# Usage: bash bench/e2e.sh [MODEL=alexnet] [MBPS=80] [RTT_MS=0]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-alexnet}; mbps=${2:-80}; rtt=${3:-0}
ionn=${IONN:-build/bin/ionn}  # IONN=path: another build (a copy: a rebuild then does not change it mid-run)
paper=data/profiles/odroid-xu4_gtx1080ti
client_profile=$paper/$model.csv
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
. scripts/port_of.sh
echo "e2e: measuring the server's layer times here" >&2
"$ionn" profile --zoo "$model" --column server --threads 1 -o "$tmp/server.csv" 2>/dev/null
"$ionn" serve --listen 127.0.0.1:0 --regression $paper/server_regression.csv 2>"$tmp/serve.log" &
pids+=($!)
serve_port=$(port_of "$tmp/serve.log") || { echo "serve did not start: $(cat "$tmp/serve.log")" >&2; exit 1; }
"$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$serve_port" --uplink-mbps "$mbps" --downlink-mbps "$mbps" \
  --rtt-ms "$rtt" 2>"$tmp/link.log" &
pids+=($!)
link_port=$(port_of "$tmp/link.log") || { echo "link did not start: $(cat "$tmp/link.log")" >&2; exit 1; }
for alg in original recursive-efficiency; do
  echo "e2e: $model, $alg, live through ionn link at $mbps Mbps" >&2
  lines=$(wc -l <"$tmp/link.log")
  start=$(date +%s.%N)
  "$ionn" client --zoo "$model" --emulate-profile "$client_profile" --server-profile "$tmp/server.csv" \
    --server "127.0.0.1:$link_port" -a "$alg" --uplink-mbps "$mbps" --rtt-ms "$rtt" --format json --quiet --ignore-held \
    >"$tmp/live-$alg.json"
  echo "e2e: $alg took $(awk "BEGIN {print $(date +%s.%N) - $start}") s" >&2
  sleep 1  # the link logs each connection as it closes: the bytes it carried up
  tail -n +"$((lines + 1))" "$tmp/link.log" | grep -o '[0-9]* bytes up' | awk '{s += $1} END {print s + 0}' \
    >"$tmp/uplink-$alg"
  "$ionn" simulate --zoo "$model" --client-profile "$client_profile" --server-profile "$tmp/server.csv" \
    --uplink-mbps "$mbps" --rtt-ms "$rtt" -a "$alg" --link-sharing fair --format json >"$tmp/sim-$alg.json"
done
/usr/bin/python3 - "$tmp" "$model" "$mbps" <<'PY'
import json, sys
tmp, model, mbps = sys.argv[1:4]
print(f"{model}, {mbps} Mbps, ODROID XU4 client emulated, server times measured here")
print(f"{'algorithm':22} {'':5} {'queries during upload':>22} {'first query ends ms':>20} {'upload ms':>10} {'partitions':>10}")
for alg in ["original", "recursive-efficiency"]:
    live = json.load(open(f"{tmp}/live-{alg}.json")); sim = json.load(open(f"{tmp}/sim-{alg}.json"))
    for name, d in (("live", live), ("sim", sim)):
        print(f"{alg:22} {name:5} {d['queries_during_upload']:>22} {d['first_query_end_ms']:>20.1f} {d['upload_ms']:>10.1f} {len(d['partitions']):>10}")
    print(f"{'':22} {'live/sim':8} {live['queries_during_upload'] / max(sim['queries_during_upload'], 1):>19.2f}")
    uplink = int(open(f"{tmp}/uplink-{alg}").read())
    weights = sum(a['bytes'] for a in live['upload_attempts'] if a['acked'])
    print(f"{'':22} uplink {uplink / 1e6:.1f} MB = {uplink / (weights + live['query_bytes_up']):.3f} x (weights "
          f"{weights / 1e6:.1f} MB + query tensors {live['query_bytes_up'] / 1e6:.1f} MB); upload calls "
          f"{len(live['upload_attempts'])}, sessions {len(live['sessions'])}, upload complete {live['upload_complete']}")
PY
