#!/usr/bin/env bash
# Quick start 2: set up, build, and run every test. --torch also installs
# PyTorch and torchvision, so that the test against PyTorch (torch_compat)
# runs rather than reports itself skipped.
#
# --target aarch64: the client for 64-bit ARM instead, cross-built
# (scripts/build.sh --target aarch64) and tested under qemu-user: the unit
# tests that finish in minutes there (IONN_CROSS_TESTS, a ctest regex, says
# which; the whole engine and net suites take over 15 minutes each) and the end-to-end
# test, the ARM `ionn client` against this machine's `ionn serve` through
# `ionn link`, every query checked (tests/cross_e2e_test.sh). Only
# correctness is measured under emulation, never speed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--target" ]; then
  target=${2:?--target aarch64}
  bash scripts/setup.sh --target "$target"
  bash scripts/build.sh -DIONN_WERROR=ON  # this machine's ionn: the server of the end-to-end test
  bash scripts/build.sh --target "$target" -DIONN_WERROR=ON -DIONN_HOST_IONN="$PWD/build/bin/ionn"
  cd "build-$target" && ctest --output-on-failure --no-tests=error -j"$(nproc)" -R "${IONN_CROSS_TESTS:-^(graph|cost|plan|sim|link|engine_kernels|cross_e2e)\$}"
  exit
fi
bash scripts/setup.sh "$@"
bash scripts/build.sh -DIONN_WERROR=ON
cd build && ctest --output-on-failure -j"$(nproc)"
