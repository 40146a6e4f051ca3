#!/usr/bin/env bash
# One pass over the speed targets of the README's performance section, 2 ranks, about 4 minutes:
# 4 KiB latency (the blocking quorum::allreduce, on the fast path; once more with it off) and
# 16/64 MiB against raw MPI_Allreduce (three runs each), tiny-many with 20 ms of compute, ResNet-50 with zero
# compute on shared memory and over TCP, interleaved (three runs each), rank 0's coordinator
# under 4,096 simulated ranks, and auto against every fixed algorithm from 4 KiB to 64 MiB. Needs a build (scripts/build.sh).
#   scripts/perf_targets.sh [build-dir]     (default: build)
set -uo pipefail
cd "$(dirname "$0")/.."
bench=${1:-build}/tools/quorum-bench
[ -x "$bench" ] || { echo "no $bench: build first (scripts/build.sh)"; exit 2; }
rows() { grep -E '^ +[0-9]'; }

echo "### $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "### allreduce: 4 KiB (300 reps), 16 and 64 MiB (20 reps); then quorum/mpi as a ratio of medians and paired"
for _ in 1 2 3; do
  mpiexec -n 2 "$bench" allreduce --sizes 4K --reps 300 2>&1 | rows
  mpiexec -n 2 "$bench" allreduce --sizes 16M,64M --reps 20 2>&1 | rows
done
echo "### 4 KiB with the fast path off (every round through rank 0), for comparison"
QUORUM_FAST_PATH=0 mpiexec -n 2 "$bench" allreduce --sizes 4K --reps 300 2>&1 | rows
echo "### tiny-many (500 small tensors), 20 ms compute: quorum / one MPI_Allreduce per tensor"
for _ in 1 2 3; do
  out=$(mpiexec -n 2 "$bench" train --model tiny-many --compute-ms 20 --steps 20 2>&1)
  echo "$(awk '$1 == "quorum" {q = $2} $1 == "mpi-per-tensor" {p = $2; r = $6; pp = $7}
    END {print "quorum", q, "ms, per-tensor", p, "ms, ratio", r, "paired", pp}' <<<"$out")" \
    "$(grep -o 'per step: [0-9.]* plans ([0-9.]* on the fast path' <<<"$out")"
done
echo "### ResNet-50, zero compute: quorum / one MPI_Allreduce per tensor (median ratio, paired)"
for _ in 1 2 3; do
  for net in shm tcp; do
    if [ "$net" = tcp ]; then export UCX_TLS=self,tcp; else unset UCX_TLS; fi
    out=$(mpiexec -n 2 "$bench" train --model resnet50 --compute-ms 0 --steps 10 2>&1)
    echo "$net $(awk '$1 == "quorum" {q = $2} $1 == "mpi-per-tensor" {p = $2; r = $6; pp = $7}
      END {print "quorum", q, "ms, per-tensor", p, "ms, ratio", r, "paired", pp}' <<<"$out")" \
      "$(grep -o 'per step: [0-9.]* plans ([0-9.]* on the fast path' <<<"$out")"
  done
done
unset UCX_TLS
echo "### rank 0's coordinator under 4,096 simulated ranks x 161 tensors (ResNet-50): per step, slow path and fast path (target: O(1) messages per rank, <= 1 ms CPU)"
"$bench" coordinator --ranks 4096 --tensors 161 --steps 10 2>&1 | grep -E '^#path| median|^# fast path'
echo "### auto against each fixed algorithm, 5 rounds"
mpiexec -n 2 "$bench" algos --min 4K --max 64M --rounds 5 2>&1 |
  grep -E '^ +[0-9]|^#  *size|auto against'
echo "### end $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
