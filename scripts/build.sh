#!/usr/bin/env bash
# Configures and builds ionn (Release by default) into build/.
# Extra CMake arguments pass through, e.g. -DIONN_SANITIZE=address.
# --target aarch64 cross-builds for 64-bit ARM into build-aarch64/ (the
# library, the command line and the tests; no OpenCV, Python module or
# benchmarks), with cmake/toolchains/aarch64-linux-gnu.cmake: run
# `scripts/setup.sh --target aarch64` first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--target" ]; then
  target=${2:-}
  shift 2 || { echo "build: --target aarch64" >&2; exit 2; }
  case "$target" in
    aarch64) ;;
    *) echo "build: --target aarch64 (armhf: not yet), not '$target'" >&2; exit 2 ;;
  esac
  if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    echo "build: no aarch64-linux-gnu-g++: run scripts/setup.sh --target aarch64 (Debian crossbuild-essential-arm64)" >&2
    exit 2
  fi
  cmake -S . -B "build-$target" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
    -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$target-linux-gnu.cmake" \
    -DIONN_WITH_OPENCV=OFF -DIONN_BUILD_PYTHON=OFF -DIONN_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "build-$target" -j"$(nproc)"
  exit 0
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build build -j"$(nproc)"
