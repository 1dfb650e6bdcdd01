#!/usr/bin/env bash
# End-to-end checks of the ionn command: help, the documented examples, and
# exit code 2 with a message naming the problem for bad input.
# Usage: cli_test.sh path/to/ionn source-dir
set -u
ionn=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# shellcheck source=tests/expect.sh
. "$src/tests/expect.sh"

profiles=$src/data/profiles/odroid-xu4_gtx1080ti
# shellcheck source=scripts/port_of.sh
. "$src/scripts/port_of.sh"
fig2=$src/data/cases/paper_fig2.json

expect 0 "Subcommands" -- "$ionn" --help
for cmd in demo zoo costs plan simulate predict run profile calibrate experiment serve client link; do
  expect 0 "Usage|Options" -- "$ionn" "$cmd" --help
done

# The paper's worked example.
out=$("$ionn" plan --costs "$fig2" --algorithm recursive-efficiency --format json | tr -d ' \n')
grep -q '"latency_local_ms":52' <<<"$out" || fail "fig2 local latency: $out"
grep -q '"latency_optimal_ms":21' <<<"$out" || fail "fig2 optimal latency: $out"
grep -qF '"layers":["B"],"upload_ms":8.0,"uploaded_at_ms":8.0},{"latency_ms":37.0,"layers":["A"]' <<<"$out" || fail "fig2: [B] then [A]: $out"
grep -qF '"layers":["C"],"upload_ms":16.0,"uploaded_at_ms":32.0},{"latency_ms":21.0,"layers":["D"]' <<<"$out" || fail "fig2: [C] then [D]: $out"
expect 0 "latency ms" -- "$ionn" plan --costs "$fig2" --algorithm original

# zoo -> ONNX -> costs -> plan and simulate, as in the README.
expect 0 "wrote" -- "$ionn" zoo mobilenet -o "$tmp/m.onnx"
# The demo on ones own model: this machine as the server, the client emulated.
expect 0 "client = 10 times slower" -- "$ionn" demo "$tmp/m.onnx" --no-live
# The experiment on ones own model: every planner at each rate, a sweep CSV and a summary.
expect 0 "wrote .*EXPERIMENTS.md" -- "$ionn" experiment --model "$tmp/m.onnx" --rates 20,80 -o "$tmp/own" --no-plots
[ "$(grep -c ",recursive-efficiency," "$tmp/own/sweep.csv")" = 2 ] || fail "own experiment: no sweep rows"
grep -q "^| 80 |" "$tmp/own/EXPERIMENTS.md" || fail "own experiment: no 80 Mbps row in the summary"
expect 2 "profiles, --client-slowdown, --input-shape and --plan go with --model" -- "$ionn" experiment --paper-profiles \
  -o "$tmp/x" --no-plots
# A plan made elsewhere, beside the planners at every rate.
"$ionn" plan --zoo mobilenet --paper-profiles -a original --format json -o "$tmp/m_original.json"
expect 0 "wrote" -- "$ionn" experiment --model "$tmp/m.onnx" --rates 20,80 -o "$tmp/own2" --no-plots \
  --plan "mine=$tmp/m_original.json"
[ "$(grep -c ",mine," "$tmp/own2/sweep.csv")" = 2 ] || fail "experiment --plan: no rows of the given plan"
grep -q "| mine |" "$tmp/own2/EXPERIMENTS.md" || fail "experiment --plan: the summary has no column for it"
expect 2 "--plan: the name 'original' is taken" -- "$ionn" experiment --model "$tmp/m.onnx" --rates 80 \
  -o "$tmp/own3" --no-plots --plan "original=$tmp/m_original.json"
expect 0 "" -- "$ionn" costs --model "$tmp/m.onnx" --client-profile "$profiles/mobilenet.csv" \
  --regression "$profiles/server_regression.csv" --uplink-mbps 80 -o "$tmp/costs.json"
expect 0 "ionn-costs/1" -- cat "$tmp/costs.json"
# The issue's spelling: the model as a positional argument; block granularity.
expect 0 '"name": "prob"' -- "$ionn" costs "$tmp/m.onnx" --client-profile "$profiles/mobilenet.csv" \
  --regression "$profiles/server_regression.csv" --granularity block
