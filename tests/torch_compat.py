#!/usr/bin/python3
"""Compatibility test of ionn against PyTorch (torchvision models exported to ONNX).

For each torchvision family (random init, weights=None: no network) and each ONNX
opset: export with torch.onnx.export, run the model with `ionn run`, compare the
logits with PyTorch's, and check that a cost graph can be built and planned
(`ionn profile` for the client times, `ionn calibrate --quick` for the server's
regression, `ionn plan`); on the first opset, also that no oneDNN reference
implementation runs on every query, natively and capped to AVX2
(no_reference_test.py).

Run with Debian's interpreter (/usr/bin/python3), which has python3-torch,
python3-torchvision and python3-onnx:

  /usr/bin/python3 tests/torch_compat.py --ionn build/bin/ionn --out /tmp/tc [--quick]

Exit status: 0 all pass, 1 some failed, 2 usage error, 77 torch/torchvision/onnx missing.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import no_reference_test as no_reference  # noqa: E402

ALL_FAMILIES = [
    "alexnet", "vgg11", "vgg11_bn", "resnet18", "resnext50_32x4d", "wide_resnet50_2",
    "densenet121", "squeezenet1_1", "googlenet", "inception_v3", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x1_0", "mnasnet1_0",
    "efficientnet_b0", "regnet_y_400mf",
    # segmentation (torchvision.models.segmentation; the "out" head, every
    # output element compared): Resize
    "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50",
    # ConvNeXt: LayerNorm (opset 17; its parts before), MatMul over
    # channels-last tensors, GELU as Erf
    "convnext_tiny",
    # ViT: attention (MatMul of two computed tensors, Softmax over the last
    # axis), the class token (Concat with a constant, Gather of index 0)
    "vit_b_16",
    # Swin: shifted windows (their masks and shifts folded at import:
    # Equal, Where, Mod, Range, ScatterND), patch merging (strided Slice)
    "swin_t",
    # MaxViT: MBConv blocks, block and grid attention (Einsum), relative
    # position bias (Gather of a constant index table)
    "maxvit_t",
    "efficientnet_v2_s",
    # detection: backbone and head without box decoding and NMS (two
    # outputs, box regression and class logits, each compared)
    "ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn",
]
# Families the default opsets (not --opsets) run at 13 and 17 only: the
# issue's opsets for them, and CI's time (each export takes up to a minute).
RECENT_OPSETS = {f: [13, 17] for f in ("convnext_tiny", "vit_b_16", "swin_t", "maxvit_t", "efficientnet_v2_s",
                                         "ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn")}
SEGMENTATION_FAMILIES = {"lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50"}
# The families re-exported with dynamic_axes on batch, height and width and
# run with --input-shape (--no-dynamic skips it), and the input size that run
# takes: another than the first export's where the model allows one (ViT's
# position embedding, Swin's and MaxViT's windows want 224).
DYNAMIC_SIZES = {"lraspp_mobilenet_v3_large": 256, "deeplabv3_mobilenet_v3_large": 256, "fcn_resnet50": 256,
                 "convnext_tiny": 256, "vit_b_16": 224, "swin_t": 224, "maxvit_t": 224, "efficientnet_v2_s": 256,
                 "ssdlite320_mobilenet_v3_large": 352, "retinanet_resnet50_fpn": 384}
# Detection families and their input size (the detector's own resize left out).
DETECTION_FAMILIES = {"ssdlite320_mobilenet_v3_large": 320, "retinanet_resnet50_fpn": 512}
QUICK_FAMILIES = ["alexnet", "resnet18", "mobilenet_v3_small", "shufflenet_v2_x1_0",
                  "efficientnet_b0", "squeezenet1_1", "lraspp_mobilenet_v3_large"]
SKIP_MESSAGE = ("skipped: install python3-torchvision python3-onnx "
                "(apt-get install python3-torch python3-torchvision python3-onnx) "
                "and run with /usr/bin/python3")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ionn", required=True, help="the ionn binary")
    p.add_argument("--out", required=True, help="work folder (created if missing)")
    p.add_argument("--opsets", default=None,
                   help="comma-separated ONNX opsets (default 11,13,17; 13 with --quick)")
    p.add_argument("--families", default=None,
                   help="comma-separated torchvision families (default: all)")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="max |diff| <= tol * max |torch logit|")
    p.add_argument("--keep", action="store_true", help="keep the exported models and files")
    p.add_argument("--json", default=None, help="write a summary here")
    p.add_argument("--quick", action="store_true",
                   help="opset 13 and a subset: " + ",".join(QUICK_FAMILIES))
    p.add_argument("--no-plan", action="store_true", help="skip the profile+plan step")
    p.add_argument("--no-dynamic", action="store_true",
                   help="skip the re-export with dynamic axes (run with --input-shape) of: " +
                        ",".join(sorted(DYNAMIC_SIZES)))
    p.add_argument("--inventory", default=None,
                   help="write the ONNX op inventory of every export here (JSON) "
                        "and print a compact one")
    p.add_argument("--timeout", type=float, default=600, help="seconds per ionn command")
    a = p.parse_args(argv)
    a.default_opsets = a.opsets is None
    if a.opsets is None:
        a.opsets = "13" if a.quick else "11,13,17"
    if a.quick:
        if a.families is None:
            a.families = ",".join(QUICK_FAMILIES)
    a.opset_list = [int(s) for s in a.opsets.split(",") if s.strip()]
    a.family_list = [s.strip() for s in (a.families or ",".join(ALL_FAMILIES)).split(",") if s.strip()]
    unknown = [f for f in a.family_list if f not in ALL_FAMILIES]
    if unknown:
        p.error("unknown families: " + ",".join(unknown))
    return a


# ---------------------------------------------------------------- models

def build_model(torch, torchvision, family):
    """The model (eval mode, seeded, BatchNorm statistics randomised) and its input."""
    torch.manual_seed(0)
    kwargs = {"weights": None}
    if family in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True, transform_input=False)
    if family in SEGMENTATION_FAMILIES:
        class OutHead(torch.nn.Module):  # the dict's "out" tensor (no aux head without weights)
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(x)["out"]

        model = OutHead(getattr(torchvision.models.segmentation, family)(weights=None, weights_backbone=None))
    elif family in DETECTION_FAMILIES:
        class Head(torch.nn.Module):  # backbone features into the head: (box regression, class logits)
            def __init__(self, det):
                super().__init__()
                self.det = det

            def forward(self, x):
                features = self.det.backbone(x)
                features = list(features.values()) if isinstance(features, dict) else [features]
                out = self.det.head(features)
                return out["bbox_regression"], out["cls_logits"]

        model = Head(getattr(torchvision.models.detection, family)(weights=None, weights_backbone=None))
    else:
        model = getattr(torchvision.models, family)(**kwargs)
    model.eval()
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=g))
                    m.bias.copy_(0.05 * torch.randn(n, generator=g))
            # LayerNorm's affine part starts as the identity and ConvNeXt's
            # layer scale at 1e-6 (a block would add nearly nothing): both
            # randomised, so that a wrong block shows.
            if isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
            # ViT's classifier starts at zero (every logit 0): random too.
            if isinstance(m, torch.nn.Linear) and not m.weight.any():
                m.weight.copy_(0.02 * torch.randn(m.weight.shape, generator=g))
            if isinstance(getattr(m, "layer_scale", None), torch.nn.Parameter):
                m.layer_scale.copy_(0.3 + 0.1 * torch.randn(m.layer_scale.shape, generator=g))
    size = DETECTION_FAMILIES.get(family, 299 if family == "inception_v3" else 224)
    x = torch.randn(1, 3, size, size, generator=g)
    return model, x


# ---------------------------------------------------------------- dynamic shapes

def dynamic_check(args, np, torch, model, family, opset, fdir):
    """The model exported with symbolic batch, height and width, run by ionn at
    another size given with --input-shape, every output against PyTorch's."""
    t0 = time.time()
    r = {"family": family, "opset": "%dd" % opset, "ok": False}
    size = DYNAMIC_SIZES[family]
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(99))
    path = os.path.join(fdir, "%s_dynamic.onnx" % family)
    in_path = os.path.join(fdir, "dynamic_input.npy")
    np.save(in_path, x.numpy())
    try:
        with torch.no_grad():
            ref = model(x)
        refs = [t.detach().numpy().astype(np.float32) for t in (ref if isinstance(ref, tuple) else (ref,))]
        names = ["output%d" % i for i in range(len(refs))]
        axes = {"input": {0: "batch", 2: "height", 3: "width"}}
        axes.update({n: {0: "batch"} for n in names})
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=names,
                          dynamic_axes=axes, do_constant_folding=True)
    except Exception as e:
        r["stage"], r["error"] = "export", ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:300]
        refs = []
    out_paths = [os.path.join(fdir, "dynamic_%d.npy" % i) for i in range(len(refs))]
    if refs:
        # Without the shape, a symbolic dimension is an error naming it.
        rc, out = run_ionn(args, ["run", path, "--repeats", "1"])
        if rc != 2 or "height" not in out:
            r["stage"], r["error"] = "run", "without --input-shape: rc %s: %s" % (rc, first_error_line(out))
    if refs and "stage" not in r:
        rc, out = run_ionn(args, ["run", path, "--input", in_path, "--repeats", "1", "--input-shape",
                                  "input=1x3x%dx%d" % (size, size)] +
                           [a for p in out_paths for a in ("--output-tensor", p)])
        if rc != 0:
            r["stage"], r["error"] = "run", "rc %s: %s" % (rc, first_error_line(out))
    if refs and "stage" not in r:
        msgs = []
        for i, (want, p) in enumerate(zip(refs, out_paths)):
            ok, msg = compare(np, want, np.load(p), args.tol)
            msgs.append(msg if len(refs) == 1 else "output %d: %s" % (i, msg))
            if not ok:
                r["stage"], r["error"] = "compare", msg
        r["compare"] = "; ".join(msgs)
    r["ok"] = "stage" not in r
    r["seconds"] = round(time.time() - t0, 1)
    line = "%-20s opset %-2s %s dynamic axes, run at 1x3x%dx%d with --input-shape" % (
        family, r["opset"], "PASS" if r["ok"] else "FAIL", size, size)
    line += (" | %s: %s" % (r["stage"], r["error"])) if not r["ok"] else " | " + r["compare"]
    print(line + " [%.1fs]" % r["seconds"])
    sys.stdout.flush()
    if not args.keep:
        for p in [path, in_path] + out_paths:
            if os.path.exists(p):
                os.remove(p)
    return r


