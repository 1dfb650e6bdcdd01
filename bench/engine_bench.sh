#!/usr/bin/env bash
# Whole-model latency, batch 1: ionn against OpenCV DNN and PyTorch
# (Debian python3-torch, TorchScript with optimize_for_inference) on the
# same ONNX files, 1 and 2 threads. Installs python3-torch and python3-onnx
# when missing. Usage: bash bench/engine_bench.sh [seconds per measurement]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-2}
bash scripts/setup.sh
for p in python3-torch python3-onnx; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p"
done
bash scripts/build.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=(alexnet googlenet resnet50 inception_bn mobilenet)
files=()
for m in "${models[@]}"; do
  build/bin/ionn zoo "$m" -o "$tmp/$m.onnx" 2>/dev/null
  files+=("$tmp/$m.onnx")
done
for t in 1 2; do
  /usr/bin/python3 bench/torch_bench.py --threads "$t" --seconds "$seconds" "${files[@]}" >>"$tmp/torch.txt"
done
build/bin/engine_bench --seconds "$seconds" --torch "$tmp/torch.txt" --json "$tmp/engine.json"
