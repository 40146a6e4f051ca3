#!/usr/bin/env bash
# Runs quorum across emulated hosts (scripts/hosts.sh): 2 hosts x 2 ranks and 2 hosts x 1/3
# ranks (uneven), shared memory inside a host and TCP between them. Checks that every rank sees
# its host's rank count, that the coordinator is reached at h0's bridge address from the other
# namespace, that a client from another namespace with a wrong token is turned away while
# training goes on, and that the collectives pass (flat, and hierarchical over the real hosts)
# and the demo's replicas stay identical with the hierarchical allreduce.
# Skips (77) where namespaces cannot be created, saying why.
# Usage: emulated_hosts.sh SOURCE_ROOT MPIEXEC QUORUM_DEMO MPI_COLLECTIVES MPI_ALGORITHMS
set -euo pipefail
root=$1 mpiexec=$2 demo=$3 collectives=$4 algorithms=$5
source "$root/scripts/hosts-net.sh"
h0_addr=$(addr_of h0)
why=$("$root/scripts/hosts.sh" check) || { echo "skipped: $why"; exit 77; }
if ip netns list | grep -q '^quorum-h'; then
  echo "skipped: emulated hosts are already up (scripts/hosts.sh down first)"; exit 77
fi
dir=$(mktemp -d)
trap '"$root/scripts/hosts.sh" down >/dev/null; rm -rf "$dir"' EXIT
"$root/scripts/hosts.sh" up 2
run() {  # run HOSTS N PROGRAM ARGS...
  local hosts=$1 n=$2; shift 2
  timeout 120 "$mpiexec" -launcher ssh -launcher-exec "$root/scripts/host-exec.sh" -hosts "$hosts" \
    -n "$n" -genv UCX_TLS self,tcp -genv QUORUM_LOG_LEVEL info "$@"
}
fail() { echo "FAIL: $*"; exit 1; }

for layout in "h0:2,h1:2 2 2" "h0:1,h1:3 1 3"; do
  read -r hosts on0 on1 <<<"$layout"
  echo "== $hosts: collectives, algorithms, demo"
  run "$hosts" 4 "$collectives" >"$dir/coll" 2>&1 || { cat "$dir/coll"; fail "mpi_collectives on $hosts"; }
  run "$hosts" 4 -genv EXPECT_HOSTS 2 -genv QUORUM_ALGO hierarchical "$collectives" >"$dir/coll" 2>&1 ||
    { cat "$dir/coll"; fail "mpi_collectives with QUORUM_ALGO=hierarchical on $hosts"; }
  run "$hosts" 4 "$algorithms" >"$dir/algo" 2>&1 || { cat "$dir/algo"; fail "mpi_algorithms on $hosts"; }
  run "$hosts" 4 -genv QUORUM_HIERARCHICAL on "$demo" --steps 40 >"$dir/demo" 2>&1 || { cat "$dir/demo"; fail "demo on $hosts"; }
  grep -q "replicas identical on all 4 ranks: yes" "$dir/demo" || { cat "$dir/demo"; fail "replicas differ on $hosts"; }
  for h in h0 h1; do
    want=$([ "$h" = h0 ] && echo "$on0" || echo "$on1")
    got=$(grep -c "^$h:.*connected to the coordinator at $h0_addr:.* $want on this host" "$dir/demo" || true)
    [ "$got" = "$want" ] || { cat "$dir/demo"; fail "$hosts: expected $want ranks on $h reporting '$want on this host' and reaching $h0_addr, got $got"; }
  done
done

echo "== a client in h1 with a wrong token, while the demo trains"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
# The frame speaks this build's wire version, so only the token is wrong in it.
wire_version=$(sed -n 's/.*kWireVersion = \([0-9]*\);.*/\1/p' "$root/coordinator/messages.h")
run h0:2,h1:2 4 -genv QUORUM_CONTROL_PORT $port "$demo" --steps 3000 --quiet \
  >"$dir/long" 2>&1 &
job=$!
reached=no
for _ in $(seq 50); do
  if ip netns exec "$(ns_of h1)" python3 - "$h0_addr" "$port" "$wire_version" >"$dir/rogue" 2>&1 <<'PY'
import socket, struct, sys
address, port, version = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
token = b"not-the-session-token-0123456789"
hello = struct.pack("<ii", 1, 2) + struct.pack("<I", len(token)) + token  # rank 1 of 2
s = socket.create_connection((address, port), timeout=2)
s.sendall(struct.pack("<IHHI", 0x314D5251, version, 0, len(hello)) + hello)
s.settimeout(10)
try:
    data = s.recv(64)
except ConnectionResetError:
    data = b""
print("closed by coordinator" if data == b"" else "answered %r" % data)
PY
  then reached=yes; break; fi
  sleep 0.2
done
wait "$job" || { cat "$dir/long"; fail "demo with a rogue client in h1"; }
[ "$reached" = yes ] || { cat "$dir/rogue"; fail "could not reach the coordinator at $h0_addr:$port from h1"; }
grep -q "closed by coordinator" "$dir/rogue" || { cat "$dir/rogue"; fail "a wrong-token client from h1 was not dropped"; }
grep -q "replicas identical on all 4 ranks: yes" "$dir/long" || { cat "$dir/long"; fail "replicas differ"; }
echo "emulated hosts: all checks passed"