"$ionn" zoo googlenet -o "$tmp/g.onnx" 2>/dev/null
blocks=$("$ionn" costs "$tmp/g.onnx" --client-profile "$profiles/googlenet.csv" --server-profile "$profiles/googlenet.csv" \
  --granularity block | grep -c '"client_ms"')
[ "$blocks" -eq 25 ] || fail "GoogLeNet should collapse to 25 blocks, got $blocks"
expect 0 "partitions" -- "$ionn" plan --costs "$tmp/costs.json" --granularity block
# A cost file of blocks says so, and its plans are labelled block granularity.
"$ionn" costs --zoo googlenet --paper-profiles --granularity block -o "$tmp/blocks.json"
expect 0 '"units": "block"' -- cat "$tmp/blocks.json"
expect 0 '"granularity": "block"' -- "$ionn" plan --costs "$tmp/blocks.json" --format json
expect 0 '"granularity": "layer"' -- "$ionn" plan --costs "$tmp/costs.json" --format json
expect 0 "queries_during_upload" -- "$ionn" simulate --costs "$tmp/costs.json" --format json --link-sharing fair
# One vocabulary: the same names in plan, simulate and client JSON.
expect 0 '"format": "ionn-simulate/1"' -- "$ionn" simulate --zoo alexnet --paper-profiles --format json
expect 0 '"link_sharing": "fair"' -- "$ionn" simulate --zoo alexnet --paper-profiles --format json --link-sharing fair
expect 0 '"queries_in_window"' -- "$ionn" simulate --zoo alexnet --paper-profiles --format json
expect 0 '"uploaded_at_ms"' -- "$ionn" simulate --zoo alexnet --paper-profiles --format json
expect 0 '"format": "ionn-plan/1"' -- "$ionn" plan --zoo alexnet --paper-profiles --format json
expect 0 '"uplink_mbps": 80' -- "$ionn" plan --zoo alexnet --paper-profiles --format json
for cmd in plan simulate client; do
  expect 0 "throughput-search" -- "$ionn" "$cmd" --help
done
# A link whose rate changes: the simulator replays the trace; the planner
# assumes a CSV's first rate (or --uplink-mbps); bad traces name the file and line.
expect 0 '"uplink_mbps": 20' -- "$ionn" simulate --zoo alexnet --paper-profiles --format json \
  --uplink-trace "$src/data/traces/step_20_to_80.csv"
printf '0,80\n5000,20\n4000,80\n' >"$tmp/backwards.csv"
expect 2 "--uplink-trace '.*backwards.csv': line 3: time 4000 ms does not come after" -- "$ionn" simulate \
  --zoo alexnet --paper-profiles --uplink-trace "$tmp/backwards.csv"
printf '10\n20\n15\n' >"$tmp/backwards.mahimahi"
expect 2 "--downlink-trace '.*': line 3: 15 ms comes before" -- "$ionn" simulate --zoo alexnet --paper-profiles \
  --downlink-trace "$tmp/backwards.mahimahi"
printf '0,80\n1000,0\n' >"$tmp/dies.csv"
expect 2 "line 2: the last rate holds for ever and is 0" -- "$ionn" simulate --zoo alexnet --paper-profiles \
  --uplink-trace "$tmp/dies.csv"
printf '0,0\n1000,80\n' >"$tmp/late.csv"
expect 2 "--uplink-trace '.*late.csv' starts at 0 Mbps: give the rate the planner assumes" -- "$ionn" simulate \
  --zoo alexnet --paper-profiles --uplink-trace "$tmp/late.csv"
expect 2 "need the rates the costs are computed at" -- "$ionn" simulate --costs "$fig2" \
  --uplink-trace "$src/data/traces/step_80_to_20.csv"
expect 0 "queries during upload" -- "$ionn" simulate --zoo alexnet --paper-profiles -a original
# Re-planning from the upload: on a trace by default; the oracle needs one.
expect 0 "re-planning             passive: [1-9][0-9]* re-plans, the last at" -- "$ionn" simulate --zoo alexnet \
  --paper-profiles --uplink-trace "$src/data/traces/step_20_to_80_alexnet_mid.csv"
