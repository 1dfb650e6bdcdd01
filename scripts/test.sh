#!/usr/bin/env bash
# Quick start 2: set up, build, and run every test. --torch also installs
# PyTorch and torchvision, so that the test against PyTorch (torch_compat)
# runs rather than reports itself skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
bash scripts/build.sh -DIONN_WERROR=ON
cd build && ctest --output-on-failure -j"$(nproc)"
