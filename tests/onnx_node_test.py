#!/usr/bin/python3
"""ONNX's own backend node tests through `ionn run`, for every operator ionn claims.

python3-onnx carries the node test cases as code (onnx/backend/test/case/node):
each builds a one-node model and computes its expected output with numpy. This
script collects them in memory (nothing is downloaded), keeps those whose every
node is an operator ionn imports, and runs each through `ionn run`:

  match     the output has the expected shape and values (rtol 1e-3, atol 1e-5)
  refused   ionn exits 2 with a one-line error (it says what it cannot do)
  WRONG     ionn ran it and the output differs
  CRASH     any other exit: a crash, a hang, a message that is not one line
  skipped   what `ionn run` cannot express: a first input that is not float32;
            inputs after the first become constants, outputs after the first
            are left out of the comparison

Exit 1 when any case is WRONG or CRASH, or when fewer than --min-match of the
cases of an operator given with --expect-match match; 77 without python3-onnx.

  /usr/bin/python3 tests/onnx_node_test.py --ionn build/bin/ionn [--ops Resize,Upsample]
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ionn", required=True, help="the ionn binary")
    p.add_argument("--ops", default=None, help="comma-separated operators (default: every one ionn claims)")
    p.add_argument("--expect-match",
                   default="Resize,Upsample,Tanh,LeakyRelu,Elu,Selu,Celu,ThresholdedRelu,Exp,Log,Neg,Abs,Sqrt,"
                           "Reciprocal,Erf,Softplus,Softsign,Floor,Ceil,PRelu,InstanceNormalization,ReduceMean,"
                           "ReduceSum,ReduceMax,ReduceMin,LayerNormalization,MatMul,Gather,Transpose,Softmax,Sum,Max,"
                           "Min,Mean",
                   help="operators at least --min-match of whose cases must match")
    p.add_argument("--min-match", type=float, default=0.9)
    p.add_argument("--verbose", action="store_true", help="a line for every case")
    p.add_argument("--timeout", type=float, default=60, help="seconds per ionn run")
    return p.parse_args(argv)


def numpy_aliases(np):
    """The case modules of python3-onnx 1.12 use aliases numpy 1.24 removed."""
    for name, value in (("float", float), ("int", int), ("bool", bool), ("object", object), ("complex", complex)):
        if name not in np.__dict__:
            setattr(np, name, value)


def claimed_operators(ionn, onnx, work):
    """The operators ionn imports, as its refusal of an unknown one lists them."""
    from onnx import helper, TensorProto
    node = helper.make_node("NoSuchOperator", ["x"], ["y"])
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = os.path.join(work, "probe.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    r = subprocess.run([ionn, "run", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    m = re.search(r"\(supported: ([^)]*)\)", r.stdout.decode("utf-8", "replace"))
    if r.returncode != 2 or not m:
        raise RuntimeError("cannot read ionn's operator list from: " + r.stdout.decode("utf-8", "replace")[:300])
    return set(s.strip() for s in m.group(1).split(","))


def run_case(args, np, onnx, numpy_helper, case, inputs, outputs, work):
    """(verdict, detail) for one data set of one case."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    # Only the first output is compared: the others leave the graph's outputs
    # (the node still names them).
    while len(graph.output) > 1:
        del graph.output[len(graph.output) - 1]
    # A case computed in float64 throughout (Einsum's) runs in float32: its
    # graph's value types rewritten, its data cast, the same tolerance.
    if (inputs and all(isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float64
                       for v in list(inputs) + list(outputs))
            and all(vi.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
                    for vi in list(graph.input) + list(graph.output))):
        for vi in list(graph.input) + list(graph.output):
            vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        inputs = [np.asarray(v, dtype=np.float32) for v in inputs]
        outputs = [np.asarray(v, dtype=np.float32) for v in outputs]
    if not inputs or not isinstance(inputs[0], np.ndarray) or inputs[0].dtype != np.float32:
        return "skipped", "first input is not float32"
    # Inputs after the first become initializers with the case's values.
    for j in range(len(graph.input) - 1, 0, -1):
        value = inputs[j]
        if not isinstance(value, (np.ndarray, np.generic)):
            return "skipped", "input %d is not a tensor" % j
        value = np.asarray(value)
        name = graph.input[j].name
        graph.initializer.append(numpy_helper.from_array(value, name))
        del graph.input[j]
    path = os.path.join(work, "model.onnx")
    in_path = os.path.join(work, "input.npy")
    out_path = os.path.join(work, "output.npy")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    np.save(in_path, inputs[0])
    if os.path.exists(out_path):
        os.remove(out_path)
    try:
        r = subprocess.run([args.ionn, "run", path, "--input", in_path, "--output-tensor", out_path, "--repeats", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "CRASH", "timed out after %gs" % args.timeout
    err = r.stderr.decode("utf-8", "replace").strip()
    if r.returncode == 2:
        if "\n" in err or not err:
            return "CRASH", "exit 2 without a one-line error: %r" % err[:200]
        return "refused", err[:240]
    if r.returncode != 0:
        return "CRASH", "exit %d: %s" % (r.returncode, err[:240])
    got = np.load(out_path)
    want = np.asarray(outputs[0])
    if want.dtype != np.float32:
        return "skipped", "the expected output is %s" % want.dtype
    if got.shape != want.shape:
        return "WRONG", "shape %s, expected %s" % (got.shape, want.shape)
    if not np.allclose(got, want, rtol=1e-3, atol=1e-5, equal_nan=True):
        diff = np.max(np.abs(got.astype(np.float64) - want))
        return "WRONG", "max |diff| %.3g" % diff
    return "match", ""


def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        numpy_aliases(np)
        import onnx
        from onnx import numpy_helper
        import onnx.backend.test.case.node as node_cases
    except Exception as e:  # ImportError, or a broken install
        print("skipped: python3-onnx and python3-numpy are needed (%s: %s)" % (type(e).__name__, e))
        return SKIP
    if not (os.path.isfile(args.ionn) and os.access(args.ionn, os.X_OK)):
        print("error: --ionn %s is not an executable file" % args.ionn, file=sys.stderr)
        return 2
    import warnings
    warnings.filterwarnings("ignore")
    work = tempfile.mkdtemp(prefix="onnx_node_")
    claimed = claimed_operators(args.ionn, onnx, work)
    wanted = set(s.strip() for s in args.ops.split(",")) if args.ops else claimed
    unknown = wanted - claimed
    if unknown:
        print("error: ionn does not claim %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    cases = node_cases.collect_testcases(None)
    counts = collections.defaultdict(collections.Counter)
    bad = []
    for case in cases:
        ops = [n.op_type for n in case.model.graph.node]
        if not ops or not all(op in claimed for op in ops) or not any(op in wanted for op in ops):
            continue
        op = ops[-1]
        for k, (inputs, outputs) in enumerate(case.data_sets):
            verdict, detail = run_case(args, np, onnx, numpy_helper, case, list(inputs), list(outputs), work)
            counts[op][verdict] += 1
            line = "%-8s %-55s %s" % (verdict, case.name + ("" if k == 0 else "#%d" % k), detail)
            if verdict in ("WRONG", "CRASH"):
                bad.append(line)
            if args.verbose or verdict in ("WRONG", "CRASH"):
                print(line)
    verdicts = ["match", "refused", "WRONG", "CRASH", "skipped"]
    print("%-22s %s" % ("operator", " ".join("%8s" % v for v in verdicts)))
    total = collections.Counter()
    short = []
    for op in sorted(counts):
        print("%-22s %s" % (op, " ".join("%8d" % counts[op][v] for v in verdicts)))
        total.update(counts[op])
        ran = sum(counts[op][v] for v in verdicts if v != "skipped")
        if op in args.expect_match.split(",") and ran and counts[op]["match"] < args.min_match * ran:
            short.append("%s: %d of %d match (want %.0f%%)" % (op, counts[op]["match"], ran, 100 * args.min_match))
    print("%-22s %s" % ("all", " ".join("%8d" % total[v] for v in verdicts)))
    for op in args.expect_match.split(","):
        if op in wanted and not sum(counts[op][v] for v in verdicts if v != "skipped"):
            short.append("%s: no case ran" % op)
    for s in short:
        print("too few match: " + s)
    return 1 if bad or short else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