expect 0 "re-planning             oracle" -- "$ionn" simulate --zoo alexnet --paper-profiles --replan oracle \
  --uplink-trace "$src/data/traces/step_20_to_80_alexnet_mid.csv"
expect 2 "--replan oracle reads the rate ahead from the uplink's trace: give --uplink-trace" -- "$ionn" simulate \
  --zoo alexnet --paper-profiles --replan oracle
expect 2 "unknown re-planning 'sometimes' .expected passive, off or oracle." -- "$ionn" simulate --zoo alexnet \
  --paper-profiles --replan sometimes
expect 2 "--replan passive: re-planning handles exact uploads only .exact, lossless., not int8: give --replan off" -- \
  "$ionn" simulate --zoo alexnet --paper-profiles --upload-encoding int8 --replan passive \
  --uplink-trace "$src/data/traces/step_80_to_20.csv"
# Without --replan, a run that cannot re-plan runs as planned (and says so).
expect 0 '"replan": "off"' -- "$ionn" simulate --zoo alexnet --paper-profiles --upload-encoding int8 \
  --uplink-trace "$src/data/traces/step_80_to_20.csv" --format json
expect 0 "Convolution" -- "$ionn" predict --zoo mobilenet --regression "$profiles/server_regression.csv"
sed 's/^InnerProduct,.*/InnerProduct,1e-8,-0.1/' "$profiles/server_regression.csv" >"$tmp/negative_fc.csv"
expect 0 "warning: --regression '.*' predicts -0.059.* ms for InnerProduct layer 'fc8': floored at 0 ms" -- \
  "$ionn" predict --zoo alexnet --regression "$tmp/negative_fc.csv"
expect 0 "warning: --regression '.*' predicts -0.059.* ms for InnerProduct layer 'fc8'" -- \
  "$ionn" plan --zoo alexnet --client-profile "$profiles/alexnet.csv" --regression "$tmp/negative_fc.csv"
"$ionn" profile --zoo mobilenet --column server --repeats 1 -o "$tmp/mobilenet_server.csv" 2>/dev/null ||
  fail "profile --column server"
expect 0 "prediction error per layer type" -- "$ionn" predict --zoo mobilenet --regression "$profiles/server_regression.csv" \
  --compare "$tmp/mobilenet_server.csv"
# The paper's profile has client times only: nothing to compare with.
expect 2 "has no server_ms for any layer of model 'mobilenet'" -- "$ionn" predict --zoo mobilenet \
  --regression "$profiles/server_regression.csv" --compare "$profiles/mobilenet.csv"

