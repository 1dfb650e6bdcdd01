#!/usr/bin/env bash
# Whole-model latency, batch 1, 1 and 2 threads: ionn against OpenCV DNN,
# PyTorch (Debian python3-torch; TorchScript, frozen, optimize_for_inference)
# and ONNX Runtime (npm onnxruntime-node, CPU) on the same ONNX files: the
# five zoo models and torchvision's CNNs exported by PyTorch (opset 13).
# Installs python3-torch, python3-torchvision and python3-onnx when missing,
# and onnxruntime-node into bench/ort/node_modules (npm, --ignore-scripts:
# no GPU download).
#
# Usage: bash bench/engine_bench.sh [--isa native|avx2] [--families a,b,...] [seconds per measurement]
#
# --families: only these torchvision families (torchvision_bench.py's names,
# segmentation included), without the zoo models.
#
# --isa avx2 caps every engine that can be capped to AVX2, as on a CPU
# without AVX-512: ionn and PyTorch's oneDNN (ONEDNN_MAX_CPU_ISA), PyTorch's
# own kernels (ATEN_CPU_CAPABILITY), OpenCV DNN (OPENCV_CPU_DISABLE). ONNX
# Runtime has no such cap: its column stays at the machine's own ISA.
set -euo pipefail
cd "$(dirname "$0")/.."
isa=native
if [ "${1:-}" = "--isa" ]; then
  isa=${2:?--isa needs native or avx2}
  shift 2
fi
families=
if [ "${1:-}" = "--families" ]; then
  families=${2:?--families needs a comma-separated list}
  shift 2
fi
case "$isa" in
  native) ;;
  avx2)
    export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
    export OPENCV_CPU_DISABLE=AVX512_COMMON,AVX512_SKX  # the AVX-512 levels OpenCV 4.6 dispatches to
    echo "engine_bench: capped to AVX2 (ionn, PyTorch, OpenCV DNN); ONNX Runtime runs at the machine's own ISA" >&2
    ;;
  *) echo "engine_bench: --isa native or avx2, not '$isa'" >&2; exit 2 ;;
esac
seconds=${1:-2}
bash scripts/setup.sh --torch
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  (cd bench/ort && npm install --ignore-scripts --no-audit --no-fund --silent)
fi
bash scripts/build.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=()
if [ -z "$families" ]; then
  for m in alexnet googlenet resnet50 inception_bn mobilenet; do
    build/bin/ionn zoo "$m" -o "$tmp/$m.onnx" 2>/dev/null
    files+=("$tmp/$m.onnx")
  done
  for t in 1 2; do
    /usr/bin/python3 bench/torch_bench.py --threads "$t" --seconds "$seconds" "${files[@]}" >>"$tmp/torch.txt"
  done
fi
# shellcheck disable=SC2086  # the families, one word each
/usr/bin/python3 bench/torchvision_bench.py --out "$tmp" --seconds "$seconds" ${families//,/ } >>"$tmp/torch.txt"
files=("$tmp"/*.onnx)
/usr/bin/python3 - "$tmp/shapes.json" "${files[@]}" <<'PY'
import json, os, sys
import onnx
shapes = {}
for f in sys.argv[2:]:
    g = onnx.load(f, load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    x = next(i for i in g.input if i.name not in inits)
    shapes[os.path.basename(f)[:-5]] = [d.dim_value or 1 for d in x.type.tensor_type.shape.dim]
json.dump(shapes, open(sys.argv[1], "w"))
PY
for t in 1 2; do
  node bench/ort/ort_bench.js "$t" "$seconds" "$tmp/shapes.json" "${files[@]}" >>"$tmp/ort.txt"
done
build/bin/engine_bench --seconds "$seconds" --torch "$tmp/torch.txt" --ort "$tmp/ort.txt" --json "$tmp/engine.json" \
  "${files[@]}"
