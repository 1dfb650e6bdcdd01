#!/usr/bin/env bash
# Regenerates EXPERIMENTS.md and docs/experiments/ (CSVs, figures), with the
# live runs of the real system on this machine (about ten minutes more:
# ionn experiment --live, and re-planning live through link traces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build/bin/ionn experiment --live --output docs/experiments --markdown EXPERIMENTS.md "$@"
# The sections other scripts keep in EXPERIMENTS.md (Python, the simulator).
export PYTHONPATH=$PWD/build/python
/usr/bin/python3 examples/python/compare_planners.py --markdown EXPERIMENTS.md >/dev/null
/usr/bin/python3 scripts/experiment_arrivals.py --markdown EXPERIMENTS.md >/dev/null
/usr/bin/python3 scripts/experiment_encodings.py --markdown EXPERIMENTS.md --figures docs/experiments >/dev/null
/usr/bin/python3 scripts/experiment_traces.py --markdown EXPERIMENTS.md >/dev/null
/usr/bin/python3 scripts/experiment_replan_live.py --markdown EXPERIMENTS.md >/dev/null