# ---------------------------------------------------------------- running ionn

def first_error_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if "error" in l.lower() or "ionn:" in l.lower() or "cannot" in l.lower() \
                or "unsupported" in l.lower() or "not " in l.lower():
            return l[:300]
    return (lines[0][:300] if lines else "(no output)")


def run_ionn(args, cmd):
    """(rc, combined output); rc None on timeout. Work-folder paths are shortened."""
    try:
        r = subprocess.run([args.ionn] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=args.timeout)
        out = r.stdout.decode("utf-8", "replace")
        return r.returncode, out.replace(os.path.join(os.path.abspath(args.out), ""), "")
    except subprocess.TimeoutExpired:
        return None, "timed out after %gs" % args.timeout


def compare(np, ref, got, tol):
    """(ok, message). Same top-5 in order (near-ties allowed) and max|diff| <= tol*scale."""
    ref = ref.reshape(-1).astype(np.float64)
    got = got.reshape(-1).astype(np.float64)
    if ref.shape != got.shape:
        return False, "shape %s, want %s" % (got.shape, ref.shape)
    if not np.all(np.isfinite(got)):
        return False, "non-finite output (%d of %d)" % (np.sum(~np.isfinite(got)), got.size)
    scale = max(float(np.max(np.abs(ref))), 1e-12)
    diff = float(np.max(np.abs(ref - got)))
    eps = tol * scale
    k = min(5, ref.size)
    top_ref = list(np.argsort(-ref, kind="stable")[:k])
    top_got = list(np.argsort(-got, kind="stable")[:k])
    top_ok = True
    if top_ref != top_got:
        # Near-ties: at every rank, the class ionn puts there must be, by torch's own
        # logits, within eps of torch's class at that rank.
        for i in range(k):
            if abs(ref[top_got[i]] - ref[top_ref[i]]) > eps:
                top_ok = False
                break
    msg = "max|diff| %.3g (%.3g of max|logit| %.3g)" % (diff, diff / scale, scale)
    if not top_ok:
        return False, "top-5 %s, torch %s; %s" % (top_got, top_ref, msg)
    if diff > eps:
        return False, msg + " > tol %g" % tol
    if top_ref != top_got:
        msg += "; top-5 order differs only by near-ties"
    return True, msg


