#!/usr/bin/python3
"""torchvision's CNNs for engine_bench.sh: exports each to ONNX (opset 13,
seeded random weights) and times it in PyTorch (Debian python3-torch): traced,
frozen, torch.jit.optimize_for_inference, batch 1.
Usage: torchvision_bench.py --out DIR --seconds S [--threads 1,2] [family ...]
Writes DIR/FAMILY.onnx (tv_alexnet and tv_googlenet for torchvision's
AlexNet and GoogLeNet, beside the zoo's); prints one line per family and
thread count:
name threads median_ms runs
"""
import argparse
import os
import statistics
import time

import torch
import torchvision

FAMILIES = ["alexnet", "googlenet", "vgg11", "vgg11_bn", "resnet18", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "squeezenet1_1",
            "inception_v3", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x1_0",
            "mnasnet1_0", "efficientnet_b0", "regnet_y_400mf",
            "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50"]
# Issue 23's other families: named with --families (not in the default run).
NEWER = ["convnext_tiny", "vit_b_16", "swin_t", "maxvit_t", "efficientnet_v2_s", "ssdlite320_mobilenet_v3_large",
         "retinanet_resnet50_fpn"]
SEGMENTATION = {"lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50"}
# Detection: backbone and head without box decoding and NMS (two outputs),
# at this input size.
DETECTION = {"ssdlite320_mobilenet_v3_large": 320, "retinanet_resnet50_fpn": 512}


class OutHead(torch.nn.Module):
    """A segmentation model's "out" tensor (its dict is not traceable)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


class DetectionHead(torch.nn.Module):
    """A detector's backbone and head: (box regression, class logits)."""

    def __init__(self, det):
        super().__init__()
        self.det = det

    def forward(self, x):
        features = self.det.backbone(x)
        features = list(features.values()) if isinstance(features, dict) else [features]
        out = self.det.head(features)
        return out["bbox_regression"], out["cls_logits"]


def build(name):
    kw = {}
    if name in ("googlenet", "inception_v3"):
        kw = dict(aux_logits=False, init_weights=True, transform_input=False)
    torch.manual_seed(0)
    if name in SEGMENTATION:
        return OutHead(getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)).eval()
    if name in DETECTION:
        return DetectionHead(getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None)).eval()
    return getattr(torchvision.models, name)(weights=None, **kw).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("families", nargs="*")
    args = ap.parse_args()
    for name in args.families or FAMILIES:
        model = build(name)
        size = DETECTION.get(name, 299 if name == "inception_v3" else 224)
        x = torch.randn(1, 3, size, size)
        label = "tv_" + name if name in ("alexnet", "googlenet") else name
        torch.onnx.export(model, x, os.path.join(args.out, label + ".onnx"), opset_version=13,
                          input_names=["input"],
                          output_names=["boxes", "scores"] if name in DETECTION else ["logits"])
        with torch.no_grad():
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                for _ in range(3):
                    fast(x)
                times, end = [], time.time() + args.seconds
                while time.time() < end or len(times) < 5:
                    t0 = time.perf_counter()
                    fast(x)
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"{label} {threads} {statistics.median(times):.2f} {len(times)}", flush=True)


if __name__ == "__main__":
    main()
