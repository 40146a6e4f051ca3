#!/usr/bin/env bash
# A rogue client attacks the coordinator's port while a real 2-rank quorum-demo trains:
# a Hello with a wrong token, a Ready before any Hello, garbage bytes, a header announcing a
# huge payload, and a half-sent frame that never completes (socket left open). Each connection
# must be dropped by the coordinator (a half-sent frame within the 10 s handshake timeout).
# Then a flood: 200 connections announcing 16 MiB each and 200 silent ones, all held; rank 0's
# RSS must grow by less than 16 MiB. The demo must still finish correctly: exit 0 and
# identical replicas.
# Usage: rogue_client.sh MPIEXEC QUORUM_DEMO
set -euo pipefail
mpiexec=$1 demo=$2
dir=$(mktemp -d)
launcher=""
cleanup() {
  if [ -n "$launcher" ]; then kill "$launcher" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Enough steps that training outlasts the attack (the half-sent frame may take 10 s to drop):
# about 40 s of training at the step time a short calibration run measures on this machine (a
# run planned for 25 s once ended after 11 s, before the attack did: the calibration had run
# slower than the training that followed).
if [ -z "${ROGUE_DEMO_STEPS:-}" ]; then
  ms=$("$mpiexec" -n 2 "$demo" --steps 200 --quiet | sed -n 's/^step time \([0-9.]*\) ms.*/\1/p')
  ROGUE_DEMO_STEPS=$(awk -v ms="${ms:-1}" 'BEGIN { s = int(40000 / (ms > 0.2 ? ms : 0.2)); print (s < 2000 ? 2000 : s) }')
fi
steps=$ROGUE_DEMO_STEPS
QUORUM_CONTROL_PORT=$port "$mpiexec" -n 2 "$demo" --steps "$steps" --quiet \
  >"$dir/out" 2>&1 &
launcher=$!
echo "rogue: demo on 2 ranks, coordinator port $port, $steps steps"

rogue_rc=0
# The frames speak this build's wire version, so only what the test intends is wrong in them.
wire_version=$(sed -n 's/.*kWireVersion = \([0-9]*\);.*/\1/p' "$(dirname "$0")/../coordinator/messages.h")
python3 - "$port" "$launcher" "$wire_version" <<'PY' || rogue_rc=$?
import os, socket, struct, sys, time
port, launcher = int(sys.argv[1]), int(sys.argv[2])
MAGIC, VERSION = 0x314D5251, int(sys.argv[3])

def frame(mtype, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IHHI", MAGIC, VERSION, mtype, n) + payload

def connect(deadline=30.0):
    end = time.time() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            if time.time() > end:
                sys.exit("rogue: coordinator port never opened")
            time.sleep(0.05)

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

def dropped_within(s, seconds):
    """Seconds until the peer closed the connection, or None if it stayed open."""
    s.settimeout(0.2)
    start = time.time()
    while time.time() - start < seconds:
        try:
            if s.recv(4096) == b"":
                return time.time() - start
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.time() - start
    return None

token = b"not-the-session-token-0123456789"
hello = struct.pack("<ii", 1, 2) + struct.pack("<I", len(token)) + token
ready = struct.pack("<I", 1) + bytes([0]) + struct.pack("<IqQ", 0, 4, 0)  # a well-formed Ready
attacks = [
    ("wrong-token Hello", frame(0, hello)),
    ("Ready before Hello", frame(2, ready)),
    ("garbage bytes", bytes((7 + 13 * i) % 256 for i in range(200))),  # deterministic junk
    ("header announcing 4 GiB", frame(2, b"", length=0xFFFFFFF0)),
    ("header announcing 16 MiB + 1", frame(0, b"\x00" * 64, length=(16 << 20) + 1)),
]
failures = 0
for name, data in attacks:
    s = connect()
    s.sendall(data[:4096])
    t = dropped_within(s, 5.0)
    s.close()
    ok = t is not None
    failures += not ok
    print(f"rogue: {name}: {'dropped after %.2f s' % t if ok else 'NOT dropped within 5 s'}")

# Half a frame: a header announcing 100 bytes, 10 of them, then silence with the socket open.
s = connect()
s.sendall(frame(0, b"\x01" * 10, length=100))
t = dropped_within(s, 2.0)  # not expected this soon; the handshake deadline is 10 s
if t is None:
    t = dropped_within(s, 13.0)
    if t is not None:
        t += 2.0
training = alive(launcher)
s.close()
if t is None:
    failures += 1
    print("rogue: half-sent frame: NOT dropped within 15 s")
elif not training:
    print(f"rogue: half-sent frame: closed after {t:.1f} s, but the demo had already finished "
          "(inconclusive; raise ROGUE_DEMO_STEPS)")
    failures += 1
else:
    print(f"rogue: half-sent frame: dropped after {t:.1f} s while training went on")

# A flood while training is under way: 200 connections, each announcing a 16 MiB payload and
# held open, then 200 that say nothing and are held open. Rank 0 (the process listening on the
# port) must not grow by 16 MiB: nothing is reserved for a peer that has not said Hello, and
# silent peers past the cap are dropped oldest first.
def listener_pid():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                    return int(pid)
        except OSError:
            continue
    return None

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

rank0 = listener_pid()
if rank0 is None:
    sys.exit("rogue: no process listens on the coordinator port")
before = rss_kib(rank0)
peak = before
for label, data in (("announcing 16 MiB", frame(0, b"\x00" * 16, length=16 << 20)),
                    ("silent", b"")):
    held = []
    for _ in range(200):
        c = connect()
        if data:
            c.sendall(data)
        held.append(c)
        peak = max(peak, rss_kib(rank0))
    time.sleep(1.0)  # let the coordinator read whatever was sent
    peak = max(peak, rss_kib(rank0))
    open_now = 0
    for c in held:
        open_now += dropped_within(c, 0.01) is None
        c.close()
    print(f"rogue: 200 connections {label}, held: {200 - open_now} dropped by rank 0, "
          f"{open_now} still open (the cap keeps at most a few)")
    if open_now > 8:
        failures += 1
        print("rogue: too many connections left awaiting their Hello")
growth = (peak - before) / 1024.0
print(f"rogue: rank 0 (pid {rank0}) RSS {before / 1024.0:.1f} MiB before the flood, "
      f"peak {peak / 1024.0:.1f} MiB (growth {growth:.1f} MiB)")
if growth >= 16:
    failures += 1
    print("rogue: rank 0 grew by 16 MiB or more under the flood")
if not alive(launcher):
    failures += 1
    print("rogue: the demo finished before the flood did (inconclusive; raise ROGUE_DEMO_STEPS)")
sys.exit(1 if failures else 0)
PY

rc=0
wait "$launcher" || rc=$?
launcher=""
drops=$(grep -c "dropped control connection" "$dir/out" || true)
grep "dropped control connection" "$dir/out" | sed 's/^.*dropped/coordinator: dropped/' || true
grep -E "^final loss|replicas" "$dir/out" | sed 's/^/demo: /' || true
echo "rogue: coordinator logged $drops dropped connections"
[ "$rc" -eq 0 ] || { echo "rogue: demo exited $rc"; cat "$dir/out"; exit 1; }
grep -q "replicas identical on all 2 ranks: yes" "$dir/out" || { echo "rogue: replicas differ"; exit 1; }
[ "$rogue_rc" -eq 0 ] || exit 1
[ "$drops" -ge 6 ] || { echo "rogue: expected 6 drops in the log"; cat "$dir/out"; exit 1; }
# Each drop is logged with its own reason: only the half-sent frame waits for the deadline.
timeouts=$(grep -c "no Hello within 10 s" "$dir/out" || true)
[ "$timeouts" -eq 1 ] || { echo "rogue: $timeouts drops blamed on the handshake deadline, expected 1"; exit 1; }
grep -q "before its Hello: .*-byte limit" "$dir/out" ||
  { echo "rogue: the oversized length prefix was not logged with its reason"; exit 1; }
echo "rogue: demo finished correctly under attack"
