#!/usr/bin/python3
"""What import folds, against numpy: the constants transformers compute from
shapes (Swin's shifted-window masks and relative positions, ViT's class
token) built from Range, Mod, Equal, Less, Greater, And, Or, Not, Where,
Expand, ScatterND, Transpose, Pow and unary functions of constants, added to
a computed tensor so that `ionn run` shows every folded value; and Gather,
Concat and strided Slice of computed tensors with known indices, each model
through `ionn run` against numpy.

  /usr/bin/python3 tests/folding_test.py --ionn build/bin/ionn

Exit 0 all match, 1 some differ, 77 without python3-onnx.
"""

import argparse
import os
import subprocess
import sys
import tempfile


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ionn", required=True)
    args = p.parse_args(argv)
    try:
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper, TensorProto
    except ImportError as e:
        print("skipped: %s (apt-get install python3-onnx; run with /usr/bin/python3)" % e)
        return 77

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    cases = []

    # 1. Swin's attention mask, as torchvision writes it: regions of a
    # shifted 8x8 map (Range, Mod, ScatterND into zeros), compared pairwise
    # (Unsqueeze by Reshape, Sub, Equal, Not, Where), then added to x.
    n = 8
    rows = np.arange(n)
    regions = np.zeros((n, n), dtype=np.int64)
    upd = ((rows[:, None] >= 4).astype(np.int64) * 3 + (rows[None, :] >= 6)).astype(np.int64)
    idx = np.stack(np.meshgrid(rows, rows, indexing="ij"), axis=-1)
    flat = upd.reshape(-1)
    diff = flat[None, :] - flat[:, None]
    mask = np.where(np.logical_not(diff == 0), np.float32(-100.0), np.float32(0.0))
    nodes = [
        helper.make_node("Range", ["zero", "n", "one"], ["r"]),
        helper.make_node("Mod", ["r", "n"], ["rm"], fmod=0),
        helper.make_node("ScatterND", ["zeros", "idx", "upd"], ["reg"]),
        helper.make_node("Reshape", ["reg", "flat_shape"], ["flat"]),
        helper.make_node("Unsqueeze", ["flat", "ax0"], ["row"]),
        helper.make_node("Unsqueeze", ["flat", "ax1"], ["col"]),
        helper.make_node("Sub", ["row", "col"], ["diff"]),
        helper.make_node("Equal", ["diff", "zero64"], ["same"]),
        helper.make_node("Not", ["same"], ["other"]),
        helper.make_node("Where", ["other", "minus100", "zerof"], ["mask"]),
        helper.make_node("Add", ["x", "mask"], ["y"]),
    ]
    inits = [const("zero", np.int64(0)), const("n", np.int64(n)), const("one", np.int64(1)),
             const("zeros", np.zeros((n, n), np.int64)), const("idx", idx.astype(np.int64)), const("upd", upd),
             const("flat_shape", np.array([n * n], np.int64)), const("ax0", np.array([0], np.int64)),
             const("ax1", np.array([1], np.int64)), const("zero64", np.int64(0)),
             const("minus100", np.float32(-100.0)), const("zerof", np.float32(0.0))]
    cases.append(("swin mask", nodes, inits, (n * n, n * n), lambda x: x + mask))

    # 2. Relative positions: Expand, Transpose, Less, Greater, And, Or, Pow,
    # Abs, Neg, Sqrt, Exp, Log, Floor, Ceil, Cast of constants.
    coords = np.arange(6, dtype=np.float32).reshape(2, 3)
    e = np.broadcast_to(coords, (4, 2, 3))
    t = np.transpose(e, (2, 0, 1))
    band = np.logical_or(np.logical_and(t > 1, t < 4), t == 0)
    val = np.where(band, np.power(np.abs(-t) + 1, np.float32(1.5)), np.sqrt(np.exp(np.log(t + 2))))
    val = (np.floor(val) + np.ceil(val)).astype(np.float32)
    nodes = [
        helper.make_node("Expand", ["coords", "eshape"], ["e"]),
        helper.make_node("Transpose", ["e"], ["t"], perm=[2, 0, 1]),
        helper.make_node("Greater", ["t", "onef"], ["gt"]),
        helper.make_node("Less", ["t", "fourf"], ["lt"]),
        helper.make_node("And", ["gt", "lt"], ["inside"]),
        helper.make_node("Equal", ["t", "zerof"], ["first"]),
        helper.make_node("Or", ["inside", "first"], ["band"]),
        helper.make_node("Neg", ["t"], ["neg"]),
        helper.make_node("Abs", ["neg"], ["abs"]),
        helper.make_node("Add", ["abs", "onef"], ["abs1"]),
        helper.make_node("Pow", ["abs1", "threehalves"], ["pw"]),
        helper.make_node("Add", ["t", "twof"], ["t2"]),
        helper.make_node("Log", ["t2"], ["lg"]),
        helper.make_node("Exp", ["lg"], ["ex"]),
        helper.make_node("Sqrt", ["ex"], ["sq"]),
        helper.make_node("Where", ["band", "pw", "sq"], ["val"]),
        helper.make_node("Floor", ["val"], ["fl"]),
        helper.make_node("Ceil", ["val"], ["ce"]),
        helper.make_node("Add", ["fl", "ce"], ["v"]),
        helper.make_node("Mul", ["x", "v"], ["y"]),
    ]
    inits = [const("coords", coords), const("eshape", np.array([4, 1, 1], np.int64)),
             const("onef", np.float32(1)), const("fourf", np.float32(4)), const("zerof", np.float32(0)),
             const("twof", np.float32(2)), const("threehalves", np.float32(1.5))]
    cases.append(("relative positions", nodes, inits, (3, 4, 2), lambda x: x * val))

    # 3. ViT's class token and head: Concat with a constant, Gather of index
    # 0 (scalar: the axis goes) and of a list, a strided Slice (Swin's patch
    # merging) and a flip.
    cls = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 1, 8)
    nodes = [
        helper.make_node("Concat", ["cls", "x"], ["c"], axis=1),
        helper.make_node("Gather", ["c", "i0"], ["g0"], axis=1),
        helper.make_node("Gather", ["c", "ilist"], ["gl"], axis=1),
        helper.make_node("Slice", ["gl", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Reshape", ["s", "flat2"], ["sf"]),
        helper.make_node("Concat", ["g0", "sf"], ["y"], axis=1),
    ]
    inits = [const("cls", cls), const("i0", np.int64(0)), const("ilist", np.array([[4, 0], [2, -1]], np.int64)),
             const("st", np.array([1, -1], np.int64)), const("en", np.array([2, -9], np.int64)),
             const("ax", np.array([2, 3], np.int64)), const("sp", np.array([1, -2], np.int64)),
             const("flat2", np.array([1, -1], np.int64))]

    def vit(x):
        c = np.concatenate([cls, x], axis=1)
        g0 = c[:, 0]
        gl = np.take(c, np.array([[4, 0], [2, -1]]) % c.shape[1], axis=1)
        s = gl[:, :, 1:2, ::-2]
        return np.concatenate([g0, s.reshape(1, -1)], axis=1)
    cases.append(("class token", nodes, inits, (1, 5, 8), vit))

    failed = 0
    with tempfile.TemporaryDirectory(prefix="ionn_fold_") as work:
        rng = np.random.default_rng(0)
        for name, nodes, inits, shape, expect in cases:
            x = rng.standard_normal(shape).astype(np.float32)
            want = np.asarray(expect(x), dtype=np.float32)
            graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(want.shape))], inits)
            path = os.path.join(work, "m.onnx")
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
            np.save(os.path.join(work, "x.npy"), x)
            out = os.path.join(work, "y.npy")
            r = subprocess.run([args.ionn, "run", path, "--input", os.path.join(work, "x.npy"), "--output-tensor", out],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if r.returncode != 0:
                print("FAIL %-20s ionn: %s" % (name, r.stdout.decode("utf-8", "replace").strip()[-300:]))
                failed += 1
                continue
            got = np.load(out)
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                print("FAIL %-20s shape %s (want %s), max |diff| %s" % (
                    name, got.shape, want.shape, np.max(np.abs(got - want)) if got.shape == want.shape else "-"))
                failed += 1
            else:
                print("ok   %-20s %s" % (name, want.shape))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
