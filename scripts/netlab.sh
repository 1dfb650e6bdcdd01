#!/usr/bin/env bash
# netlab.sh: the link of `ionn link`, made by the kernel (for runs as root).
#
# A network namespace holds the server; a veth pair joins it to this one;
# tc shapes both directions: tbf for the rate, netem for the delay (rtt/2
# each way). Uplink = this namespace (the client) -> the server namespace,
# shaped on the egress of the client's end of the pair; downlink the
# reverse, shaped on the egress of the server's end.
#
#   scripts/netlab.sh up --uplink-mbps 80 --downlink-mbps 80 --rtt-ms 2
#   scripts/netlab.sh exec build/bin/ionn serve --listen 10.77.0.2:7070 &
#   build/bin/ionn client --zoo alexnet --paper-profiles --server 10.77.0.2:7070
#   scripts/netlab.sh down
#
# Rates use the project's unit, 1 Mbps = 1024*1024/8000 bytes per ms, and
# mean TCP payload, as in `ionn link`: tbf counts whole frames, so its rate
# is raised by (mtu+14)/(mtu-52) (Ethernet, IPv4 and TCP headers with
# timestamps, per full-size segment) unless --wire-rate is given.
#
# Environment: NETLAB_NS (default ionn-server), NETLAB_PREFIX (default
# 10.77.0: the client is .1, the server .2).
set -Eeuo pipefail

ns=${NETLAB_NS:-ionn-server}
prefix=${NETLAB_PREFIX:-10.77.0}
client_dev=ionn-c0
server_dev=ionn-s0
client_ip=$prefix.1
server_ip=$prefix.2

usage() {
  cat <<EOF
Usage: $0 up --uplink-mbps N --downlink-mbps N --rtt-ms R [--mtu BYTES] [--wire-rate]
       $0 down
       $0 exec CMD [ARGS...]
       $0 status

  up      (Re)creates the namespace '$ns' for the server ($server_ip) and a veth pair to it
          (this side $client_ip), shaped: uplink (to the server) and downlink (from it) at the
          given rates with tbf, rtt/2 of delay each way with netem. Idempotent: an existing lab
          is taken down first. Rates in Mbps (1 Mbps = 1024*1024/8000 bytes/ms) of TCP payload;
          --wire-rate shapes whole frames instead. --mtu of the pair: default 1500.
  down    Removes the namespace and the pair (no error if there is none). Processes still in
          the namespace are named, not killed; they lose the link.
  exec    Runs CMD inside the server namespace (e.g. ionn serve --listen $server_ip:7070).
  status  The namespace, addresses and tc statistics of both ends.

Needs root, iproute2 (ip, tc) and a kernel with tbf and, for --rtt-ms > 0, netem
(CONFIG_NET_SCH_TBF, CONFIG_NET_SCH_NETEM). Environment: NETLAB_NS, NETLAB_PREFIX.
EOF
}

die() {
  echo "netlab: $*" >&2
  exit 2
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and tc need CAP_NET_ADMIN)"
  command -v ip >/dev/null && command -v tc >/dev/null || die "needs ip and tc: apt-get install iproute2"
}

lab_down() {
  # The pair first (deleting one end deletes both, at once); a namespace is
  # torn down asynchronously, and a pair inside it may outlive `ip netns del`.
  ip link del "$client_dev" 2>/dev/null || true
  if ip netns list 2>/dev/null | grep -qw -- "$ns"; then
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -z "$pids" ] || echo "netlab: processes still in '$ns' (left running, without the link): $pids" >&2
    ip netns del "$ns"
  fi
  local _
  for _ in $(seq 50); do
    ip link show "$client_dev" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  die "down: $client_dev is still there after 5 s"
}