# The engine: a whole run with a given input, then per-layer profile and the calibration of prediction functions.
expect 0 "^conv1,[0-9.e-]+,$" -- "$ionn" profile "$tmp/m.onnx" --repeats 2 --warmup 1
expect 0 "^conv1,,[0-9.e-]+$" -- "$ionn" profile --zoo alexnet --column server --repeats 1 --warmup 0
expect 0 "^Convolution,[0-9.e-]+,[-0-9.e]+$" -- "$ionn" calibrate --quick --repeats 1
head -c $((3 * 224 * 224 * 4)) /dev/zero >"$tmp/zeros.bin"
expect 0 "#1  index" -- "$ionn" run "$tmp/m.onnx" --input "$tmp/zeros.bin" --repeats 1
expect 0 '"median_ms"' -- "$ionn" run --zoo mobilenet --repeats 1 --format json
head -c 100 /dev/zero >"$tmp/short.bin"
expect 2 "must hold exactly 150528 float32" -- "$ionn" run "$tmp/m.onnx" --input "$tmp/short.bin"
# A photo as input: one orange 5x4 image (PPM), resized and cropped to the
# model's 8x6, normalized with ImageNet's mean and std; the model's output
# is each channel's mean: (255/255-0.485)/0.229, (128/255-0.456)/0.224, (0-0.406)/0.225.
{ printf 'P6\n5 4\n255\n'; for _ in $(seq 20); do printf '\xff\x80\x00'; done; } >"$tmp/orange.ppm"
printf 'n00000001 red\nn00000002 green\nblue\n' >"$tmp/labels.txt"
means="$src/tests/data/channel_means.onnx"
expect 0 "#1  index      0  2.2489[0-9]*  red" -- "$ionn" run "$means" --image "$tmp/orange.ppm" --labels "$tmp/labels.txt" --repeats 1
expect 0 "#3  index      2  -1.8044[0-9]*  blue" -- "$ionn" run "$means" --image "$tmp/orange.ppm" --labels "$tmp/labels.txt" --repeats 1
expect 0 '"value": 0.2051' -- "$ionn" run "$means" --image "$tmp/orange.ppm" --format json --repeats 1
expect 0 "#1  index      2  2.9824" -- "$ionn" run "$means" --image "$tmp/orange.ppm" --bgr --pixel-scale 1 --mean 0,0,0 --std 1,256,85.5 --repeats 1 --top 1
expect 2 "cannot decode image" -- "$ionn" run "$means" --image "$tmp/labels.txt"
expect 0 "#2  index      1  5.01961e-10" -- "$ionn" run "$means" --image "$tmp/orange.ppm" --mean 0,0,0 --std 1e9,1e9,1e9 --repeats 1
printf 'n00000001 red\nn00000002 green\n' >"$tmp/two_labels.txt"
expect 2 "has 2 labels; the model's output '.*' has 3 values a sample" -- "$ionn" run "$means" --labels "$tmp/two_labels.txt" --repeats 1
expect 2 "excludes" -- "$ionn" run "$means" --image "$tmp/orange.ppm" --input "$tmp/zeros.bin"
expect 2 "give a model" -- "$ionn" profile
# Numbers: NaN, infinity, zero or negative rates are refused, not replaced by a default.
for a in "--downlink-mbps 0" "--downlink-mbps -1" "--downlink-mbps nan" "--uplink-mbps inf" "--uplink-mbps 1e300"; do
  # shellcheck disable=SC2086
  expect 2 "must be a rate in Mbps, more than 0 and at most 1e\+09" -- "$ionn" simulate --zoo alexnet --paper-profiles $a
done
expect 2 "must be a time in ms, 0 to 1e\+07, not 'nan'" -- "$ionn" plan --zoo alexnet --paper-profiles --rtt-ms nan
expect 2 "--window-ms: must be a time in ms" -- "$ionn" simulate --zoo alexnet --paper-profiles --window-ms nan
expect 2 "--window-ms: must be a time in ms" -- "$ionn" simulate --zoo alexnet --paper-profiles --window-ms -1
expect 2 "not in range 0 to 1000000" -- "$ionn" simulate --zoo alexnet --paper-profiles --queries-after-upload -1
expect 2 "--downlink-mbps: must be a rate" -- "$ionn" client --zoo alexnet --downlink-mbps nan
expect 2 "--rtt-ms: must be a time in ms" -- "$ionn" link --rtt-ms -5
# Thread counts beyond the engine's bound (65536 crashed OpenMP; 2^31-1 ran away with memory).
for n in 0 257 65536 2147483647; do
  expect 2 "not in range 1 to 256" -- "$ionn" run --zoo mobilenet --threads "$n"
done
expect 2 "not in range 1 to 256" -- "$ionn" profile --zoo mobilenet --threads 65536
expect 2 "not in range 1 to 256" -- "$ionn" calibrate --quick --threads 65536
# Backends: a name not known, or IONN_BACKEND wrong, is refused; both
# backends give MobileNet's same top class, and the report says which ran.
expect 2 "--backend: cuda not in \{auto,onednn,xnnpack\}" -- "$ionn" run --zoo mobilenet --backend cuda
expect 2 "IONN_BACKEND: unknown backend 'gpu'" -- env IONN_BACKEND=gpu "$ionn" run --zoo mobilenet
if "$ionn" run --zoo mobilenet --backend xnnpack --repeats 1 --format json >"$tmp/xnn.json" 2>/dev/null; then
  "$ionn" run --zoo mobilenet --backend onednn --repeats 1 --format json >"$tmp/onednn.json"
  /usr/bin/python3 - "$tmp/xnn.json" "$tmp/onednn.json" <<'PY' || fail "run --backend xnnpack against onednn"
