#!/usr/bin/env bash
# The client on another CPU: the cross-built ionn (aarch64) under qemu-user
# runs `ionn client` against this machine's `ionn serve` on loopback through
# `ionn link` (20 Mbps) until its upload completes and 5 queries more, every
# query checked against a whole-model run on the ARM side (--verify). Also `ionn run` there
# against the host's outputs for the same seeded input.
#
# Usage: tests/cross_e2e_test.sh HOST_IONN TARGET_IONN SOURCE_DIR EMULATOR...
#   e.g. build/bin/ionn build-aarch64/bin/ionn . qemu-aarch64 -L /opt/ionn-sysroot/aarch64
set -uo pipefail
host=${1:?host ionn}
arm=${2:?target ionn}
src=${3:?source dir}
shift 3
emulator=("$@")
[ ${#emulator[@]} -gt 0 ] || { echo "usage: $0 HOST_IONN TARGET_IONN SOURCE_DIR EMULATOR..."; exit 2; }
# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
regression="$src/data/profiles/odroid-xu4_gtx1080ti/server_regression.csv"

# The same model, input and output on both CPUs (oneDNN's kernels differ:
# to rounding).
"$host" run --zoo mobilenet --repeats 1 --format json >"$tmp/host.json" 2>"$tmp/host.err" || fail "host run: $(cat "$tmp/host.err")"
"${emulator[@]}" "$arm" run --zoo mobilenet --repeats 1 --format json >"$tmp/arm.json" 2>"$tmp/arm.err" ||
  fail "arm run: $(cat "$tmp/arm.err")"
/usr/bin/python3 - "$tmp/host.json" "$tmp/arm.json" <<'PY' || fail "ionn run differs between the CPUs"
import json, sys
h, a = (json.load(open(f)) for f in sys.argv[1:])
assert [t["index"] for t in h["top"]] == [t["index"] for t in a["top"]], (h["top"], a["top"])
for x, y in zip(h["top"], a["top"]):
    assert abs(x["value"] - y["value"]) <= 1e-5, (x, y)
PY

"$host" serve --listen 127.0.0.1:0 --regression "$regression" 2>"$tmp/serve.log" &
pids+=($!)
port=$(port_of "$tmp/serve.log") || { echo "FAIL: serve did not start: $(cat "$tmp/serve.log")"; exit 1; }
"$host" link --listen 127.0.0.1:0 --connect "127.0.0.1:$port" --uplink-mbps 20 --downlink-mbps 20 2>"$tmp/link.log" &
pids+=($!)
link=$(port_of "$tmp/link.log") || { echo "FAIL: link did not start: $(cat "$tmp/link.log")"; exit 1; }
"${emulator[@]}" "$arm" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$link" --uplink-mbps 20 \
  --verify --quiet --format json >"$tmp/client.json" 2>"$tmp/client.err"
rc=$?
[ "$rc" -eq 0 ] || fail "arm client exit $rc: $(tail -3 "$tmp/client.err")"
/usr/bin/python3 - "$tmp/client.json" <<'PY' || fail "arm client report: $(head -c 600 "$tmp/client.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["query_count"] >= 5, r["query_count"]  # the paper's protocol: until the upload is done, then 5 more
assert r["queries_wrong"] == 0, r["queries_wrong"]
assert r["upload_complete"] is True
assert r["queries_offloaded"] >= 1, r["queries_offloaded"]
print(f"cross e2e: {r['query_count']} queries from the aarch64 client, {r['queries_offloaded']} offloaded, "
      f"0 wrong, upload complete in {r['upload_ms'] / 1000:.1f} s")
PY
if [ "$failures" -ne 0 ]; then
  echo "cross e2e: $failures failure(s)"
  exit 1
fi
