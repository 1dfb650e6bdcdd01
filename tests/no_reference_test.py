"""No oneDNN reference loop on a hot path (issue 21): every zoo model runs
with ONEDNN_VERBOSE=1 at this CPU's own ISA and capped to AVX2
(ONEDNN_MAX_CPU_ISA), once with one timed run and once with three; the
primitives whose count grows are those every query runs, and none of them
may be one of oneDNN's reference implementations ("ref:...", "simple_...",
many times slower than its jit kernels). Primitives run once, while a
model is prepared (weight reorders), are listed but allowed.

Usage: no_reference_test.py IONN [MODEL ...]   (zoo names or ONNX files; default: the five zoo models)
"""
import collections
import os
import subprocess
import sys

ZOO = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
ISAS = ["ALL", "AVX2"]  # ALL: no cap, the CPU's own


def primitives(ionn, model, isa, repeats):
    """Count of executions per (primitive, implementation, shapes)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", ONEDNN_MAX_CPU_ISA=isa)
    which = [model] if model.endswith(".onnx") else ["--zoo", model]
    p = subprocess.run([ionn, "run", *which, "--repeats", str(repeats)], env=env, capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"FAIL: ionn run {' '.join(which)} (ONEDNN_MAX_CPU_ISA={isa}) exited {p.returncode}: "
                         f"{p.stderr[-400:]}")
    counts = collections.Counter()
    for line in p.stdout.splitlines() + p.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 9 and fields[0] == "onednn_verbose" and fields[1] == "exec":
            counts[(fields[3], fields[4], fields[9])] += 1  # primitive, implementation, problem
    return counts


def is_reference(implementation):
    return implementation.startswith("ref") or implementation.startswith("simple")


def check(ionn, model, isa):
    """(summary line, failure lines) of one model at one ISA."""
    once, thrice = primitives(ionn, model, isa, 1), primitives(ionn, model, isa, 3)
    if not once:
        return "", [f"{model} at {isa}: no oneDNN verbose output (is ONEDNN_VERBOSE honoured?)"]
    per_run = {key: thrice[key] - once[key] for key in thrice if thrice[key] > once[key]}
    prepared = sorted(key for key in once if is_reference(key[1]) and key not in per_run)
    kinds = collections.Counter()
    for (primitive, implementation, _), n in per_run.items():
        kinds[f"{primitive}:{implementation}"] += n // 2
    summary = (f"{model} at {isa}: {sum(per_run.values()) // 2} primitives per run "
               f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
               + (f"; once, while preparing: {len(prepared)} reference ({', '.join(p[1] for p in prepared)})"
                  if prepared else ""))
    failures = [f"{model} at {isa}: {primitive} runs oneDNN's reference '{implementation}' on every query "
                f"({problem})" for primitive, implementation, problem in sorted(per_run) if is_reference(implementation)]
    return summary, failures


def main():
    ionn = sys.argv[1]
    models = sys.argv[2:] or ZOO
    failures = 0
    for isa in ISAS:
        for model in models:
            summary, failed = check(ionn, model, isa)
            if summary:
                print(summary)
            for line in failed:
                print("FAIL: " + line)
            failures += len(failed)
    if failures:
        print(f"{failures} failure(s)")
        return 1
    print("PASS: no reference implementation on a hot path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