import json, sys
x, o = (json.load(open(f)) for f in sys.argv[1:])
assert x["top"][0]["index"] == o["top"][0]["index"], (x["top"][0], o["top"][0])
assert abs(x["top"][0]["value"] - o["top"][0]["value"]) <= 1e-5, (x["top"][0], o["top"][0])
assert x["backend"] == "xnnpack" and x["kernels"]["xnnpack"] == 28 and o["kernels"]["xnnpack"] == 0, (x, o)
PY
else
  expect 2 "--backend xnnpack: this build has no XNNPACK" -- "$ionn" run --zoo mobilenet --backend xnnpack
fi

# Bad input: exit 2 and a message that names the problem.
echo '{"format": "ionn-costs/1", "inputs": [' >"$tmp/bad.json"
expect 2 "not valid JSON" -- "$ionn" plan --costs "$tmp/bad.json"
sed 's/"inputs": \["A"\]/"inputs": ["C"]/' "$fig2" >"$tmp/cycle.json"
expect 2 "topological order" -- "$ionn" plan --costs "$tmp/cycle.json"
sed 's/"inputs": \["A"\]/"inputs": ["nothing"]/' "$fig2" >"$tmp/unknown.json"
expect 2 "'nothing'" -- "$ionn" plan --costs "$tmp/unknown.json"
sed 's/"name": "B"/"name": "A"/' "$fig2" >"$tmp/dup.json"
expect 2 "duplicate" -- "$ionn" plan --costs "$tmp/dup.json"
sed 's/"client_ms": 19/"client_ms": -19/' "$fig2" >"$tmp/neg.json"
expect 2 "client_ms must be" -- "$ionn" plan --costs "$tmp/neg.json"
echo '{"format": "ionn-costs/1", "inputs": [{"name": "x"}], "layers": [], "outputs": []}' >"$tmp/empty.json"
expect 2 "no layers" -- "$ionn" plan --costs "$tmp/empty.json"
expect 2 "unknown algorithm 'fastest'" -- "$ionn" plan --costs "$fig2" --algorithm fastest
expect 2 "cannot open" -- "$ionn" plan --costs "$tmp/missing.json"
expect 2 "no zoo model 'vgg'" -- "$ionn" zoo vgg -o "$tmp/v.onnx"
head -c 1000 "$tmp/m.onnx" >"$tmp/truncated.onnx"
expect 2 "truncated|not a valid ONNX" -- "$ionn" costs --model "$tmp/truncated.onnx" \
  --client-profile "$profiles/mobilenet.csv" --regression "$profiles/server_regression.csv"
grep -v '^conv6/sep,' "$profiles/mobilenet.csv" >"$tmp/short.csv"
expect 2 "layer 'conv6/sep'" -- "$ionn" costs --model "$tmp/m.onnx" --client-profile "$tmp/short.csv" \
  --regression "$profiles/server_regression.csv"
expect 2 "no server_ms for layer 'conv1'" -- "$ionn" costs --model "$tmp/m.onnx" \
  --client-profile "$profiles/mobilenet.csv" --server-profile "$profiles/mobilenet.csv"
sed 's/^conv1,11.3888,/conv1,fast,/' "$profiles/mobilenet.csv" >"$tmp/nan.csv"
expect 2 "'conv1'.*not a number" -- "$ionn" costs --zoo mobilenet --client-profile "$tmp/nan.csv" \
  --regression "$profiles/server_regression.csv"
expect 2 "" -- "$ionn" plan --costs "$fig2" --format yaml
expect 2 "--uplink-mbps: must be a rate in Mbps, more than 0" -- "$ionn" link --uplink-mbps 0
expect 2 "--downlink-mbps: must be a rate in Mbps, more than 0" -- "$ionn" link --downlink-mbps nan
expect 2 "--rtt-ms: must be a time in ms, 0 to" -- "$ionn" link --rtt-ms -2
expect 2 "'nowhere' is not host:port" -- "$ionn" link --listen 127.0.0.1:0 --connect nowhere

# A one-node model whose Identity has no input (hand-encoded ModelProto):
# once an uncaught protobuf CHECK that aborted the process.
printf '\x08\x08\x3a\x1b\x0a\x11\x12\x01y\x1a\x02id\x22\x08Identity\x12\x01g\x62\x03\x0a\x01y\x42\x02\x10\x0d' \
  >"$tmp/noinput.onnx"
for cmd in run profile; do
  expect 2 "node 0 'id' \(Identity\): has 0 inputs, expects 1" -- "$ionn" "$cmd" "$tmp/noinput.onnx"
