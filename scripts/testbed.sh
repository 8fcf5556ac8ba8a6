#!/usr/bin/env bash
# testbed.sh — multi-host network testbed on one Linux machine (SPEC.md section 9).
#
# One Linux bridge NAME-br and N network namespaces NAME-h1 … NAME-hN. Host I
# has one interface, eth0, with 198.18.0.I/24 (198.18.0.0/15 is reserved for
# network benchmarks, RFC 2544), plugged into the bridge through a veth pair
# whose other end is NAME-vI in the namespace this script runs in. The bridge
# has no address (IPv4 or IPv6): hosts talk only among themselves, and
# broadcast to 198.18.0.255 reaches every host. Nothing here touches any other
# interface, route or address.
#
# With --second-subnet M, M more hosts NAME-h(N+1) … NAME-h(N+M) get 198.18.1.J/24
# (J = 1 … M) on a second bridge NAME-bs, and a router namespace NAME-r joins the two
# subnets (198.18.0.254 and 198.18.1.254, forwarding on; every host gets a route to the
# other subnet through it). A router does not forward broadcasts: the subnets reach each
# other by unicast only, as two LANs behind a router do.
#
# Usage:
#   testbed.sh up NAME N [--rate RATE] [--second-subnet M]
#                                        build N hosts (1 <= N <= 250), and M on a second subnet
#   testbed.sh rate NAME I RATE|none     set / remove host I's egress limit
#   testbed.sh exec NAME I CMD [ARG...]  run CMD in host I's namespace
#   testbed.sh down NAME                 kill processes in NAME-h*, remove all
#   testbed.sh status NAME               show hosts, addresses and qdiscs
#   testbed.sh check                     exit 0 if a testbed can be built here
#
# NAME: 1-10 characters, a lowercase letter then lowercase letters or digits
# (e.g. p2pt1234). That keeps every interface name within Linux's 15-character
# limit (NAME-br, NAME-v250) and keeps NAME-h* from matching another testbed.
#
# Rate limits: egress of each host's eth0 through
#   tc qdisc replace dev eth0 root tbf rate RATE burst 64kb latency 50ms
# - burst 64kb (65536 bytes): about 5 ms of line rate at 100mbit, far above
#   one 1514-byte frame (tbf needs burst >= MTU), small enough that the
#   long-run rate is the configured one (the bucket adds at most 64 KiB to a
#   transfer). tbf uses high-resolution timers, so the old rule of thumb
#   burst >= rate/HZ does not apply. GSO packets larger than the burst are
#   split by tbf, and every segment's headers are charged.
# - latency 50ms: the queue holds rate x 50 ms + burst (~690 KB at 100mbit),
#   enough for TCP to keep the link busy, bounded so queueing delay stays
#   under 50 ms.
# tbf counts whole Ethernet frames without FCS (1514 bytes for 1448 bytes of
# TCP payload), so 100mbit carries at most ~95.6 Mbit/s of TCP payload.
# Override with TESTBED_BURST / TESTBED_LATENCY in the environment.
#
# Running inside `unshare` (how CI runs it): everything works in a fresh
# network namespace that has only loopback; `ip netns add` needs no extra
# mounts there. Tested (iproute2 6.1, kernel 6.18):
#   unshare --net bash -c 'ip link set lo up; scripts/testbed.sh up t1 3; ...'
#     works, but /run/netns is the machine's: the NAME-h* namespaces are
#     visible (and usable) from the whole machine, and outlive the shell if
#     `down` is not run.
#   unshare --net --mount bash -c '...'
#     works; the namespace mounts stay private, but `ip netns add` still
#     creates empty placeholder files in the machine's /run/netns (outside,
#     `ip netns list` shows the names with "Peer netns reference is
#     invalid"); `down` removes them.
#   unshare --net --mount bash -c 'mkdir -p /run/netns &&
#       mount -t tmpfs -o mode=755 tmpfs /run/netns && ip link set lo up && ...'
#     recommended: fully private, nothing visible outside, and nothing is
#     left behind when the shell exits even without `down` (once no process
#     started with `exec` is still running in a host namespace).
# NAMEs need only be unique within one such namespace; without the private
# tmpfs they must be unique machine-wide.
#
# Every step is bounded: no loop runs more than N times or a fixed number of
# polls; each ip/tc call has a timeout.

set -euo pipefail

