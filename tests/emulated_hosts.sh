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
# run OUT PASS HOSTS N PROGRAM ARGS...: runs the job with its output in OUT and succeeds when it
# exited 0 and OUT has a line matching PASS (rank 0's verdict for the whole job). MPICH 4.0.2 +
# UCX 1.13 can hang in MPI_Finalize over TCP (scripts/ucx-finalize-repro.sh reproduces it without
# quorum): a job whose N ranks all said "finalizing MPI" and sat there for 15 s is stopped, and
# then it succeeds on the PASS line alone, counted in $dir/hangs. Anything else that runs
# past 240 s fails.
run() {
  local out=$1 pass=$2 hosts=$3 n=$4; shift 4
  "$mpiexec" -launcher ssh -launcher-exec "$root/scripts/host-exec.sh" -hosts "$hosts" \
    -n "$n" -genv UCX_TLS self,tcp -genv QUORUM_LOG_LEVEL info "$@" >"$out" 2>&1 &
  local job=$! ticks=0 since=-1 rc=0
  while kill -0 "$job" 2>/dev/null; do
    sleep 0.5
    ticks=$((ticks + 1))
    if [ "$since" -lt 0 ] && [ "$(grep -c 'finalizing MPI' "$out")" -ge "$n" ]; then since=$ticks; fi
    if [ "$since" -ge 0 ] && [ $((ticks - since)) -ge 30 ]; then
      stop_job "$job"
      echo "$out" >>"$dir/hangs"
      echo "  $*: all $n ranks in MPI_Finalize for 15 s (MPICH/UCX over TCP); stopped"
      echo "emulated_hosts.sh: all $n ranks were in MPI_Finalize for 15 s (MPICH/UCX over TCP); job stopped" >>"$out"
      grep -Eq "$pass" "$out"
      return
    fi
    if [ "$ticks" -ge 480 ]; then
      stop_job "$job"
      echo "emulated_hosts.sh: still running after 240 s; job stopped" >>"$out"
      return 124
    fi
  done
  wait "$job" || rc=$?
  [ "$rc" = 0 ] || return "$rc"
  grep -Eq "$pass" "$out"
}
# stop_job PID: mpiexec first (hydra then ends its proxies), then whatever is left in the hosts.
stop_job() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 10); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for h in h0 h1; do ip netns pids "$(ns_of "$h")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true; done
}
tests_passed='^mpi tests: passed on all 4 ranks$'
identical='replicas identical on all 4 ranks: yes'
fail() { echo "FAIL: $*"; exit 1; }

for layout in "h0:2,h1:2 2 2" "h0:1,h1:3 1 3"; do
  read -r hosts on0 on1 <<<"$layout"
  echo "== $hosts: collectives, algorithms, demo"
  run "$dir/coll" "$tests_passed" "$hosts" 4 "$collectives" ||
    { cat "$dir/coll"; fail "mpi_collectives on $hosts"; }
  run "$dir/coll" "$tests_passed" "$hosts" 4 -genv EXPECT_HOSTS 2 -genv QUORUM_ALGO hierarchical "$collectives" ||
    { cat "$dir/coll"; fail "mpi_collectives with QUORUM_ALGO=hierarchical on $hosts"; }
  run "$dir/algo" "$tests_passed" "$hosts" 4 "$algorithms" ||
    { cat "$dir/algo"; fail "mpi_algorithms on $hosts"; }
  run "$dir/demo" "$identical" "$hosts" 4 -genv QUORUM_HIERARCHICAL on "$demo" --steps 40 ||
    { cat "$dir/demo"; fail "demo on $hosts (or its replicas differ)"; }
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
run "$dir/long" "$identical" h0:2,h1:2 4 -genv QUORUM_CONTROL_PORT $port "$demo" --steps 3000 --quiet &
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
wait "$job" || { cat "$dir/long"; fail "demo with a rogue client in h1 (or its replicas differ)"; }
[ "$reached" = yes ] || { cat "$dir/rogue"; fail "could not reach the coordinator at $h0_addr:$port from h1"; }
grep -q "closed by coordinator" "$dir/rogue" || { cat "$dir/rogue"; fail "a wrong-token client from h1 was not dropped"; }
echo "emulated hosts: all checks passed ($(cat "$dir/hangs" 2>/dev/null | wc -l) of 9 jobs hung in MPI_Finalize and were stopped)"
