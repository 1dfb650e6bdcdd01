#!/usr/bin/env bash
# Quick start 1: set up, build, and run the demo on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/bin/ionn demo "$@"
