#!/usr/bin/env bash
# hydra's launcher for emulated hosts (scripts/hosts.sh): called as ssh would be,
#   host-exec.sh [-x] HOST COMMAND...
# it runs COMMAND (one shell string, as ssh passes it) inside HOST's network namespace with
# HOST as its host name. mpiexec publishes its control port under this machine's name, which
# resolves to loopback here; inside a namespace loopback is the host's own, so the proxy is
# pointed at the bridge's address instead, where mpiexec's port is reachable.
set -euo pipefail
source "$(dirname "$0")/hosts-net.sh"
[ "${1:-}" = "-x" ] && shift
host=${1:?host-exec.sh: no host}
shift
ns=$(ns_of "$host")
if ! ip netns list | grep -q "^$ns\b"; then
  echo "host-exec.sh: no emulated host '$host' (run scripts/hosts.sh up N)" >&2
  exit 255
fi
command="$*"
command=$(printf '%s' "$command" | sed -E "s/--control-port [^ :]+:/--control-port $GATEWAY:/")
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$command"
