#!/usr/bin/env bash
# Writes the cost graphs of bench/data/{vit_b_16,swin_t}_layer_costs.json:
# torchvision's vit_b_16 and swin_t (seeded, opset 17) exported by PyTorch,
# profiled on this machine (`ionn profile`, 1 thread); the server is this
# machine, the client 10x slower (so that offloading pays), 80 Mbps, layer
# granularity. plan_bench --costs times the planners on them.
# Usage: bash bench/transformer_costs.sh [OUT_DIR]   (needs scripts/setup.sh --torch)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/data}
ionn=build/bin/ionn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import sys, torch, torchvision
torch.manual_seed(0)
for name in ("vit_b_16", "swin_t"):
    m = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), f"{sys.argv[1]}/{name}.onnx", opset_version=17,
                      input_names=["x"], output_names=["y"])
PY
for name in vit_b_16 swin_t; do
  "$ionn" profile "$work/$name.onnx" --warmup 1 --repeats 3 -o "$work/$name.csv" >/dev/null
  /usr/bin/python3 - "$work/$name" <<'PY'
import csv, sys
base = sys.argv[1]
rows = list(csv.DictReader(open(base + ".csv")))
with open(base + "_client.csv", "w") as c, open(base + "_server.csv", "w") as s:
    c.write("layer,client_ms,server_ms\n")
    s.write("layer,client_ms,server_ms\n")
    for r in rows:
        c.write(f"{r['layer']},{float(r['client_ms']) * 10},\n")
        s.write(f"{r['layer']},,{r['client_ms']}\n")
PY
  "$ionn" costs "$work/$name.onnx" --client-profile "$work/${name}_client.csv" \
    --server-profile "$work/${name}_server.csv" --granularity layer -o "$out/${name}_layer_costs.json"
  echo "wrote $out/${name}_layer_costs.json"
done
