#!/usr/bin/env bash
# PyTorch compatibility test: torchvision models exported to ONNX, run by ionn and
# compared with PyTorch's logits; planning checked too. See tests/torch_compat.py.
# Usage: tests/torch_compat.sh IONN_BINARY [torch_compat.py args...]  (e.g. --quick)
# Exit: 0 pass, 1 failures, 2 usage, 77 skipped (no python3-torch/torchvision/onnx).
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 IONN_BINARY [args...]" >&2
  exit 2
fi
ionn=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
py=${TORCH_COMPAT_PYTHON:-/usr/bin/python3}
if [ ! -x "$py" ]; then
  echo "skipped: $py not found; install python3-torchvision python3-onnx (apt-get install python3-torch python3-torchvision python3-onnx)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/torch_compat.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
"$py" "$here/torch_compat.py" --ionn "$ionn" --out "$tmp" "$@"
exit $?
