#!/usr/bin/env bash
# Faults with real processes on loopback, while `ionn client` uploads
# AlexNet through `ionn link` and raises queries back to back, each checked
# against a whole-model run here (--verify); once the server has run a
# query step:
#   kill    `ionn serve` gets SIGKILL; the client, whose one server stays
#           away, finishes every query here;
#   cut     `ionn link` resets every connection (SIGUSR1); the client opens
#           a new session with the same server, which holds what was
#           uploaded before the cut, and uploads only the rest;
#   cut-mid-partition
#           the same, once half the weights have arrived (inside fc6): the
#           new session resumes fc6 after the whole blocks the server kept;
#   restart `ionn serve --upload-dir` gets SIGKILL inside fc6 and starts
#           again on the same port and folder: the client's next session
#           resumes after what the killed server had received;
#   stall   `ionn link` stalls for 10 s (SIGUSR2: no byte moves, as when
#           every packet is lost; this kernel has no netem): the calls in
#           flight reach their deadline, the client goes on here, and once
#           the link is back it resumes with the same server;
#   switch  `ionn serve` gets SIGKILL; the client goes on with the second
#           server of its list (--server A,B) and uploads everything there.
# Every query must finish with the right output (0 lost, 0 wrong), at most
# the one in flight recomputed, and the last output must equal `ionn run`'s
# bit for bit where the last query ran here.
# Usage: fault_test.sh path/to/ionn source-dir
set -u
ionn=$1
src=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL ($scenario): $*"
  for f in "$tmp"/*.log "$tmp"/*.err "$tmp"/*.json; do [ -f "$f" ] && { echo "--- $f"; tail -8 "$f"; }; done
  exit 1
}
profiles=$src/data/profiles/odroid-xu4_gtx1080ti
regression=$profiles/server_regression.csv

# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"

# start_server NAME: starts `ionn serve` logging to NAME.log; sets
# server_pid, server_port and metrics_port.
start_server() {
  "$ionn" serve --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --regression "$regression" 2>"$tmp/$1.log" &
  server_pid=$!
  pids+=("$server_pid")
  server_port=$(port_of "$tmp/$1.log") || fail "serve did not start"
  metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' "$tmp/$1.log" | head -1)
  [ -n "$metrics_port" ] || fail "serve did not say its metrics port"
}

# start_link NAME SERVER_PORT MBPS: sets link_pid, link_port.
start_link() {
  "$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$2" --uplink-mbps "$3" --downlink-mbps "$3" \
    2>"$tmp/$1.log" &
  link_pid=$!
  pids+=("$link_pid")
  link_port=$(port_of "$tmp/$1.log") || fail "link did not start"
}

# wait_for_step METRICS_PORT: until that server has run two query steps
# (30 s): the client has then had the first one's answer (queries are
# sequential), so at least one query ran layers there.
wait_for_step() {
  local steps=0
  for _ in $(seq 600); do
    if exec 3<>"/dev/tcp/127.0.0.1/$1"; then
      printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
      steps=$(awk '$1 == "ionn_query_steps_total" {print int($2)}' <&3)
      exec 3<&-
    fi
    [ "${steps:-0}" -ge 2 ] && return 0
    sleep 0.05
  done
  fail "fewer than two query steps ran on the server within 30 s"
}

# The client's JSON result (one key per line, as `ionn client --format json`
# writes it); the first occurrence, i.e. the top level's.
field() { sed -n "s/^ \"$1\": \(.*\),\?$/\1/p" "$tmp/client.json" | sed 's/,$//' | head -1; }

# check_client RC [MAX_RECOMPUTED]: what every scenario requires of the
# client's result; at most MAX_RECOMPUTED (default 1: the one in flight)
# queries recomputed here.
check_client() {
  [ "$1" -eq 0 ] || fail "client exit $1"
  [ "$(field server_lost)" = true ] || fail "the client did not notice the fault"
  queries=$(field query_count) offloaded=$(field queries_offloaded) fell_back=$(field queries_fell_back)
  wrong=$(field queries_wrong)
  [ "${queries:-0}" -ge 5 ] || fail "only $queries queries"
  [ "${offloaded:-0}" -ge 1 ] || fail "no query ran layers on the server"
  [ "${fell_back:-9}" -le "${2:-1}" ] || fail "$fell_back queries recomputed: more than ${2:-1}"
  [ "${wrong:-9}" -eq 0 ] || fail "$wrong queries with a wrong output"
  sessions=$(grep -c '"opened_ms"' "$tmp/client.json")
}

client() {
  "$ionn" client --zoo alexnet --paper-profiles -a original --backoff-s 0.1 --verify --format json \
    --quiet --output-tensor "$tmp/client.npy" "$@" >"$tmp/client.json" 2>"$tmp/client.err" &
  client_pid=$!
  pids+=("$client_pid")
}

finish_client() {
  wait "$client_pid"
  local rc=$?
  pids=("${pids[@]/$client_pid}")  # reaped: its pid may be reused
  check_client "$rc" "$@"
}

"$ionn" run --zoo alexnet --output-tensor "$tmp/local.npy" >/dev/null 2>"$tmp/run.err" || { scenario=setup; fail "ionn run"; }

scenario=kill
start_server serve
start_link link "$server_port" 40
client --server "127.0.0.1:$link_port" --duration-s 6 --deadline-s 5
wait_for_step "$metrics_port"
kill -9 "$server_pid"
finish_client
[ "$(field upload_complete)" = false ] || fail "the upload completed although the server was killed"
[ "$sessions" -eq 1 ] || fail "$sessions sessions: the one server was killed"
cmp -s "$tmp/client.npy" "$tmp/local.npy" || fail "the last query's output differs from a whole-model run"
echo "fault kill: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; server error: $(field server_error)"
kill -9 "$link_pid"

scenario=cut
start_server serve2
start_link link2 "$server_port" 400
client --server "127.0.0.1:$link_port" --deadline-s 30
wait_for_step "$metrics_port"
kill -USR1 "$link_pid"
finish_client
[ "$(field upload_complete)" = true ] || fail "the upload did not complete after the cut"
[ "$sessions" -ge 2 ] || fail "$sessions sessions: no new session after the cut"
held=$(field held_layers)
[ "${held:-0}" -ge 1 ] || fail "the new session held no layer of the first"
grep -q "got SIGUSR1: cut [1-9]" "$tmp/link2.log" || fail "the link cut no connection"
echo "fault cut: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; $sessions sessions," \
  "the last holding $held layers"
kill -9 "$server_pid" "$link_pid"

scenario=cut-mid-partition
# The link reset once half the weights have arrived: always inside fc6,
# AlexNet's largest layer (151 of 244 MB), whatever the plan's order. The
# next session proves the whole blocks the server kept and sends the rest:
# the server receives the weights once, plus at most a block per cut.
start_server serve6
start_link link6 "$server_port" 400
client --server "127.0.0.1:$link_port" --deadline-s 30
metric() {
  exec 3<>"/dev/tcp/127.0.0.1/$metrics_port" || return 1
  printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  awk -v m="$1" '$1 == m {printf "%d", $2}' <&3
  exec 3<&-
}
for _ in $(seq 600); do
  [ "$(metric ionn_uploaded_bytes_total)" -ge 122000000 ] 2>/dev/null && break
  sleep 0.02
done
kill -USR1 "$link_pid"
finish_client
[ "$(field upload_complete)" = true ] || fail "the upload did not complete after the cut"
[ "$sessions" -ge 2 ] || fail "$sessions sessions: no new session after the cut"
resumed=$(field resumed_bytes) weights=$(field weight_bytes)
[ "${resumed:-0}" -gt 0 ] || fail "nothing resumed after the cut"
uploaded=$(metric ionn_uploaded_bytes_total)
[ "$uploaded" -ge "$weights" ] && [ "$uploaded" -le $((weights + 1024 * (sessions - 1))) ] ||
  fail "the server received $uploaded bytes of $weights weights in $sessions sessions"
[ "$(metric ionn_resumed_bytes_total)" -eq "$resumed" ] || fail "the server resumed other bytes than the client"
echo "fault cut-mid-partition: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; $sessions sessions;" \
  "$resumed bytes resumed, the server received $uploaded bytes of $weights"
kill -9 "$server_pid" "$link_pid"

scenario=restart
# `ionn serve --upload-dir` gets SIGKILL inside fc6 and is started again on
# the same port and folder: it offers what it had received (the layers
# built, and fc6's first blocks) and the client's next session sends only
# the rest.
updir=$tmp/uploads
"$ionn" serve --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --regression "$regression" --upload-dir "$updir" \
  2>"$tmp/serve7.log" &
server_pid=$!
pids+=("$server_pid")
server_port=$(port_of "$tmp/serve7.log") || fail "serve did not start"
metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' "$tmp/serve7.log" | head -1)
start_link link7 "$server_port" 400
client --server "127.0.0.1:$link_port" --deadline-s 30
for _ in $(seq 600); do
  [ "$(metric ionn_uploaded_bytes_total)" -ge 122000000 ] 2>/dev/null && break
  sleep 0.02
done
kill -9 "$server_pid"
"$ionn" serve --listen "127.0.0.1:$server_port" --metrics 127.0.0.1:0 --regression "$regression" \
  --upload-dir "$updir" 2>"$tmp/serve8.log" &
server_pid=$!
pids+=("$server_pid")
port_of "$tmp/serve8.log" >/dev/null || fail "serve did not start again on port $server_port"
metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' "$tmp/serve8.log" | head -1)
finish_client
[ "$(field upload_complete)" = true ] || fail "the upload did not complete after the restart"
[ "$sessions" -ge 2 ] || fail "$sessions sessions: no new session after the restart"
resumed=$(field resumed_bytes) weights=$(field weight_bytes)
uploaded=$(metric ionn_uploaded_bytes_total) server_resumed=$(metric ionn_resumed_bytes_total)
[ "$((uploaded + server_resumed))" -eq "$weights" ] ||
  fail "the restarted server got $uploaded bytes and resumed $server_resumed, for $weights weights"
[ "$uploaded" -le $((weights - 122000000 + 1024)) ] || fail "the restarted server received $uploaded bytes again"
echo "fault restart: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; $sessions sessions;" \
  "the restarted server resumed $server_resumed bytes and received $uploaded of $weights"
kill -9 "$server_pid" "$link_pid"

scenario=stall
start_server serve5
start_link link5 "$server_port" 1000
client --server "127.0.0.1:$link_port" --deadline-s 8
wait_for_step "$metrics_port"
kill -USR2 "$link_pid"
sleep 10
kill -USR2 "$link_pid"
# Two may be recomputed: the step the stall caught, and one a busy machine
# lets pass its deadline right after (the session is then made again).
finish_client 2
[ "$(field upload_complete)" = true ] || fail "the upload did not complete after the stall"
[ "$sessions" -ge 2 ] || fail "$sessions sessions: no new session after the stall"
grep -q "link stalled" "$tmp/link5.log" && grep -q "link resumed" "$tmp/link5.log" || fail "the link did not stall and resume"
echo "fault stall: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; $sessions sessions;" \
  "the first lost: $(grep -m1 -o '"lost": "[^"]*' "$tmp/client.json" | cut -c10-90)"
kill -9 "$server_pid" "$link_pid"

scenario=switch
start_server serve3
first_metrics=$metrics_port first_pid=$server_pid
start_link link3 "$server_port" 40
start_server serve4
second_port=$server_port
client --server "127.0.0.1:$link_port,127.0.0.1:$second_port" --deadline-s 30
wait_for_step "$first_metrics"
kill -9 "$first_pid"
finish_client
[ "$(field upload_complete)" = true ] || fail "the upload did not complete on the second server"
[ "$(field server)" = "\"127.0.0.1:$second_port\"" ] || fail "the last session is not with the second server: $(field server)"
[ "$sessions" -eq 2 ] || fail "$sessions sessions (want 2)"
echo "fault switch: $queries queries, $offloaded offloaded, $fell_back recomputed, 0 wrong; resumed on the second server"
echo "fault: all checks passed"
