#!/usr/bin/env bash
# Before/after check of a change, on one machine in one run: the planner
# benchmark and whole-model engine latency of two builds, interleaved
# (old, new, old, new, ...) so that machine noise hits both alike.
# Usage: bash bench/compare_builds.sh OLD_BIN_DIR NEW_BIN_DIR [rounds [model.onnx ...]]
#   (the five zoo models, and any ONNX files named after them; set NO_PLAN=1
#   to skip the planner benchmark)
#   e.g. git worktree add /tmp/old <commit> && (cd /tmp/old && bash scripts/build.sh)
#        bash bench/compare_builds.sh /tmp/old/build/bin build/bin 3
set -euo pipefail
old=${1:?old bin dir}; new=${2:?new bin dir}; rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
files=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=(alexnet googlenet resnet50 inception_bn mobilenet)
for r in $(seq "$rounds"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    if [ -z "${NO_PLAN:-}" ]; then "$bin/plan_bench" > "$tmp/plan-$side-$r.txt"; fi
    for m in "${models[@]}" "${files[@]}"; do
      name=$m; src=(--zoo "$m")
      if [ -f "$m" ]; then name=$(basename "$m" .onnx); src=("$m"); fi
      "$bin/ionn" run "${src[@]}" --threads 1 --repeats 20 --format json |
        /usr/bin/python3 -c "import json,sys; print('$name', json.load(sys.stdin)['median_ms'])" >> "$tmp/engine-$side.txt"
    done
  done
done
/usr/bin/python3 - "$tmp" "$rounds" <<'PY'
import collections, os, re, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def engine(side):
    d = collections.defaultdict(list)
    for line in open(f"{tmp}/engine-{side}.txt"):
        m, v = line.split(); d[m].append(float(v))
    return d
eo, en = engine("old"), engine("new")
print(f"engine, whole model, 1 thread: median over {rounds} rounds of the per-round median (ms)")
print(f"{'model':20} {'old':>9} {'new':>9} {'new/old':>8}")
for m in eo:
    o, n = statistics.median(eo[m]), statistics.median(en[m])
    print(f"{m:20} {o:9.2f} {n:9.2f} {n/o:8.3f}")
if not os.path.exists(f"{tmp}/plan-old-1.txt"):  # NO_PLAN
    sys.exit(0)
def plan(side):
    d = collections.defaultdict(list)
    for r in range(1, rounds + 1):
        for line in open(f"{tmp}/plan-{side}-{r}.txt"):
            f = line.split()
            if len(f) < 5 or f[1] not in ("layer", "block"): continue
            vals = re.findall(r"([\d.]+) \[\d+\]", line)
            for alg, v in zip(["all-at-once", "original", "efficiency", "recursive-efficiency", "throughput-search"], vals):
                d[(f[0], f[1], alg)].append(float(v))
    return d
po, pn = plan("old"), plan("new")
print(f"\nplanner (plan_bench), median over {rounds} rounds (us); new/old")
print(f"{'graph':14} {'gran':6} " + " ".join(f"{a:>22}" for a in ["original", "recursive-efficiency", "throughput-search"]))
keys = sorted({(g, gr) for g, gr, _ in po}, key=lambda k: list(dict.fromkeys(g for g, _, _ in po)).index(k[0]))
for g, gr in keys:
    cells = []
    for alg in ["original", "recursive-efficiency", "throughput-search"]:
        o, n = statistics.median(po[(g, gr, alg)]), statistics.median(pn[(g, gr, alg)])
        cells.append(f"{o:8.1f}->{n:8.1f} {n/o:4.2f}")
    print(f"{g:14} {gr:6} " + " ".join(f"{c:>22}" for c in cells))
PY
