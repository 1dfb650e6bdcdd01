#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, in build-fuzz/) and runs
# each for SECONDS (default 60) on a copy of its seed corpus (fuzz/corpus/*),
# so the repo's seeds are not changed. Exits 1 if any target finds a crash,
# a leak, undefined behaviour or a timeout; the input that did it is kept
# in build-fuzz/findings/. Prints executions and coverage per target.
# Usage: fuzz/run.sh [SECONDS]   (CI runs it with a short time: .ci/run)
#        fuzz/run.sh --seeds     (rewrites fuzz/corpus from fuzz/make_seeds.cc)
# Two ONNX seeds are files of nodes that export never writes, kept as they
# are: onnx/exported_kinds (what PyTorch's exports hold) and
# onnx/einsum_variadic (Einsum of computed and constant operands, with
# "...", Sum, Max, Min and Mean of several inputs; two outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--seeds" ]; then
  cmake -S . -B build >/dev/null && cmake --build build --target fuzz_seeds -j"$(nproc)" >/dev/null
  exec build/bin/fuzz_seeds fuzz/corpus
fi
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (scripts/setup.sh installs it)"; exit 1; }
echo "== fuzz build (clang, address, undefined, libFuzzer) in build-fuzz/"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIONN_FUZZ=ON \
  -DIONN_BUILD_TESTS=OFF -DIONN_BUILD_BENCH=OFF -DIONN_WITH_OPENCV=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target onnx_import_fuzz architecture_fuzz query_step_fuzz >/dev/null
mkdir -p build-fuzz/findings
failed=0
for pair in onnx:onnx_import_fuzz architecture:architecture_fuzz query_step:query_step_fuzz; do
  corpus=${pair%%:*} target=${pair#*:}
  work=$(mktemp -d)
  cp fuzz/corpus/"$corpus"/* "$work"/
  log=build-fuzz/findings/$target.log
  echo "== $target: ${seconds} s on fuzz/corpus/$corpus ($(ls "$work" | wc -l) seeds)"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build-fuzz/bin/"$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix=build-fuzz/findings/"$target"- "$work" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "$target: $runs executions in $seconds s, $cov, $(ls "$work" | wc -l) inputs in the corpus, no crash"
  else
    echo "FAIL: $target found a crash (log: $log; input: build-fuzz/findings/$target-*)"
    grep -E "ERROR|runtime error|SUMMARY" "$log" | head -5 || true
    failed=1
  fi
  rm -rf "$work"
done
exit "$failed"
