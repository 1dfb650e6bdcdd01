#!/usr/bin/env bash
# Installs the Debian 12 packages ionn builds and tests with, when missing.
# Nothing else is downloaded: every dependency is a Debian package.
# --torch adds PyTorch and torchvision (about 140 MB to download, 590 MB
# installed) for the test against PyTorch's exports (ctest torch_compat), and
# scikit-learn for the lossy upload encodings' accuracy on a CNN trained on
# its digits (ctest python).
# --target aarch64 adds what cross-building the client for 64-bit ARM and
# testing it under emulation needs: Debian's cross compilers, qemu-user, and
# a root of the arm64 libraries (scripts/sysroot.sh, /opt/ionn-sysroot).
set -euo pipefail
extra=()
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) extra+=(python3-torch python3-torchvision python3-onnx python3-sklearn) ;;
    --target)
      target=${2:-}
      shift
      case "$target" in
        aarch64) ;;
        *) echo "setup: --target aarch64 (armhf: not yet), not '$target'" >&2; exit 2 ;;
      esac
      ;;
    *) echo "usage: $0 [--torch] [--target aarch64]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$target" = aarch64 ]; then
  # The cross compilers and qemu-user here; the target's libraries in a root
  # of their own (scripts/sysroot.sh): Debian cannot install oneDNN's or
  # ONNX's arm64 -dev packages beside the host's.
  extra+=(crossbuild-essential-arm64 qemu-user)
fi
packages=(
  build-essential cmake pkg-config
  nlohmann-json3-dev libcli11-dev python3-jsonschema
  pybind11-dev python3-dev python3-numpy python3-pytest python3-matplotlib
  libprotobuf-dev protobuf-compiler libonnx-dev
  libgrpc++-dev protobuf-compiler-grpc libssl-dev openssl prometheus-cpp-dev
  libgtest-dev libzstd-dev libxnnpack-dev libpthreadpool-dev
  libdnnl-dev ocl-icd-opencl-dev
  libopencv-dnn-dev libopencv-imgcodecs-dev
  gnuplot-nox
  clang libclang-rt-14-dev libomp-14-dev
  "${extra[@]}"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq || true
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ -n "$target" ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" bash "$(dirname "$0")/sysroot.sh" "$target" "${IONN_SYSROOT:-/opt/ionn-sysroot/$target}"
fi
