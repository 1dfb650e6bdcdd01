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
state_file=/run/ionn-netlab-$ns.env
prefix=${NETLAB_PREFIX:-10.77.0}
client_dev=ionn-c0
server_dev=ionn-s0
client_ip=$prefix.1
server_ip=$prefix.2

usage() {
  cat <<EOF
Usage: $0 up --uplink-mbps N --downlink-mbps N --rtt-ms R [--mtu BYTES] [--wire-rate]
       $0 follow [--uplink-trace F] [--downlink-trace F] [--step-ms MS] [--duration-s S]
       $0 down
       $0 exec CMD [ARGS...]
       $0 status

  up      (Re)creates the namespace '$ns' for the server ($server_ip) and a veth pair to it
          (this side $client_ip), shaped: uplink (to the server) and downlink (from it) at the
          given rates with tbf, rtt/2 of delay each way with netem. Idempotent: an existing lab
          is taken down first. Rates in Mbps (1 Mbps = 1024*1024/8000 bytes/ms) of TCP payload;
          --wire-rate shapes whole frames instead. --mtu of the pair: default 1500.
  follow  Changes the rates of a lab that is up along link traces (as ionn simulate and ionn link
          read them: a CSV of t_ms,mbps, each rate until the next line's time and the last for ever,
          or mahimahi's format, a time in ms per 1500-byte delivery opportunity, looping, averaged
          here over --step-ms, default 100), from now on, with 'tc qdisc change'; until the CSV
          traces end, --duration-s (default for a looping trace: one hour), or SIGINT. One line
          per change on standard output.
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

# tbf_args MBPS: "rate R burst B limit L" for the rate (rate_factor and rtt_ms set).
tbf_args() {
  local bits burst limit
  # tbf needs a rate > 0: an outage is 1 kbit/s.
  bits=$(awk -v m="$1" -v f="$rate_factor" 'BEGIN { x = m * 1048576 * f; if (x < 1000) x = 1000; printf "%.0f", x }')
  burst=$(awk -v b="$bits" 'BEGIN { x = b / 8 * 0.002; if (x < 16384) x = 16384; printf "%.0f", x }')
  limit=$(awk -v b="$bits" -v r="$rtt_ms" -v u="$burst" \
    'BEGIN { x = b / 8 * (0.1 + r / 1000); if (x < 262144) x = 262144; printf "%.0f", x + u }')
  echo "rate ${bits}bit burst $burst limit $limit"
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
  # What `follow` needs to shape the same way.
  printf 'rate_factor=%s\nrtt_ms=%s\n' "$rate_factor" "$rtt_ms" >"$state_file"
  echo "netlab: up: client $client_ip ($client_dev) <-> server $server_ip ($server_dev in namespace $ns):" \
    "uplink $up Mbps, downlink $down Mbps, rtt $rtt_ms ms, mtu $mtu$([ "$wire" -eq 1 ] && echo ', wire rate')"
}

# schedule FILE STEP_MS: the trace as "t_ms mbps" lines, then "end T" for a
# CSV (its last rate holds) or "period T" for mahimahi's (it loops).
schedule() {
  local file=$1 step=$2
  [ -r "$file" ] || die "follow: cannot read the trace '$file'"
  if grep -v '^[[:space:]]*\(#\|$\)' "$file" | head -1 | grep -q ,; then
    awk -F, -v f="$file" '
      /^[ \t]*(#|$)/ || $0 == "t_ms,mbps" { next }
      {
        if (NF != 2 || $1 !~ /^[ \t]*[0-9.eE+]+[ \t]*$/ || $2 !~ /^[ \t]*[0-9.eE+]+[ \t]*$/) {
          printf "netlab: follow: %s: line %d: not t_ms,mbps\n", f, NR > "/dev/stderr"; exit 2
        }
        if (n == 0 && $1 + 0 != 0) { printf "netlab: follow: %s: line %d: the first time must be 0\n", f, NR > "/dev/stderr"; exit 2 }
        if (n > 0 && $1 + 0 <= last) { printf "netlab: follow: %s: line %d: times must increase\n", f, NR > "/dev/stderr"; exit 2 }
        last = $1 + 0; n++; printf "%.3f %s\n", $1, $2 + 0
      }
      END { if (n == 0) { printf "netlab: follow: %s: the trace is empty\n", f > "/dev/stderr"; exit 2 } print "end " last }' "$file"
  else
    awk -v f="$file" -v step="$step" '
      /^[ \t]*(#|$)/ { next }
      {
        if ($0 !~ /^[ \t]*[0-9]+[ \t]*$/) { printf "netlab: follow: %s: line %d: not a time in ms\n", f, NR > "/dev/stderr"; exit 2 }
        t = $1 + 0
        if (n > 0 && t < last) { printf "netlab: follow: %s: line %d: times must not decrease\n", f, NR > "/dev/stderr"; exit 2 }
        same = (n > 0 && t == last) ? same + 1 : 1
        last = t; n++; count[int(t / step)]++
      }
      END {
        if (n == 0 || last <= 0) { printf "netlab: follow: %s: empty, or its period (the last time) is 0\n", f > "/dev/stderr"; exit 2 }
        # Opportunities at the period are the next loop'"'"'s at 0 (as ionn reads them).
        count[int(last / step)] -= same; count[0] += same
        for (b = 0; b * step < last; b++) printf "%d %.6f\n", b * step, count[b] * 1500 / step / (1048576 / 8000)
        print "period " last
      }' "$file"
  fi
}

lab_follow() {
  local up_trace="" down_trace="" step=100 duration=""
  while [ $# -gt 0 ]; do
    case $1 in
      --uplink-trace) up_trace=${2:-}; shift 2 ;;
      --downlink-trace) down_trace=${2:-}; shift 2 ;;
      --step-ms) step=${2:-}; shift 2 ;;
      --duration-s) duration=${2:-}; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "follow: unknown option '$1' (see --help)" ;;
    esac
  done
  [ -n "$up_trace$down_trace" ] || die "follow: give --uplink-trace, --downlink-trace or both"
  [[ $step =~ ^[0-9]+$ ]] && [ "$step" -ge 10 ] || die "follow: --step-ms must be a whole number >= 10, got '$step'"
  [ -z "$duration" ] || [[ $duration =~ ^[0-9]+([.][0-9]*)?$ ]] || die "follow: --duration-s must be a time in s"
  need_root
  ip netns list | grep -qw -- "$ns" || die "follow: no namespace '$ns' (run: $0 up ...)"
  [ -r "$state_file" ] || die "follow: no $state_file (bring the lab up again with this version: $0 up ...)"
  # shellcheck disable=SC1090
  . "$state_file"
  # Every change of either direction, in time order: "t_ms dir mbps", each
  # direction's schedule repeated (looping) or ended as its trace says.
  local events
  events=$( {
    [ -z "$up_trace" ] || schedule "$up_trace" "$step" | sed 's/^/up /'
    [ -z "$down_trace" ] || schedule "$down_trace" "$step" | sed 's/^/down /'
  } ) || exit 2
  local horizon_ms
  horizon_ms=$(awk -v d="$duration" 'BEGIN { print (d == "" ? 3600000 : d * 1000) }')
  echo "$events" | awk -v h="$horizon_ms" '
    $2 == "end" || $2 == "period" { kind[$1] = $2; len[$1] = $3; next }
    { n[$1]++; t[$1, n[$1]] = $2; r[$1, n[$1]] = $3 }
    END {
      for (d in n) {
        if (kind[d] == "end") { for (i = 1; i <= n[d]; i++) print t[d, i], d, r[d, i]; continue }
        for (base = 0; base < h; base += len[d]) for (i = 1; i <= n[d] && base + t[d, i] < h; i++) print base + t[d, i], d, r[d, i]
      }
    }' | sort -g -s -k1,1 | {
    local start now_ms t dir mbps dev last_up="" last_down=""
    start=$(date +%s%N)
    while read -r t dir mbps; do
      now_ms=$(( ($(date +%s%N) - start) / 1000000 ))
      local wait_ms
      wait_ms=$(awk -v t="$t" -v n="$now_ms" 'BEGIN { w = t - n; printf "%.3f", (w > 0 ? w / 1000 : 0) }')
      sleep "$wait_ms"
      if [ "$dir" = up ]; then
        [ "$mbps" != "$last_up" ] || continue
        last_up=$mbps
        change "$client_dev" "$mbps"
      else
        [ "$mbps" != "$last_down" ] || continue
        last_down=$mbps
        change "$server_dev" "$mbps" ip netns exec "$ns"
      fi
      echo "netlab: follow: $(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1000 }') s: ${dir}link $mbps Mbps"
    done
  }
}

# change DEV MBPS [ip netns exec NS]: the tbf of a lab that is up, to the rate.
change() {
  local dev=$1 mbps=$2
  shift 2
  local in_ns=("$@") where=(root handle 1:)
  local half_us
  half_us=$(awk -v r="$rtt_ms" 'BEGIN { printf "%.0f", r * 500 }')
  [ "$half_us" -eq 0 ] || where=(parent 1:1 handle 10:)
  # shellcheck disable=SC2046
  "${in_ns[@]}" tc qdisc change dev "$dev" "${where[@]}" tbf $(tbf_args "$mbps") ||
    die "follow: 'tc qdisc change dev $dev ... tbf' failed (is the lab up?)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) lab_up "$@" ;;
  follow) lab_follow "$@" ;;
  down)
    need_root
    lab_down
    rm -f "$state_file"
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
