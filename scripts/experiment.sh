#!/usr/bin/env bash
# Regenerates EXPERIMENTS.md and docs/experiments/ (CSVs, figures).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build/bin/ionn experiment --out docs/experiments --markdown EXPERIMENTS.md "$@"
