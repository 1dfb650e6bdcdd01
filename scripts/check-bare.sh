#!/usr/bin/env bash
# Proves that ionn sets up on a bare Debian 12 machine with only the README's
# two commands.
#
# It builds a minimal Debian 12 (bookworm, variant minbase: no compiler, no
# cmake, no make) root folder with debootstrap from this machine's own Debian
# mirror, copies in this machine's apt sources, clones the current HEAD of
# this repository into /root/ionn, and runs there, in a chroot, as root:
#
#   bash scripts/demo.sh
#   bash scripts/test.sh
#   PYTHONPATH=$PWD/build/python /usr/bin/python3 -c 'import ionn, ionn.plot; ...'
#
# (the last is README's "From Python" line). The first two call scripts/setup.sh, which must install every package the build and
# the tests need. Prints one PASS or FAIL line with the elapsed time and exits
# non-zero on failure. Only committed work is checked (a clone of HEAD).
#
# Usage (as root, on Debian):
#   bash scripts/check-bare.sh                 # temporary root, removed afterwards
#   bash scripts/check-bare.sh --keep          # keep the root for debugging
#   bash scripts/check-bare.sh --root /var/tmp/ionn-bare
#   bash scripts/check-bare.sh --help
#
# The freshly debootstrapped root is cached as a tarball (CHECK_BARE_CACHE,
# default /var/tmp/ionn-check-bare-cache) so that re-runs skip debootstrap;
# every run still unpacks it into a new, empty folder. --fresh rebuilds it.
set -euo pipefail

suite=bookworm
min_free_gib=8