readonly SUBNET_PREFIX="198.18.0"
readonly SECOND_SUBNET_PREFIX="198.18.1"
readonly MAX_HOSTS=250
readonly TBF_BURST="${TESTBED_BURST:-64kb}"
readonly TBF_LATENCY="${TESTBED_LATENCY:-50ms}"
readonly CMD_TIMEOUT=20   # seconds, per ip/tc invocation

prog="$(basename "$0")"

usage() {
  cat >&2 <<EOF
usage:
  $prog up NAME N [--rate RATE]   create bridge NAME-br and hosts NAME-h1..NAME-hN
                                  (eth0 = $SUBNET_PREFIX.I/24, N <= $MAX_HOSTS),
                                  optional egress limit per host (e.g. 100mbit)
  $prog rate NAME I RATE|none     set or remove host I's egress limit
  $prog exec NAME I CMD [ARG...]  run CMD inside host I's namespace
  $prog down NAME                 kill processes in NAME-h*, delete them and NAME-br
  $prog status NAME               list hosts, addresses and qdiscs
  $prog check                     exit 0 if a testbed can be built here, else
                                  print why and exit 1
NAME: 1-10 chars, [a-z][a-z0-9]* (e.g. p2pt1234).
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
die_usage() { echo "$prog: $* (see '$prog --help')" >&2; exit 2; }

# Run an ip/tc command with a time bound.
run() { timeout "$CMD_TIMEOUT" "$@"; }

validate_name() {
  local name="$1"
  [[ "$name" =~ ^[a-z][a-z0-9]{0,9}$ ]] ||
    die_usage "bad NAME '$name': need 1-10 chars, a lowercase letter then lowercase letters/digits (interface names must stay <= 15 chars: NAME-br, NAME-v250)"
}

validate_count() {
  local n="$1"
  [[ "$n" =~ ^[1-9][0-9]{0,2}$ ]] && (( n <= MAX_HOSTS )) ||
    die_usage "bad host count '$n': need 1..$MAX_HOSTS"
}

validate_index() {
  local i="$1"
  [[ "$i" =~ ^[1-9][0-9]{0,2}$ ]] && (( i <= MAX_HOSTS )) ||
    die_usage "bad host index '$i': need 1..$MAX_HOSTS"
}

validate_rate() {
  local rate="$1"
  [[ "$rate" =~ ^[0-9]+(\.[0-9]+)?[A-Za-z]*$ ]] ||
    die_usage "bad RATE '$rate': e.g. 100mbit, 1gbit, 500kbit"
}

need_tools() {
  local t
  for t in ip tc timeout; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found (install iproute2 / coreutils)"
  done
}

need_root() {
  [[ "$(id -u)" == 0 ]] || die "must run as root"
}

ns_name() { echo "$1-h$2"; }

# Namespaces belonging to testbed NAME (exactly NAME-h<digits>, and the router NAME-r).
list_ns() {
  local name="$1"
  run ip netns list 2>/dev/null | awk -v re="^${name}-(h[0-9]+|r)\$" '$1 ~ re { print $1 }'
}

# Root-side veth ends belonging to testbed NAME (exactly NAME-v<digits>).
list_veths() {
  local name="$1"
  run ip -o link show 2>/dev/null |
    awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
    awk -v re="^${name}-(v[0-9]+|r[ab])\$" '$0 ~ re'
}

link_exists() { run ip link show dev "$1" >/dev/null 2>&1; }

ns_exists() {
  local want="$1" n
  while read -r n _; do
    [[ "$n" == "$want" ]] && return 0
  done < <(run ip netns list 2>/dev/null)
  return 1
}

# Adds host namespace NS on bridge BRIDGE through veth VETH, with ADDRESS/24 and its
# BROADCAST address. The pair's end is born inside the namespace as eth0, so the name never
# collides with the machine's own eth0.
add_host() {  # ns veth bridge address broadcast
  local ns="$1" veth="$2" bridge="$3" address="$4" broadcast="$5"
  run ip netns add "$ns"
  run ip -n "$ns" link set dev lo up
  run ip link add name "$veth" type veth peer name eth0 netns "$ns"
  run ip link set dev "$veth" addrgenmode none
  run ip link set dev "$veth" master "$bridge"
  run ip link set dev "$veth" up
  run ip -n "$ns" addr add "$address/24" broadcast "$broadcast" dev eth0
  run ip -n "$ns" link set dev eth0 up
}

# The kernel's ARP table is one for all network namespaces, and its garbage collector
# starts refusing entries at net.ipv4.neigh.default.gc_thresh3 (1024 by default) in all:
# past about 32 hosts that talk to each other (N × (N − 1) entries), new connections and
# datagrams are dropped with "neighbor table overflow" in the kernel log, which no real
# switch port does. Above this many hosts each host is given permanent entries for the
# others on its subnet, which the collector does not count (and no ARP is sent).
STATIC_NEIGHBOURS_ABOVE=16

add_static_neighbours() {  # name n
  local name="$1" n="$2" i j mac batch
  local -a macs=()
  for (( i = 1; i <= n; i++ )); do
    mac="$(run ip -n "$(ns_name "$name" "$i")" -br link show dev eth0 | awk '{print $3}')"
    [[ "$mac" =~ ^[0-9a-f:]{17}$ ]] || die "up: no MAC address for host $i's eth0 (got '$mac')"
    macs[i]="$mac"
  done
  for (( i = 1; i <= n; i++ )); do
    batch=""
    for (( j = 1; j <= n; j++ )); do
      (( j == i )) && continue
      batch+="neigh replace $SUBNET_PREFIX.$j lladdr ${macs[j]} nud permanent dev eth0"$'\n'
    done
    printf '%s' "$batch" | run ip -n "$(ns_name "$name" "$i")" -batch -
  done
}

set_rate() {  # ns rate|none
  local ns="$1" rate="$2"
  if [[ "$rate" == none ]]; then
    if run ip netns exec "$ns" tc qdisc show dev eth0 root | grep -q '^qdisc tbf'; then
      run ip netns exec "$ns" tc qdisc del dev eth0 root
    fi
  else
    run ip netns exec "$ns" tc qdisc replace dev eth0 root tbf \
      rate "$rate" burst "$TBF_BURST" latency "$TBF_LATENCY"
  fi
}

# PIDs of all processes in the given namespaces, excluding this script.
pids_in() {
  local ns
  for ns in "$@"; do
    run ip netns pids "$ns" 2>/dev/null || true
  done | awk -v self="$$" '$1 ~ /^[0-9]+$/ && $1 != self'
}

do_down() {
  local name="$1" ns link pids i
  local -a nss=() links=()
  mapfile -t nss < <(list_ns "$name")
  if (( ${#nss[@]} > 0 )); then
    # Processes running inside the namespaces: TERM, wait up to 3 s, KILL,
    # wait up to 2 s. By PID only.
    mapfile -t pids < <(pids_in "${nss[@]}")
    if (( ${#pids[@]} > 0 )); then
      kill -TERM "${pids[@]}" 2>/dev/null || true
      for (( i = 0; i < 30; i++ )); do
        [[ -z "$(pids_in "${nss[@]}")" ]] && break
        sleep 0.1
      done
      mapfile -t pids < <(pids_in "${nss[@]}")
      if (( ${#pids[@]} > 0 )); then
        kill -KILL "${pids[@]}" 2>/dev/null || true
        for (( i = 0; i < 20; i++ )); do
          [[ -z "$(pids_in "${nss[@]}")" ]] && break
          sleep 0.1
        done
      fi
    fi
  fi
  # Deleting one veth end deletes its peer (eth0 inside the namespace).
  mapfile -t links < <(list_veths "$name")
  for link in "${links[@]}"; do
    run ip link del dev "$link" 2>/dev/null || true
  done
  for ns in "${nss[@]}"; do
    run ip netns del "$ns" 2>/dev/null || true
  done
  local bridge
  for bridge in "$name-br" "$name-bs"; do
    if link_exists "$bridge"; then
      run ip link del dev "$bridge" 2>/dev/null || true
    fi
  done
  # Report anything left behind.
  local left=""
  [[ -n "$(list_ns "$name")" ]] && left+=" namespaces:$(list_ns "$name" | tr '\n' ' ')"
  [[ -n "$(list_veths "$name")" ]] && left+=" links:$(list_veths "$name" | tr '\n' ' ')"
  link_exists "$name-br" && left+=" bridge:$name-br"
  link_exists "$name-bs" && left+=" bridge:$name-bs"
  [[ -z "$left" ]] || die "down $name: could not remove:$left"
}

cmd_up() {
  (( $# >= 2 )) || die_usage "up: need NAME and N"
  local name="$1" n="$2" rate="" m=0
  shift 2
  while (( $# > 0 )); do
    case "$1" in
      --rate)
        (( $# >= 2 )) || die_usage "up: --rate needs a value"
        rate="$2"; shift 2 ;;
      --rate=*)
        rate="${1#--rate=}"; shift ;;
      --second-subnet)
        (( $# >= 2 )) || die_usage "up: --second-subnet needs a value"
        m="$2"; shift 2 ;;
      *) die_usage "up: unknown argument '$1'" ;;
    esac
  done
  validate_name "$name"
  validate_count "$n"
  [[ -z "$rate" ]] || validate_rate "$rate"
  if [[ "$m" != 0 ]]; then
    validate_count "$m"
    (( n + m <= MAX_HOSTS )) || die_usage "up: N + M must be at most $MAX_HOSTS"
  fi
  need_root
  need_tools

  # Refuse to touch an existing testbed (and do not clean it up on failure).
  if [[ -n "$(list_ns "$name")" || -n "$(list_veths "$name")" ]] || link_exists "$name-br" || link_exists "$name-bs"; then
    die "up: testbed '$name' (or part of it) already exists; run '$prog down $name' first"
  fi

  # From here on, any failure removes whatever was made.
  UP_NAME="$name"
  trap 'rc=$?; trap - EXIT; if (( rc != 0 )); then echo "$prog: up $UP_NAME failed; cleaning up" >&2; do_down "$UP_NAME" || true; fi; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local br="$name-br" i ns veth
  run ip link add name "$br" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  # No IPv6 link-local address on the bridge: it must have no address at all.
  run ip link set dev "$br" addrgenmode none
  run ip link set dev "$br" up

  for (( i = 1; i <= n; i++ )); do
    ns="$(ns_name "$name" "$i")"
    add_host "$ns" "$name-v$i" "$br" "$SUBNET_PREFIX.$i" "$SUBNET_PREFIX.255"
    if [[ -n "$rate" ]]; then
      set_rate "$ns" "$rate"
    fi
  done

  if (( n > STATIC_NEIGHBOURS_ABOVE )); then
    add_static_neighbours "$name" "$n"
  fi

  if (( m > 0 )); then
    add_second_subnet "$name" "$n" "$m" "$rate"
  fi

  trap - EXIT INT TERM
  echo "testbed $name: bridge $br, hosts $(ns_name "$name" 1)..$(ns_name "$name" "$n") ($SUBNET_PREFIX.1-$SUBNET_PREFIX.$n/24)${rate:+, egress $rate per host}"
}

# The second subnet: bridge NAME-bs, hosts N+1 … N+M with 198.18.1.J/24, and the router
# namespace NAME-r on both bridges (eth0 = 198.18.0.254 on NAME-br, eth1 = 198.18.1.254 on
# NAME-bs). Called by cmd_up, whose trap cleans up on failure.
add_second_subnet() {
  local name="$1" n="$2" m="$3" rate="$4" bs="$1-bs" router="$1-r" i j ns veth
  run ip link add name "$bs" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  run ip link set dev "$bs" addrgenmode none
  run ip link set dev "$bs" up
  run ip netns add "$router"
  run ip -n "$router" link set dev lo up
  run ip link add name "$name-ra" type veth peer name eth0 netns "$router"
  run ip link add name "$name-rb" type veth peer name eth1 netns "$router"
  run ip link set dev "$name-ra" addrgenmode none
  run ip link set dev "$name-rb" addrgenmode none
  run ip link set dev "$name-ra" master "$name-br"
  run ip link set dev "$name-rb" master "$bs"
  run ip link set dev "$name-ra" up
  run ip link set dev "$name-rb" up
  run ip -n "$router" addr add "$SUBNET_PREFIX.254/24" broadcast "$SUBNET_PREFIX.255" dev eth0
  run ip -n "$router" addr add "$SECOND_SUBNET_PREFIX.254/24" broadcast "$SECOND_SUBNET_PREFIX.255" dev eth1
  run ip -n "$router" link set dev eth0 up
  run ip -n "$router" link set dev eth1 up
  run ip netns exec "$router" sysctl -q -w net.ipv4.ip_forward=1
  for (( i = 1; i <= n; i++ )); do
    run ip -n "$(ns_name "$name" "$i")" route add "$SECOND_SUBNET_PREFIX.0/24" via "$SUBNET_PREFIX.254"
  done
  for (( j = 1; j <= m; j++ )); do
    i=$(( n + j ))
    ns="$(ns_name "$name" "$i")"
    add_host "$ns" "$name-v$i" "$bs" "$SECOND_SUBNET_PREFIX.$j" "$SECOND_SUBNET_PREFIX.255"
    run ip -n "$ns" route add "$SUBNET_PREFIX.0/24" via "$SECOND_SUBNET_PREFIX.254"
    if [[ -n "$rate" ]]; then
      set_rate "$ns" "$rate"
    fi
  done
}

cmd_down() {
  (( $# == 1 )) || die_usage "down: need NAME"
  validate_name "$1"
  need_root
  need_tools
  do_down "$1"
}

cmd_rate() {
  (( $# == 3 )) || die_usage "rate: need NAME I RATE|none"
  local name="$1" i="$2" rate="$3"
  validate_name "$name"
  validate_index "$i"
  [[ "$rate" == none ]] || validate_rate "$rate"
  need_root
  need_tools
  local ns; ns="$(ns_name "$name" "$i")"
  ns_exists "$ns" || die "rate: no such host namespace '$ns'"
  set_rate "$ns" "$rate"
}

cmd_exec() {
  (( $# >= 3 )) || die_usage "exec: need NAME I CMD..."
  local name="$1" i="$2"
  shift 2
  validate_name "$name"
  validate_index "$i"
  local ns; ns="$(ns_name "$name" "$i")"
  ns_exists "$ns" || die "exec: no such host namespace '$ns'"
  exec ip netns exec "$ns" "$@"
}

cmd_status() {
  (( $# == 1 )) || die_usage "status: need NAME"
  local name="$1" ns
  validate_name "$name"
  if link_exists "$name-br"; then
    echo "bridge $name-br: $(run ip -br link show dev "$name-br" | awk '{print $2}')"
  else
    echo "bridge $name-br: absent"
  fi
  while read -r ns; do
    [[ -n "$ns" ]] || continue
    printf '%s: %s; %s\n' "$ns" \
      "$(run ip -n "$ns" -br -4 addr show dev eth0 2>/dev/null | awk '{print $2, $3}')" \
      "$(run ip netns exec "$ns" tc qdisc show dev eth0 root 2>/dev/null | head -n 1)"
  done < <(list_ns "$name" | sort -V)
}

cmd_check() {
  (( $# == 0 )) || die_usage "check: takes no arguments"
  if [[ "$(id -u)" != 0 ]]; then
    echo "testbed unavailable: not running as root" >&2; exit 1
  fi
  local t
  for t in ip tc timeout; do
    if ! command -v "$t" >/dev/null 2>&1; then
      echo "testbed unavailable: '$t' not found (install iproute2)" >&2; exit 1
    fi
  done
  # Everything is tried inside a throwaway namespace, so nothing in the
  # current one is touched.
  local ns="p2pcheck-$$-$RANDOM" err
  trap 'run ip netns del "'"$ns"'" >/dev/null 2>&1 || true' EXIT
  if ! err="$(run ip netns add "$ns" 2>&1)"; then
    echo "testbed unavailable: cannot create a network namespace: ${err//$'\n'/ }" >&2; exit 1
  fi
  if ! err="$(run ip -n "$ns" link add name cbr type bridge 2>&1)"; then
    echo "testbed unavailable: cannot create a bridge: ${err//$'\n'/ }" >&2; exit 1
  fi
  if ! err="$(run ip -n "$ns" link add name cva type veth peer name cvb 2>&1 &&
              run ip -n "$ns" link set dev cva master cbr 2>&1)"; then
    echo "testbed unavailable: cannot create a veth pair on a bridge: ${err//$'\n'/ }" >&2; exit 1
  fi
  if ! err="$(run ip netns exec "$ns" tc qdisc add dev cvb root tbf rate 100mbit burst "$TBF_BURST" latency "$TBF_LATENCY" 2>&1)"; then
    echo "testbed unavailable: cannot add a tbf qdisc: ${err//$'\n'/ }" >&2; exit 1
  fi
  if ! err="$(run ip netns del "$ns" 2>&1)"; then
    echo "testbed unavailable: cannot delete a network namespace: ${err//$'\n'/ }" >&2; exit 1
  fi
  trap - EXIT
  echo "testbed available"
}

main() {
  (( $# >= 1 )) || { usage; exit 2; }
  local cmd="$1"; shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    rate) cmd_rate "$@" ;;
    exec) cmd_exec "$@" ;;
    status) cmd_status "$@" ;;
    check) cmd_check "$@" ;;
    -h|--help|help) usage; exit 0 ;;
    *) die_usage "unknown command '$cmd'" ;;
  esac
}

main "$@"
