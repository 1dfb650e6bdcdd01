#!/usr/bin/env bash
# Fits the per-layer-type server prediction functions on this machine
# (ionn calibrate), then reports their error per layer type on the five zoo
# models against per-layer times measured here (ionn profile).
# Usage: bash bench/calibrate.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
bash scripts/setup.sh >/dev/null
bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== ionn calibrate --threads $threads"
build/bin/ionn calibrate --threads "$threads" -o "$tmp/regression.csv"
cat "$tmp/regression.csv"
for m in alexnet googlenet resnet50 inception_bn mobilenet; do
  echo
  echo "== $m: predicted against measured here (ionn profile --column server)"
  build/bin/ionn profile --zoo "$m" --threads "$threads" --column server -o "$tmp/$m.csv" 2>/dev/null
  build/bin/ionn predict --zoo "$m" --regression "$tmp/regression.csv" --compare "$tmp/$m.csv" --format csv 2>&1 >/dev/null |
    sed '/^$/d'
done

echo
echo "== the paper's published regression against the paper's published server times"
paper=data/profiles/odroid-xu4_gtx1080ti
for m in alexnet googlenet resnet50 inception_bn; do
  echo "-- $m"
  build/bin/ionn predict --zoo "$m" --regression "$paper/server_regression.csv" --compare "$paper/$m.csv" \
    --format csv 2>&1 >/dev/null | sed '/^$/d'
done
