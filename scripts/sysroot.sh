#!/usr/bin/env bash
# Makes a Debian 12 root for cross-building ionn (the target's headers and
# libraries, never run on this machine): the :arm64 -dev packages ionn needs
# and everything they depend on, downloaded by apt from this machine's own
# Debian sources into a private state (this system's packages are not
# touched: arm64 -dev packages cannot be installed beside the host's, e.g.
# oneDNN's dnnl_config.h differs per architecture) and unpacked with
# dpkg -x. Absolute symlinks are made to point inside the root.
#
# Usage: scripts/sysroot.sh aarch64 [ROOT]   (default ROOT: /opt/ionn-sysroot/aarch64)
set -euo pipefail
target=${1:?usage: scripts/sysroot.sh aarch64 [ROOT]}
case "$target" in
  aarch64) arch=arm64 ;;
  *) echo "sysroot: target aarch64 (armhf: not yet), not '$target'" >&2; exit 2 ;;
esac
root=${2:-/opt/ionn-sysroot/$target}
# The root is emptied before each unpacking: a folder of its own only.
case "$root" in
  /*/*) ;;
  *) echo "sysroot: ROOT must be an absolute path below a folder, e.g. /opt/ionn-sysroot/$target, not '$root'" >&2; exit 2 ;;
esac
packages=(libc6-dev libstdc++-12-dev libgomp1
          libdnnl-dev libonnx-dev libprotobuf-dev libgrpc++-dev libssl-dev prometheus-cpp-dev
          libgtest-dev libgmock-dev libzstd-dev libxnnpack-dev libpthreadpool-dev
          nlohmann-json3-dev libcli11-dev
          # only so that their CMake packages' file checks pass: the host's protoc and plugin run
          protobuf-compiler protobuf-compiler-grpc)
stamp="$root/.ionn-sysroot"
want="${packages[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "sysroot: $root is ready"
  exit 0
fi
state="$root.apt"
mkdir -p "$state/lists/partial" "$state/archives/partial" "$root"
touch "$state/status"
apt=(apt-get -q -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
     -o "Dir::State=$state" -o "Dir::State::status=$state/status" -o "Dir::Cache=$state"
     -o "Dir::Cache::archives=$state/archives" -o "Debug::NoLocking=1")
echo "sysroot: downloading the $arch packages into $state"
rm -f "$state"/archives/*.deb
"${apt[@]}" update >/dev/null
"${apt[@]}" install -y --download-only --no-install-recommends "${packages[@]}" >/dev/null
# Only what apt chooses this time, into an empty root: no older .deb left
# in the cache, no link re-rooted by an earlier run.
rm -rf "$root"
mkdir -p "$root"
debs=("$state"/archives/*.deb)
echo "sysroot: unpacking ${#debs[@]} packages into $root"
for deb in "${debs[@]}"; do
  dpkg-deb -x "$deb" "$root"
done
# /usr/lib/x/libz.so -> /lib/x/libz.so.1 would name the host's file: re-root.
find "$root" -type l -lname '/*' | while read -r link; do
  ln -sfn "$root$(readlink "$link")" "$link"
done
echo "$want" >"$stamp"
echo "sysroot: $root is ready ($(du -sh "$root" | cut -f1))"