# ---------------------------------------------------------------- op inventory

def _const_values(onnx, numpy_helper, model):
    """name -> ('init'|'const', numpy array) for initializers and Constant outputs."""
    vals = {}
    for t in model.graph.initializer:
        vals[t.name] = ("init", numpy_helper.to_array(t))
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = ("const", numpy_helper.to_array(a.t))
                elif a.name in ("value_float", "value_int"):
                    vals[n.output[0]] = ("const", onnx.helper.get_attribute_value(a))
                elif a.name in ("value_floats", "value_ints"):
                    vals[n.output[0]] = ("const", list(onnx.helper.get_attribute_value(a)))
    return vals


def _fmt_val(v):
    try:
        import numpy as np
        arr = np.asarray(v)
        if arr.size > 8:
            return "%s%s" % (arr.dtype, list(arr.shape))
        lst = arr.reshape(-1).tolist()
        if arr.ndim == 0:
            lst = lst[0]
        if isinstance(lst, float):
            return "%.4g" % lst
        if isinstance(lst, list):
            return "[" + ",".join(("%.4g" % e) if isinstance(e, float) else str(e) for e in lst) + "]"
        return str(lst)
    except Exception:  # pragma: no cover
        return str(v)


def _input_desc(vals, name):
    if name == "":
        return "-"
    if name in vals:
        kind, v = vals[name]
        return "%s%s" % (kind, _fmt_val(v))
    return "dyn"


