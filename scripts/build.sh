#!/usr/bin/env bash
# Configures and builds ionn (Release by default) into build/.
# Extra CMake arguments pass through, e.g. -DIONN_SANITIZE=address.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build build -j"$(nproc)"
