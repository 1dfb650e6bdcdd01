#!/usr/bin/env bash
# ionn as another project sees it: installs the build into a temporary
# prefix, builds examples/plan_alexnet against it (find_package(ionn)) and
# runs it. Extra arguments go to the example's cmake configure (the
# compiler and link flags of the build under test).
# Usage: install_test.sh build-dir source-dir [cmake-args...]
set -u
build=$1
src=$2
shift 2
tmp=$(mktemp -d)
# cmake --install writes the build's install_manifest.txt: the one of a real
# install, if any, is put back afterwards.
manifest=$build/install_manifest.txt
[ -f "$manifest" ] && cp -p "$manifest" "$tmp/manifest.saved"
restore() {
  if [ -f "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
  rm -rf "$tmp"
}
trap restore EXIT
prefix=$tmp/prefix
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Runs a command quietly; on failure prints its output and stops.
step() {
  local what=$1
  shift
  if ! "$@" >"$tmp/step.log" 2>&1; then
    cat "$tmp/step.log"
    echo "FAIL: $what"
    exit 1
  fi
}

step "cmake --install" cmake --install "$build" --prefix "$prefix"
for f in bin/ionn include/ionn/plan.h include/ionn/status.h share/ionn/cases/paper_fig2.json \
  share/ionn/profiles/odroid-xu4_gtx1080ti/alexnet.csv; do
  [ -f "$prefix/$f" ] || fail "not installed: $f"
done
for f in ionnConfig.cmake ionnConfigVersion.cmake ionnTargets.cmake; do
  [ -n "$(find "$prefix" -path "*/cmake/ionn/$f")" ] || fail "not installed: lib*/cmake/ionn/$f"
done
for lib in graph engine cost plan sim net; do
  [ -n "$(find "$prefix" -name "libionn_$lib.*")" ] || fail "not installed: libionn_$lib"
done
# The generated gRPC/protobuf headers are net's own.
[ -z "$(find "$prefix" -name '*.pb.h')" ] || fail "generated headers installed: $(find "$prefix" -name '*.pb.h')"
# Nothing in the installed package points back into the source or build tree.
if grep -rlF -e "$src/" -e "$build/" "$prefix"/lib*/cmake/ionn >/dev/null; then
  fail "the package names the build machine's trees: $(grep -rnF -e "$src/" -e "$build/" "$prefix"/lib*/cmake/ionn)"
fi

step "configure examples/plan_alexnet against $prefix" \
  cmake -S "$src/examples/plan_alexnet" -B "$tmp/example" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" "$@"
step "build examples/plan_alexnet" cmake --build "$tmp/example"
if ! out=$("$tmp/example/plan_alexnet" 2>&1); then
  echo "$out"
  fail "plan_alexnet exited non-zero"
fi
for algorithm in original recursive-efficiency; do
  grep -Eq "^$algorithm +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+$" <<<"$out" ||
    fail "no row for $algorithm in: $out"
done
# The installed data, found through the package's ionn_DATA_DIR.
grep -q "^AlexNet, [0-9]* layers" <<<"$out" || fail "no model line in: $out"
# ionn::net and ionn::engine link too (gRPC, OpenSSL, prometheus-cpp, oneDNN
# and OpenMP come from the package's find_dependency).
mkdir "$tmp/net"
cat >"$tmp/net/main.cc" <<'EOF'
#include "ionn/engine.h"
#include "ionn/server.h"
int main(int argc, char**) {
  if (argc > 99) return ionn::OffloadServer::Start({}).ok() && ionn::Engine::Create({}, {}).ok();
  return 0;
}
EOF
printf 'cmake_minimum_required(VERSION 3.20)\nproject(net LANGUAGES CXX)\nfind_package(ionn 0.1 REQUIRED)
add_executable(net main.cc)\ntarget_link_libraries(net PRIVATE ionn::net ionn::engine)\n' >"$tmp/net/CMakeLists.txt"
step "configure a project linking ionn::net" cmake -S "$tmp/net" -B "$tmp/net/build" -DCMAKE_PREFIX_PATH="$prefix" "$@"
step "build a project linking ionn::net" cmake --build "$tmp/net/build"
step "run a project linking ionn::net" "$tmp/net/build/net"
# The Python package, where Debian's python3 finds it under the prefix
# (/usr/local/lib/python3.X/dist-packages for the default prefix), with the
# installed data.
if [ -f "$build/python/ionn/__init__.py" ]; then
  pkg=$(find "$prefix" -path "*/dist-packages/ionn/__init__.py")
  if [ -z "$pkg" ]; then
    fail "not installed: the Python package ionn"
  elif ! py=$(cd "$tmp" && PYTHONPATH=$(dirname "$(dirname "$pkg")") IONN_DATA_DIR=$prefix/share/ionn /usr/bin/python3 -c "
import ionn
assert ionn.__file__.startswith('$prefix'), ionn.__file__
r = ionn.simulate(ionn.costs(ionn.load_model('alexnet', weights=False), paper_profiles=True))
print('installed ionn', r['queries_during_upload'])" 2>&1); then
    fail "import the installed ionn: $py"
  elif ! grep -q "^installed ionn [0-9][0-9]*$" <<<"$py"; then
    fail "the installed ionn said: $py"
  fi
fi
# A version other than the installed 0.x is refused.
mkdir "$tmp/v9"
printf 'cmake_minimum_required(VERSION 3.20)\nproject(v9 LANGUAGES CXX)\nfind_package(ionn 9 REQUIRED)\n' \
  >"$tmp/v9/CMakeLists.txt"
if cmake -S "$tmp/v9" -B "$tmp/v9/build" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/v9.log" 2>&1; then
  fail "find_package(ionn 9) accepted version $(grep -o 'set(PACKAGE_VERSION "[^"]*' "$prefix"/lib*/cmake/ionn/ionnConfigVersion.cmake)"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "$out"
echo "install: all checks passed"