done

# A model exported with dynamic height and width (hand-encoded ModelProto):
# x [N,3,H,W] -> GlobalAveragePool. N is the batch (1); H and W must be given.
printf '\x08\x08\x3aH\x0a\x1e\x0a\x01x\x12\x01y\x1a\x03gap\x22\x11GlobalAveragePool\x12\x01gZ\x1e\x0a\x01x\x12\x19\x0a'\
'\x17\x08\x01\x12\x13\x0a\x03\x12\x01N\x0a\x02\x08\x03\x0a\x03\x12\x01H\x0a\x03\x12\x01Wb\x03\x0a\x01yB\x02\x10\x0d' \
  >"$tmp/dynamic_hw.onnx"
expect 2 "^ionn: error: .*dynamic_hw.onnx: input 'x' has symbolic dimensions \[N,3,H,W\] \(H at 2, W at 3\): give its shape with --input-shape x=1x3x224x224$" \
  -- "$ionn" run "$tmp/dynamic_hw.onnx" --repeats 1
expect 0 "output gap \[1,3,1,1\]" -- "$ionn" run "$tmp/dynamic_hw.onnx" --input-shape x=1x3x32x32 --repeats 1
expect 0 "^gap,[0-9.e-]+,$" -- "$ionn" profile --input-shape 1x3x48x40 "$tmp/dynamic_hw.onnx" --repeats 1 --warmup 0
expect 2 "^ionn: error: --input-shape: '1x3xHx32': 'H' is not a dimension" -- "$ionn" run "$tmp/dynamic_hw.onnx" --input-shape 1x3xHx32
expect 2 "dimension 1 is 3 in the file, 4 in the given shape \[1,4,32,32\]" -- "$ionn" run "$tmp/dynamic_hw.onnx" --input-shape 1x4x32x32
expect 2 "a shape is given for 'y', which is not a graph input" -- "$ionn" run "$tmp/dynamic_hw.onnx" --input-shape y=1x3x32x32
expect 2 "--input-shape excludes --costs|--costs excludes --input-shape" -- "$ionn" plan --costs "$fig2" --input-shape 1x3x32x32

# A real server and client on loopback: serve on a free port, a client for
# three queries, SIGTERM drains and exits 0.
"$ionn" serve --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --regression "$profiles/server_regression.csv" \
  2>"$tmp/serve.log" &
serve_pid=$!
port=$(port_of "$tmp/serve.log")
metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' "$tmp/serve.log" | head -1)
if [ -z "$port" ]; then
  fail "serve did not start: $(cat "$tmp/serve.log")"