usage() {
  cat <<EOF
Usage: bash scripts/check-bare.sh [--keep] [--root DIR] [--fresh] [--mirror URL]

Builds a bare Debian 12 (minbase) root, clones this repository's HEAD into
it and runs the README's quick start there (bash scripts/demo.sh, then
bash scripts/test.sh, then README's line for `import ionn`) in a chroot, as root. Prints PASS or FAIL.

  --keep        keep the root folder afterwards (also: CHECK_BARE_KEEP=1)
  --root DIR    build the root in DIR (must not exist or be empty);
                default: a new folder under /var/tmp
  --fresh       rebuild the cached debootstrap tarball
  --mirror URL  Debian mirror for debootstrap; default: the first bookworm
                mirror in /etc/apt/sources.list{,.d/*}
  -h, --help    this text

Environment: CHECK_BARE_CACHE (cache folder, default
/var/tmp/ionn-check-bare-cache), CHECK_BARE_KEEP=1 (same as --keep).
EOF
}

keep=${CHECK_BARE_KEEP:-0}
root=""
fresh=0
mirror=""
cache_dir=${CHECK_BARE_CACHE:-/var/tmp/ionn-check-bare-cache}
while (($#)); do
  case "$1" in
    --keep) keep=1 ;;
    --root) root=${2:?--root needs a folder}; shift ;;
    --root=*) root=${1#--root=} ;;
    --fresh) fresh=1 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift ;;
    --mirror=*) mirror=${1#--mirror=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check-bare: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "check-bare: $*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount)"
[ -r /etc/debian_version ] || die "needs a Debian host (apt-get, debootstrap)"

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  log "warning: uncommitted changes in $repo are not checked (cloning HEAD $head)"
fi

# The Debian mirror: the first URI serving $suite in this machine's sources.
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # deb [options] URI suite components...
    awk -v s="$suite" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822 stanzas separated by blank lines
    awk -v s="$suite" 'BEGIN { RS = "" }
        { uri = ""; ok = 0; n = split($0, line, "\n")
          for (k = 1; k <= n; k++) {
            if (line[k] ~ /^URIs:/) { split(line[k], w, " "); uri = w[2] }
            if (line[k] ~ /^Suites:/) { m = split(line[k], w, " ")
              for (j = 2; j <= m; j++) if (w[j] == s) ok = 1 } }
          if (ok && uri != "") { print uri; exit } }' "$f"
  done
}
[ -n "$mirror" ] || mirror=$(find_mirror | head -n1 || true)
[ -n "$mirror" ] || die "no $suite mirror in /etc/apt/sources.list{,.d/*}; pass --mirror URL"

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; }
fi

# Cleanup only ever touches $work: set once the root folder is known to be
# ours (new, or empty when given).
work=""
# True while anything is mounted at or under $work.
# shellcheck disable=SC2317  # called from the trap
mounted_under() { awk -v r="$work" '$5 == r || index($5, r "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# shellcheck disable=SC2317  # runs as the EXIT trap
cleanup() {
  local rc=$?
  set +e
  [ -n "$work" ] || exit "$rc"
  local m
  for m in dev sys proc; do
    if mountpoint -q "$work/$m" 2>/dev/null; then
      umount -R "$work/$m" 2>/dev/null || umount -R -l "$work/$m"
    fi
  done
  if mounted_under; then
    log "something is still mounted under $work; leaving it in place"
  elif ((keep)); then
    log "kept the root: $work (chroot $work /bin/bash)"
  elif ((made_root)); then
    rm -rf --one-file-system "$work"
  else
    find "$work" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The root folder: new, or existing and empty (never someone's data).
made_root=0
if [ -z "$root" ]; then
  mkdir -p /var/tmp
  root=$(mktemp -d /var/tmp/ionn-bare.XXXXXX)
  made_root=1
elif [ -e "$root" ]; then
  if [ ! -d "$root" ] || [ -n "$(ls -A "$root")" ]; then
    die "--root $root exists and is not an empty folder"
  fi
else
  mkdir -p "$root"
  made_root=1
fi
root=$(cd "$root" && pwd -P)
[ "$root" != / ] || die "refusing to use / as the root"
work=$root

free_kib=$(df --output=avail -k "$root" | tail -n1)
((free_kib >= min_free_gib * 1024 * 1024)) ||
  die "only $((free_kib / 1024 / 1024)) GiB free under $root; need $min_free_gib GiB (use --root)"

start=$(date +%s)
elapsed() { local s=$(($(date +%s) - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# 1. A bare Debian 12 root: debootstrap once into the cache, unpack fresh.
arch=$(dpkg --print-architecture)
key=$(printf '%s' "$mirror" | md5sum | cut -c1-8)
tarball="$cache_dir/$suite-minbase-$arch-$key.tar.gz"
if ((fresh)) || [ ! -s "$tarball" ]; then
  log "debootstrap --variant=minbase $suite from $mirror (cached as $tarball)"
  mkdir -p "$cache_dir"
  staging=$(mktemp -d "$cache_dir/staging.XXXXXX")
  debootstrap --variant=minbase --arch="$arch" "$suite" "$staging" "$mirror" >"$staging.log" 2>&1 ||
    { tail -n 30 "$staging.log" >&2; rm -rf --one-file-system "$staging"; die "debootstrap failed (log: $staging.log)"; }
  tar -C "$staging" --numeric-owner -cpzf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$staging" "$staging.log"
fi
log "unpacking a bare root into $root"
tar -C "$root" --numeric-owner -xpzf "$tarball"
chmod 0755 "$root"  # / of the new system (mktemp made it 0700; apt's _apt user must traverse it)

# Prove it is bare: none of the build tools setup.sh has to install.
for tool in gcc g++ c++ cc make cmake pkg-config protoc git; do
  if chroot "$root" /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v $tool" >/dev/null; then
    die "the root is not bare: it already has $tool"
  fi
done

# apt inside: this machine's sources, the keyrings they name, and the
# Acquire options (snapshot mirrors, proxies) this machine's apt uses.
rm -f "$root/etc/apt/sources.list"
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -r "$f" ]; then
    cp "$f" "$root$f"
    sources+=("$f")
  fi
done
keyrings=$(sed -nE 's/.*(Signed-By:|signed-by=)[[:space:]]*(\/[^] ,]+).*/\2/p' "${sources[@]}" | sort -u)
for k in $keyrings; do
  if [ -r "$k" ] && [ ! -e "$root$k" ]; then
    mkdir -p "$root$(dirname "$k")"
    cp "$k" "$root$k"
  fi
done
apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy|Retries) ' \
  >"$root/etc/apt/apt.conf.d/99check-bare" || true
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# No daemons start inside the chroot (the usual chroot guard; installs nothing).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# 2. A clean clone of HEAD (no build/ folders, no uncommitted files).
git clone -q --no-hardlinks "$repo" "$root/root/ionn"
git -C "$root/root/ionn" -c advice.detachedHead=false checkout -q --detach "$head"
log "cloned $repo at $head into /root/ionn"

# 3. The README's two commands, as root, in a chroot.
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/ionn && $1"
}
result=PASS
failed=""
# The README's line for Python after the two commands: `import ionn` with
# its figures, and one simulation.
import_ionn="PYTHONPATH=\$PWD/build/python /usr/bin/python3 -c 'import ionn, ionn.plot; \
print(\"import ionn\", ionn.__version__, ionn.simulate(ionn.costs(ionn.load_model(\"alexnet\", weights=False), \
paper_profiles=True))[\"queries_during_upload\"], \"queries\")'"
for cmd in "bash scripts/demo.sh" "bash scripts/test.sh" "$import_ionn"; do
  log "running in the bare root: $cmd ($(elapsed) so far)"
  if ! in_root "$cmd"; then
    result=FAIL
    failed=$cmd
    break
  fi
done

if [ "$result" = PASS ]; then
  echo "check-bare: PASS: bare Debian 12 ($suite minbase) -> demo.sh + test.sh + import ionn at ${head:0:12} in $(elapsed)"
  exit 0
fi
echo "check-bare: FAIL: '$failed' failed in a bare Debian 12 ($suite minbase) root at ${head:0:12} after $(elapsed)"
exit 1
