#!/usr/bin/python3
"""PyTorch (Debian python3-torch) latency of ONNX models, for engine_bench.sh.

Builds each model in PyTorch from its ONNX file (the same architecture and
weights, node by node), traces it, freezes it and applies
torch.jit.optimize_for_inference, then times batch-1 inference.
Usage: torch_bench.py --threads N --seconds S model.onnx ...
Prints one line per model: name threads median_ms runs
"""
import argparse
import statistics
import time

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F


class OnnxModule(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        g = model.graph
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        inits = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.params = torch.nn.ParameterList()
        self.index = {}
        for name, t in inits.items():
            self.index[name] = len(self.params)
            self.params.append(torch.nn.Parameter(t, requires_grad=False))
        self.nodes = [(n.op_type, list(n.input), list(n.output),
                       {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in g.node]
        self.input_name = next(i.name for i in g.input if i.name not in inits)
        self.output_name = g.output[0].name

    def w(self, name):
        return self.params[self.index[name]]

    def forward(self, x):
        env = {self.input_name: x}
        for op, ins, outs, a in self.nodes:
            v = [env[i] if i in env else self.w(i) for i in ins if i]
            if op == "Conv":
                k = a.get("kernel_shape")
                p = a.get("pads", [0, 0, 0, 0])
                xin = v[0]
                if p[0] != p[2] or p[1] != p[3]:
                    xin, p = F.pad(xin, (p[1], p[3], p[0], p[2])), [0, 0, 0, 0]
                y = F.conv2d(xin, v[1], v[2] if len(v) > 2 else None, a.get("strides", [1, 1]), (p[0], p[1]),
                             a.get("dilations", [1, 1]), a.get("group", 1))
            elif op == "Relu":
                y = F.relu(v[0])
            elif op == "LRN":
                y = F.local_response_norm(v[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
            elif op in ("MaxPool", "AveragePool"):
                p = a.get("pads", [0, 0, 0, 0])
                k, s, pad, ceil = a["kernel_shape"], a.get("strides", [1, 1]), (p[0], p[1]), bool(a.get("ceil_mode", 0))
                if op == "MaxPool":
                    y = F.max_pool2d(v[0], k, s, pad, 1, ceil)
                else:
                    y = F.avg_pool2d(v[0], k, s, pad, ceil, bool(a.get("count_include_pad", 0)))
            elif op == "GlobalAveragePool":
                y = F.adaptive_avg_pool2d(v[0], 1)
            elif op == "Flatten":
                y = torch.flatten(v[0], a.get("axis", 1))
            elif op == "Gemm":
                y = F.linear(v[0], v[1] if a.get("transB", 0) else v[1].t(), v[2] if len(v) > 2 else None)
            elif op == "Dropout":
                y = v[0]
            elif op == "Softmax":
                shape = v[0].shape
                y = F.softmax(torch.flatten(v[0], 1), 1).reshape(shape)
            elif op == "Concat":
                y = torch.cat(v, a["axis"])
            elif op == "Add":
                y = v[0] + v[1]
            elif op == "BatchNormalization":
                y = F.batch_norm(v[0], v[3], v[4], v[1], v[2], False, 0.0, a.get("epsilon", 1e-5))
            else:
                raise ValueError("unsupported op " + op)
            env[outs[0]] = y
        return env[self.output_name]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.models:
        model = onnx.load(path)
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        m = OnnxModule(model).eval()
        x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32))
        with torch.no_grad():
            traced = torch.jit.trace(m, x)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            for _ in range(3):
                frozen(x)
            times = []
            start = time.perf_counter()
            while len(times) < 5 or time.perf_counter() - start < args.seconds:
                t0 = time.perf_counter()
                frozen(x)
                times.append((time.perf_counter() - t0) * 1000)
        print(f"{model.graph.name} {args.threads} {statistics.median(times):.2f} {len(times)}", flush=True)


if __name__ == "__main__":
    main()