else
  expect 0 '"query_count": 3' -- "$ionn" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$port" \
    --queries 3 --format json --quiet
  expect 2 "excludes" -- "$ionn" client --zoo mobilenet --paper-profiles --profile-now --server "127.0.0.1:$port"
  # One machine: the client as fast as the server offloads nothing; ten
  # times slower (emulated), it offloads.
  expect 0 '"queries_offloaded": [1-9]' -- "$ionn" client --zoo mobilenet --server "127.0.0.1:$port" \
    --client-slowdown 10 --queries 3 --format json --quiet
  expect 2 "--client-slowdown excludes --paper-profiles|--paper-profiles excludes --client-slowdown" -- \
    "$ionn" client --zoo mobilenet --paper-profiles --client-slowdown 10 --server "127.0.0.1:$port"
  # A plan made elsewhere drives the real client; a bad one is refused
  # before connecting.
  "$ionn" plan --zoo mobilenet --paper-profiles -a original --format json -o "$tmp/mobilenet_plan.json"
  expect 0 '"algorithm": "given"' -- "$ionn" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$port" \
    --plan "$tmp/mobilenet_plan.json" --queries 3 --format json --quiet
  expect 2 "--plan '.*': layer 'conv1' is in no partition" -- "$ionn" client --zoo mobilenet --paper-profiles \
    --server 127.0.0.1:1 --plan <(echo '[["prob"]]') --quiet
  # --slices auto chooses before connecting: only with the server's times.
  expect 2 "--slices auto chooses with the server's layer times before connecting" -- "$ionn" client --zoo mobilenet \
    --paper-profiles --server 127.0.0.1:1 --slices auto --quiet
  awk -F, 'NR == 1 { print; next } { printf "%s,%s,%g\n", $1, $2, $2 / 10 }' "$profiles/mobilenet.csv" \
    >"$tmp/mobilenet_fast_server.csv"
  expect 0 '"query_count": 2' -- "$ionn" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$port" \
    --server-profile "$tmp/mobilenet_fast_server.csv" --slices auto --queries 2 --format json --quiet
  # Pointed at the metrics port: exit 2, and the message says what it is.
  expect 2 "does not speak ionn's gRPC: is it the server's metrics port" -- "$ionn" client --zoo mobilenet \
    --paper-profiles --server "127.0.0.1:$metrics_port" --deadline-s 5 --quiet
  # A second server on the same port is refused (gRPC would share it).
  expect 2 "cannot listen on '127.0.0.1:$port': Address already in use" -- "$ionn" serve --listen "127.0.0.1:$port" \
    --regression "$profiles/server_regression.csv"
  # The same through the link emulator; SIGINT stops it with exit 0.
  "$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$port" --uplink-mbps 400 --downlink-mbps 400 --rtt-ms 2 \
    2>"$tmp/link.log" &
  link_pid=$!
  link_port=$(port_of "$tmp/link.log")
  if [ -z "$link_port" ]; then
    fail "link did not start: $(cat "$tmp/link.log")"
  else
    expect 0 '"query_count": 2' -- "$ionn" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$link_port" \
      --uplink-mbps 400 --queries 2 --format json --quiet
  fi
  kill -INT "$link_pid"
  wait "$link_pid" || fail "link exited $? after SIGINT (want 0)"
  # A link that follows a trace; a bad trace or a rate beside it is refused.
  "$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$port" --uplink-trace "$src/data/traces/step_80_to_20.csv" \
    --downlink-trace "$src/data/traces/random_walk_1_100_seed1.mahimahi" 2>"$tmp/link_trace.log" &
  trace_pid=$!
  trace_port=$(port_of "$tmp/link_trace.log")
  if [ -z "$trace_port" ]; then
    fail "link with traces did not start: $(cat "$tmp/link_trace.log")"
  else
    grep -q "up trace .*step_80_to_20.csv, down trace .*random_walk" "$tmp/link_trace.log" ||
      fail "the link's log does not name its traces: $(cat "$tmp/link_trace.log")"
    expect 0 '"query_count": 2' -- "$ionn" client --zoo mobilenet --paper-profiles --server "127.0.0.1:$trace_port" \
      --queries 2 --format json --quiet
  fi
  kill -INT "$trace_pid"
  wait "$trace_pid" || fail "link with traces exited $? after SIGINT (want 0)"
  expect 2 "--uplink-trace '.*dies.csv': line 2" -- "$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$port" \
    --uplink-trace "$tmp/dies.csv"
  expect 2 "excludes" -- "$ionn" link --listen 127.0.0.1:0 --connect "127.0.0.1:$port" \
    --uplink-trace "$src/data/traces/step_80_to_20.csv" --uplink-mbps 20
  grep -q "connection 1 from .* bytes up" "$tmp/link.log" || fail "no connection line in the link log: $(cat "$tmp/link.log")"
fi
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve exited $? after SIGTERM (want 0)"
grep -q "session .* closed" "$tmp/serve.log" || fail "no session close in the server log: $(cat "$tmp/serve.log")"
expect 2 "cannot listen on '10.255.255.1:7070': Cannot assign requested address" -- "$ionn" serve --listen 10.255.255.1:7070 \
  --regression "$profiles/server_regression.csv"
expect 2 "Hello to 127.0.0.1:1: .*nothing listens there" -- "$ionn" client --zoo mobilenet --paper-profiles --server 127.0.0.1:1 \
  --deadline-s 2 --quiet
expect 2 "Hello to 127.0.0.1:1" -- "$ionn" client --zoo mobilenet --paper-profiles --server 127.0.0.1:1,127.0.0.1:2 \
  --deadline-s 2 --quiet
for bad in localhost 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:1, ,127.0.0.1:1 :7070 127.0.0.1:x fe80::1 \
  "127.0.0.1:1, 127.0.0.1:2"; do
  expect 2 "--server: " -- "$ionn" client --zoo mobilenet --paper-profiles --server "$bad" --quiet
