#!/usr/bin/env bash
# Emulated hosts on this machine: each is a network namespace with its own address on a bridge,
# its own host name (a UTS namespace per launch) and, optionally, a shaped link.
#
#   scripts/hosts.sh up N        # hosts h0..h(N-1) at 10.213.0.1..N; RATE=1gbit shapes each link
#   scripts/hosts.sh down        # removes them
#   scripts/hosts.sh status      # lists them
#   scripts/hosts.sh check       # exit 0 if namespaces can be made here, 77 (saying why) if not
#
# Launch with the real mpiexec through the exec script next to this one:
#   mpiexec -launcher ssh -launcher-exec scripts/host-exec.sh -hosts h0,h1 -n 4 ...
# Ranks on one emulated host share memory (MPICH's shm); between hosts set UCX_TLS=self,tcp so
# UCX does not find the other namespace's shared memory and uses TCP over the bridge. Each host's
# link is shaped in both directions (tbf on both ends of its veth pair), like a switch port.
# Needs root (ip netns, ip link, tc). Host names go into /etc/hosts between marker lines.
set -euo pipefail

source "$(dirname "$0")/hosts-net.sh"
readonly MARK="# quorum emulated hosts"

hosts_present() { ip netns list 2>/dev/null | sed -n 's/^quorum-\(h[0-9]*\).*/\1/p' | sort -V; }

check() {
  if [ "$(id -u)" -ne 0 ]; then echo "emulated hosts need root (ip netns, tc)"; return 77; fi
  for tool in ip tc unshare; do
    command -v "$tool" >/dev/null || { echo "emulated hosts need '$tool' (iproute2, util-linux)"; return 77; }
  done
  if ! ip netns add quorum-probe 2>/dev/null; then
    echo "cannot create a network namespace here"; return 77
  fi
  ip netns del quorum-probe
  if ! ip link add quorum-probe type bridge 2>/dev/null; then
    echo "cannot create a bridge here"; return 77
  fi
  ip link del quorum-probe
}

shape() {  # shape DEV [netns]: tbf at RATE on DEV's egress
  local dev=$1 ns=${2:-}
  [ -n "${RATE:-}" ] || return 0
  local run=()
  [ -n "$ns" ] && run=(ip netns exec "$ns")
  "${run[@]}" tc qdisc replace dev "$dev" root tbf rate "$RATE" burst "${BURST:-256k}" latency 20ms
}

up() {
  local n=$1
  [[ "$n" =~ ^[1-9][0-9]?$ ]] && [ "$n" -le 64 ] || { echo "hosts.sh up: N must be 1..64, got '$n'" >&2; exit 2; }
  check || exit $?
  down >/dev/null
  ip link add "$BRIDGE" type bridge
  ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local entries=("$MARK begin")
  for ((i = 0; i < n; i++)); do
    local host=h$i ns; ns=$(ns_of "h$i")
    ip netns add "$ns"
    ip link add "qv$i" type veth peer name eth0 netns "$ns"
    ip link set "qv$i" master "$BRIDGE"
    ip link set "qv$i" up
    ip netns exec "$ns" ip addr add "$(addr_of "$host")/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip route add default via "$GATEWAY"
    shape "qv$i"
    shape eth0 "$ns"
    entries+=("$(addr_of "$host") $host")
  done
  entries+=("$MARK end")
  printf '%s\n' "${entries[@]}" >> /etc/hosts
  echo "hosts.sh: $n emulated hosts up (h0..h$((n - 1)) at $PREFIX.1..$n, link ${RATE:-unshaped})"
}

down() {
  local host ns
  for host in $(hosts_present); do
    ns=$(ns_of "$host")
    # Deleting a namespace leaves its processes running (e.g. ranks of a job hung in finalize).
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  if grep -q "^$MARK begin" /etc/hosts; then
    # /etc/hosts may be a bind mount: rewrite it in place rather than replacing the file.
    local kept; kept=$(sed "/^$MARK begin/,/^$MARK end/d" /etc/hosts)
    printf '%s\n' "$kept" > /etc/hosts
  fi
  echo "hosts.sh: emulated hosts down"
}

status() {
  local any=0
  for host in $(hosts_present); do
    any=1
    local ns; ns=$(ns_of "$host")
    local addr; addr=$(ip netns exec "$ns" ip -4 -o addr show dev eth0 | awk '{print $4}')
    local q; q=$(ip netns exec "$ns" tc qdisc show dev eth0 | head -1)
    echo "$host  $addr  $q"
  done
  [ "$any" = 1 ] || echo "no emulated hosts"
}

case "${1:-}" in
  up) up "${2:?hosts.sh up N}" ;;
  down) down ;;
  status) status ;;
  check) check ;;
  *) echo "usage: hosts.sh up N | down | status | check" >&2; exit 2 ;;
esac