# Attributes worth reporting per op type (others: all, small ones).
_SKIP_ATTRS = {"Conv": {"kernel_shape", "pads", "strides"}}


def op_inventory(onnx, numpy_helper, path):
    """{op_type: {'count': n, 'sigs': sorted distinct signatures}} of the graph at path."""
    model = onnx.load(path, load_external_data=False)
    vals = _const_values(onnx, numpy_helper, model)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    inv = {}
    for n in model.graph.node:
        e = inv.setdefault(n.op_type, {"count": 0, "sigs": set()})
        e["count"] += 1
        if n.op_type == "Constant":
            continue
        parts = []
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            w = shapes.get(n.input[1]) if len(n.input) > 1 else None
            g = attrs.get("group", 1)
            if g == 1:
                kind = "g1"
            elif w is not None and w[1] == 1:
                kind = "depthwise"
            else:
                kind = "grouped"
            parts.append(kind)
            ks = attrs.get("kernel_shape")
            if ks is not None:
                parts.append("k" + "x".join(str(k) for k in ks))
            if any(d != 1 for d in attrs.get("dilations", [1])):
                parts.append("dil" + _fmt_val(attrs["dilations"]))
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                parts.append("auto_pad=%s" % attrs["auto_pad"])
            pads = attrs.get("pads")
            if pads and len(pads) % 2 == 0 and pads[:len(pads) // 2] != pads[len(pads) // 2:]:
                parts.append("asym-pads" + _fmt_val(pads))
            parts.append("bias" if len(n.input) > 2 and n.input[2] else "nobias")
        else:
            for k in sorted(attrs):
                if k in _SKIP_ATTRS.get(n.op_type, ()):
                    continue
                v = attrs[k]
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "replace")
                elif hasattr(v, "dims"):  # a TensorProto attribute
                    v = numpy_helper.to_array(v)
                parts.append("%s=%s" % (k, _fmt_val(v) if not isinstance(v, str) else v))
            # Inputs beyond the data input: where they come from and small values.
            first_const_only = n.op_type in ("Reshape", "Split", "Slice", "Pad", "Clip",
                                             "ReduceMean", "Unsqueeze", "Squeeze", "Gather",
                                             "Resize", "Expand", "Tile", "ConstantOfShape")
            if first_const_only or n.op_type in ("Mul", "Add", "Div", "Sub", "Concat"):
                for i, name in enumerate(n.input[1:], start=1):
                    if n.op_type in ("Mul", "Add", "Div", "Sub", "Concat"):
                        if name in vals:
                            parts.append("in%d=%s" % (i, _input_desc(vals, name)))
                        continue
                    parts.append("in%d=%s" % (i, _input_desc(vals, name)))
                if n.op_type in ("Mul", "Add", "Div", "Sub") and n.input and n.input[0] in vals:
                    parts.append("in0=%s" % _input_desc(vals, n.input[0]))
            if n.op_type == "Identity":
                parts.append("in0=%s" % _input_desc(vals, n.input[0]))
            if n.op_type in ("Mul", "Add", "Div", "Sub", "Concat") and not parts:
                parts.append("dyn")
        e["sigs"].add(" ".join(parts))
    out = {}
    for op, e in sorted(inv.items()):
        out[op] = {"count": e["count"], "sigs": sorted(s for s in e["sigs"] if s)}
    return {"ops": out, "ir_version": model.ir_version,
            "opset": [(o.domain or "ai.onnx", o.version) for o in model.opset_import],
            "initializers": len(model.graph.initializer)}