done
# Options that would be ignored are refused: the link and profiles with a
# cost graph, the paper's profiles with other profiles.
expect 2 "--costs excludes --uplink-mbps" -- "$ionn" plan --costs "$tmp/costs.json" --uplink-mbps 3
expect 2 "--costs excludes --paper-profiles" -- "$ionn" simulate --costs "$tmp/costs.json" --paper-profiles
expect 2 "--costs excludes --rtt-ms" -- "$ionn" plan --costs "$tmp/costs.json" --rtt-ms 5
expect 0 "partitions" -- "$ionn" plan --zoo alexnet --paper-profiles \
  --client-profile "$profiles/alexnet.csv"
expect 2 "--server-profile excludes --regression" -- "$ionn" costs --zoo alexnet --paper-profiles \
  --server-profile "$profiles/alexnet.csv" --regression "$profiles/server_regression.csv"
# --paper-profiles fills what is not given: the published client times with
# one's own prediction functions.
expect 0 "InnerProduct|fc8" -- "$ionn" plan --zoo alexnet --paper-profiles --regression "$profiles/server_regression.csv"
# A plan made elsewhere (here: written by plan, reversed): simulated as
# given; a plan that lists a layer twice, none or an unknown one is refused.
"$ionn" plan --zoo alexnet --paper-profiles --format json -o "$tmp/plan.json"
expect 0 "queries during upload +93 " -- "$ionn" simulate --zoo alexnet --paper-profiles --plan "$tmp/plan.json"
echo '[["conv1"], ["conv1"]]' >"$tmp/twice.json"
expect 2 "--plan '.*twice.json': layer 'conv1' is in partition 0 and in partition 1" -- \
  "$ionn" simulate --zoo alexnet --paper-profiles --plan "$tmp/twice.json"
echo '{"partitions": [{"layers": ["conv9"]}]}' >"$tmp/unknown.json"
expect 2 "partition 0 names layer 'conv9', which the model does not have" -- \
  "$ionn" plan --zoo alexnet --paper-profiles --plan "$tmp/unknown.json"
expect 2 "--algorithm excludes --plan|--plan excludes --algorithm" -- \
  "$ionn" plan --zoo alexnet --paper-profiles --plan "$tmp/plan.json" -a original
# Huge times keep table rows short (they used to print 300 digits).
expect 0 "upload +1\.86051e\+306 ms" -- "$ionn" simulate --zoo alexnet --paper-profiles --uplink-mbps 1e-300
expect 0 "^   0  1\.86051e\+306" -- "$ionn" plan --zoo alexnet --paper-profiles --uplink-mbps 1e-300
# Unwritable outputs: exit 2, before any work where the path can be checked.
expect 2 "folder '/nonexistent' does not exist" -- "$ionn" zoo alexnet -o /nonexistent/a.onnx
expect 2 "folder '/nonexistent' does not exist" -- "$ionn" profile --zoo alexnet -o /nonexistent/p.csv
expect 2 "folder '/nonexistent' does not exist" -- "$ionn" calibrate -o /nonexistent/r.csv
expect 2 "is not a folder" -- "$ionn" experiment --output /dev/null/x --no-plots
expect 2 "is a folder, not a file" -- "$ionn" costs --zoo alexnet --paper-profiles -o "$tmp"
expect 2 "is a folder, not a file" -- "$ionn" client --zoo alexnet --trace "$tmp"
expect 2 "cannot write '/dev/full'" -- "$ionn" run --zoo mobilenet --output-tensor /dev/full
expect 2 "cannot write '/dev/full'" -- "$ionn" run --zoo mobilenet --repeats 1 --output /dev/full
[ -c /dev/full ] || fail "/dev/full is no longer a device"
expect 2 "cannot write standard output" -- sh -c "'$ionn' costs --zoo alexnet --paper-profiles >/dev/full"
expect 2 "--reconnects" -- "$ionn" client --zoo mobilenet --paper-profiles --reconnects -1
expect 2 "--backoff-s" -- "$ionn" client --zoo mobilenet --paper-profiles --backoff-s nan

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "cli: all checks passed"