# shape DEV MBPS [ip -n NS]: tbf at the rate, netem for rtt/2 in front of it.
shape() {
  local dev=$1 mbps=$2
  shift 2
  local in_ns=("$@")
  local bits burst limit half_us
  bits=$(awk -v m="$mbps" -v f="$rate_factor" 'BEGIN { printf "%.0f", m * 1048576 * f }')
  # 2 ms at the rate, at least 16 KiB (as ionn link). The queue holds 100 ms + rtt at the
  # rate, at least 256 KiB: veth hands tbf segments of up to 64 KiB (GSO), and a smaller
  # queue drops whole bursts of several streams.
  burst=$(awk -v b="$bits" 'BEGIN { x = b / 8 * 0.002; if (x < 16384) x = 16384; printf "%.0f", x }')
  limit=$(awk -v b="$bits" -v r="$rtt_ms" -v u="$burst" \
    'BEGIN { x = b / 8 * (0.1 + r / 1000); if (x < 262144) x = 262144; printf "%.0f", x + u }')
  half_us=$(awk -v r="$rtt_ms" 'BEGIN { printf "%.0f", r * 500 }')
  local err
  if [ "$half_us" -gt 0 ]; then
    if ! err=$("${in_ns[@]}" tc qdisc add dev "$dev" root handle 1: netem delay "${half_us}us" limit 100000 2>&1); then
      lab_down
      die "cannot add the delay on $dev: 'tc qdisc add dev $dev root handle 1: netem delay ${half_us}us' said: $err
netlab: this kernel ($(uname -r)) may lack netem (CONFIG_NET_SCH_NETEM). Use --rtt-ms 0 for the rate alone,
netlab: or the user-space link: ionn link --rtt-ms $rtt_ms"
    fi
    "${in_ns[@]}" tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "${bits}bit" burst "$burst" limit "$limit"
  else
    if ! err=$("${in_ns[@]}" tc qdisc add dev "$dev" root handle 1: tbf rate "${bits}bit" burst "$burst" \
      limit "$limit" 2>&1); then
      lab_down
      die "cannot add the rate on $dev: 'tc qdisc add ... tbf' said: $err"
    fi
  fi
}

lab_up() {
  local up="" down="" mtu=1500 wire=0
  rtt_ms=""
  while [ $# -gt 0 ]; do
    case $1 in
      --uplink-mbps) up=${2:-}; shift 2 ;;
      --downlink-mbps) down=${2:-}; shift 2 ;;
      --rtt-ms) rtt_ms=${2:-}; shift 2 ;;
      --mtu) mtu=${2:-}; shift 2 ;;
      --wire-rate) wire=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "up: unknown option '$1' (see --help)" ;;
    esac
  done
  local num='^([0-9]+([.][0-9]*)?|[.][0-9]+)$'
  [[ $up =~ $num ]] && awk -v v="$up" 'BEGIN { exit !(v > 0) }' || die "up: --uplink-mbps must be a rate > 0, got '$up'"
  [[ $down =~ $num ]] && awk -v v="$down" 'BEGIN { exit !(v > 0) }' ||
    die "up: --downlink-mbps must be a rate > 0, got '$down'"
  [[ $rtt_ms =~ $num ]] || die "up: --rtt-ms must be a delay >= 0 ms, got '$rtt_ms'"
  [[ $mtu =~ ^[0-9]+$ ]] && [ "$mtu" -ge 576 ] && [ "$mtu" -le 65535 ] || die "up: --mtu must be in 576..65535, got '$mtu'"
  rate_factor=1
  [ "$wire" -eq 1 ] || rate_factor=$(awk -v m="$mtu" 'BEGIN { printf "%.6f", (m + 14) / (m - 52) }')
  need_root

  lab_down
  trap 'lab_down' ERR
  ip netns add "$ns"
  ip link add "$client_dev" mtu "$mtu" type veth peer name "$server_dev" mtu "$mtu" netns "$ns"
  ip addr add "$client_ip/30" dev "$client_dev"
  ip link set "$client_dev" up
  ip -n "$ns" addr add "$server_ip/30" dev "$server_dev"
  ip -n "$ns" link set "$server_dev" up
  ip -n "$ns" link set lo up
  shape "$client_dev" "$up"
  shape "$server_dev" "$down" ip netns exec "$ns"
  trap - ERR
  echo "netlab: up: client $client_ip ($client_dev) <-> server $server_ip ($server_dev in namespace $ns):" \
    "uplink $up Mbps, downlink $down Mbps, rtt $rtt_ms ms, mtu $mtu$([ "$wire" -eq 1 ] && echo ', wire rate')"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) lab_up "$@" ;;
  down)
    need_root
    lab_down
    echo "netlab: down"
    ;;
  exec)
    [ $# -gt 0 ] || die "exec: give a command"
    need_root
    ip netns list | grep -qw -- "$ns" || die "exec: no namespace '$ns' (run: $0 up ...)"
    exec ip netns exec "$ns" "$@"
    ;;
  status)
    need_root
    ip netns list | grep -qw -- "$ns" || { echo "netlab: down"; exit 0; }
    ip -br addr show dev "$client_dev"
    tc -s qdisc show dev "$client_dev"
    ip -n "$ns" -br addr show dev "$server_dev"
    ip netns exec "$ns" tc -s qdisc show dev "$server_dev"
    ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