def format_inventory(inv, only=None):
    items = []
    for op, e in inv["ops"].items():
        if only is not None and op not in only:
            continue
        s = "%s×%d" % (op, e["count"])
        if e["sigs"]:
            s += "{" + "; ".join(e["sigs"]) + "}"
        items.append(s)
    return ", ".join(items)


def inventory_diff(base, other):
    """Op types whose count or signatures differ, and op types only in one of them."""
    changed = set()
    for op in set(base["ops"]) | set(other["ops"]):
        if base["ops"].get(op) != other["ops"].get(op):
            changed.add(op)
    gone = sorted(op for op in changed if op not in other["ops"])
    return changed, gone


# ---------------------------------------------------------------- main

def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        import torch
        import torchvision
        import onnx
        from onnx import numpy_helper
    except Exception as e:  # ImportError, or a broken install
        print(SKIP_MESSAGE)
        print("  (import failed: %s: %s)" % (type(e).__name__, e))
        return 77
    if not (os.path.isfile(args.ionn) and os.access(args.ionn, os.X_OK)):
        print("error: --ionn %s is not an executable file" % args.ionn, file=sys.stderr)
        return 2
    args.ionn = os.path.abspath(args.ionn)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    import warnings
    warnings.filterwarnings("ignore")
    print("torch %s, torchvision %s, onnx %s; ionn %s; opsets %s; %d families; tol %g"
          % (torch.__version__, torchvision.__version__, onnx.__version__, args.ionn,
             ",".join(map(str, args.opset_list)), len(args.family_list), args.tol))
    sys.stdout.flush()

    regression = None
    regression_error = None
    if not args.no_plan:
        regression = os.path.join(args.out, "server_regression.csv")
        rc, out = run_ionn(args, ["calibrate", "--quick", "--repeats", "1", "-o", regression])
        if rc != 0:
            regression_error = "calibrate: " + first_error_line(out)
            print("calibrate --quick failed (rc %s): %s" % (rc, regression_error))

    results = []
    inventories = {}
    failed = 0
    t_start = time.time()
    for family in args.family_list:
        try:
            model, x = build_model(torch, torchvision, family)
            with torch.no_grad():
                ref = model(x)
            # Every output (detection heads have two), each compared.
            refs = [r.detach().numpy().astype(np.float32) for r in (ref if isinstance(ref, tuple) else (ref,))]
        except Exception as e:
            for opset in args.opset_list:
                r = {"family": family, "opset": opset, "ok": False,
                     "stage": "torch", "error": "%s: %s" % (type(e).__name__, e)}
                results.append(r)
                failed += 1
                print("%-20s opset %-2s FAIL torch: %s" % (family, opset, r["error"]))
            continue
        fdir = os.path.join(args.out, family)
        os.makedirs(fdir, exist_ok=True)
        in_path = os.path.join(fdir, "input.npy")
        np.save(in_path, x.numpy().astype(np.float32))
        output_names = ["logits"] if len(refs) == 1 else ["output%d" % i for i in range(len(refs))]
        opsets = args.opset_list
        if args.default_opsets and family in RECENT_OPSETS:
            opsets = [o for o in opsets if o in RECENT_OPSETS[family]] or opsets
        for opset in opsets:
            t0 = time.time()
            r = {"family": family, "opset": opset, "ok": False}
            path = os.path.join(fdir, "%s_op%d.onnx" % (family, opset))
            out_paths = [os.path.join(fdir, "ionn_op%d_%d.npy" % (opset, i)) for i in range(len(refs))]
            # export
            try:
                torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                                  output_names=output_names, do_constant_folding=True)
                r["export"] = "ok"
            except Exception as e:
                r["export"] = "fail"
                r["stage"] = "export"
                r["error"] = ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:300]
            if r.get("stage") is None and args.inventory:
                try:
                    inventories.setdefault(family, {})[opset] = op_inventory(onnx, numpy_helper, path)
                except Exception as e:
                    inventories.setdefault(family, {})[opset] = {"error": str(e)}
            # run
            if r.get("stage") is None:
                for p in out_paths:
                    if os.path.exists(p):
                        os.remove(p)
                rc, out = run_ionn(args, ["run", path, "--input", in_path, "--repeats", "1"] +
                                   [a for p in out_paths for a in ("--output-tensor", p)])
                if rc != 0 or not all(os.path.exists(p) for p in out_paths):
                    r["run"] = "fail"
                    r["stage"] = "run"
                    r["error"] = "rc %s: %s" % (rc, first_error_line(out))
                else:
                    r["run"] = "ok"
            # compare
            if r.get("stage") is None:
                ok, msgs = True, []
                for i, (ref, p) in enumerate(zip(refs, out_paths)):
                    try:
                        one_ok, msg = compare(np, ref, np.load(p), args.tol)
                    except Exception as e:
                        one_ok, msg = False, "cannot read %s: %s" % (p, e)
                    ok = ok and one_ok
                    msgs.append(msg if len(refs) == 1 else "output %d: %s" % (i, msg))
                msg = "; ".join(msgs)
                r["compare"] = msg
                r["compare_ok"] = ok
                if not ok:
                    r["stage"] = "compare"
                    r["error"] = msg
            # plan: client profile measured here, server times from the regression
            if r.get("export") == "ok" and not args.no_plan:
                if regression_error:
                    r["plan"] = "fail: " + regression_error
                else:
                    prof = os.path.join(fdir, "client_op%d.csv" % opset)
                    rc, out = run_ionn(args, ["profile", path, "--repeats", "1", "--warmup", "0",
                                              "-o", prof])
                    if rc != 0:
                        r["plan"] = "fail: profile rc %s: %s" % (rc, first_error_line(out))
                    else:
                        rc, out = run_ionn(args, ["plan", path, "--client-profile", prof,
                                                  "--regression", regression,
                                                  "--format", "json"])
                        if rc != 0:
                            r["plan"] = "fail: plan rc %s: %s" % (rc, first_error_line(out))
                            # Does planning work without the regression (server times =
                            # the client times measured here)? Tells coverage from planner.
                            both = os.path.join(fdir, "both_op%d.csv" % opset)
                            try:
                                with open(prof) as f, open(both, "w") as g:
                                    for i, l in enumerate(f):
                                        c = l.rstrip("\n").split(",")
                                        if i > 0 and len(c) == 3:
                                            c[2] = c[1]
                                        g.write(",".join(c) + "\n")
                                rc2, out2 = run_ionn(args, ["plan", path, "--client-profile", prof,
                                                            "--server-profile", both,
                                                            "--format", "json"])
                                r["plan_with_server_profile"] = (
                                    "ok" if rc2 == 0 else "fail: " + first_error_line(out2))
                            except OSError as e:
                                r["plan_with_server_profile"] = "fail: %s" % e
                            r["plan"] += " [with --server-profile: %s]" % r["plan_with_server_profile"]
                        else:
                            try:
                                # stderr is merged into `out`: its warnings (a fit that
                                # predicts 0 ms or less for some type) are not the JSON.
                                pj = json.loads("\n".join(l for l in out.splitlines()
                                                          if not l.startswith("ionn: warning:")))
                                r["plan"] = "ok (%d partitions)" % len(pj.get("partitions", []))
                            except Exception:
                                r["plan"] = "fail: plan output is not JSON: " + first_error_line(out)
                            # The same at block granularity (dominator collapse), and
                            # the simulator on the recursive-efficiency plan.
                            costs = ["--client-profile", prof, "--regression", regression]
                            for extra in (["plan", path] + costs + ["--granularity", "block", "--format", "json"],
                                          ["simulate", path] + costs + ["-a", "recursive-efficiency",
                                                                       "--format", "json"]):
                                if not r["plan"].startswith("ok"):
                                    break
                                rc, out = run_ionn(args, extra)
                                if rc != 0:
                                    r["plan"] = "fail: %s rc %s: %s" % (" ".join(extra[:1] + extra[-4:-2]), rc,
                                                                       first_error_line(out))
                            if r["plan"].startswith("ok"):
                                r["plan"] += ", block granularity and simulation ok"
                if not r["plan"].startswith("ok") and r.get("stage") is None:
                    r["stage"] = "plan"
                    r["error"] = r["plan"][len("fail: "):]
            # No oneDNN reference loop on a hot path (no_reference_test.py), at
            # this CPU's ISA and capped to AVX2: on the first opset's export.
            if r.get("stage") is None and opset == opsets[0]:
                r["reference"] = "ok"
                for isa in no_reference.ISAS:
                    _, slow = no_reference.check(args.ionn, path, isa)
                    if slow:
                        r["reference"] = "fail"
                    if slow and r.get("stage") is None:
                        r["stage"], r["error"] = "reference", slow[0].replace(path, "model") + (
                            " (and %d more)" % (len(slow) - 1) if len(slow) > 1 else "")
            r["ok"] = r.get("stage") is None
            r["seconds"] = round(time.time() - t0, 1)
            results.append(r)
            if not r["ok"]:
                failed += 1
            line = "%-20s opset %-2s %s export=%s run=%s compare=%s plan=%s reference=%s" % (
                family, opset, "PASS" if r["ok"] else "FAIL", r.get("export", "-"),
                r.get("run", "-"),
                "-" if "compare_ok" not in r else ("ok" if r["compare_ok"] else "fail"),
                ("ok" if r["plan"].startswith("ok") else "fail") if "plan" in r else "-", r.get("reference", "-"))
            if not r["ok"]:
                line += " | %s: %s" % (r["stage"], r["error"])
            elif "compare" in r:
                line += " | " + r["compare"]
            print(line + " [%.1fs]" % r["seconds"])
            sys.stdout.flush()
            if not args.keep:
                for p in [path, os.path.join(fdir, "client_op%d.csv" % opset),
                          os.path.join(fdir, "both_op%d.csv" % opset)] + out_paths:
                    if os.path.exists(p):
                        os.remove(p)
        if family in DYNAMIC_SIZES and not args.no_dynamic:
            r = dynamic_check(args, np, torch, model, family, max(opsets), fdir)
            results.append(r)
            failed += 0 if r["ok"] else 1
        if not args.keep:
            for p in ("input.npy",):
                q = os.path.join(fdir, p)
                if os.path.exists(q):
                    os.remove(q)
            try:
                os.rmdir(fdir)
            except OSError:
                pass
        del model

    total = len(results)
    print("%d of %d passed (%.0fs)" % (total - failed, total, time.time() - t_start))

    if args.inventory:
        with open(args.inventory, "w") as f:
            json.dump(inventories, f, indent=1, sort_keys=True)
        print("\nONNX op inventory (first opset in full; later opsets: only op types that differ)")
        for family in args.family_list:
            invs = inventories.get(family, {})
            base = None
            for opset in args.opset_list:
                inv = invs.get(opset)
                if inv is None:
                    continue
                if "error" in inv:
                    print("%s op%d: inventory error %s" % (family, opset, inv["error"]))
                    continue
                if base is None:
                    base = inv
                    print("%s op%d: %s" % (family, opset, format_inventory(inv)))
                else:
                    changed, gone = inventory_diff(base, inv)
                    if not changed:
                        print("%s op%d: same" % (family, opset))
                    else:
                        s = format_inventory(inv, only=changed)
                        if gone:
                            s += (", " if s else "") + "gone: " + ",".join(gone)
                        print("%s op%d: Δ %s" % (family, opset, s))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__,
                       "onnx": onnx.__version__, "ionn": args.ionn, "tol": args.tol,
                       "opsets": args.opset_list, "passed": total - failed, "total": total,
                       "results": results}, f, indent=1)
    if not args.keep and regression and os.path.exists(regression):
        os.remove(regression)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
