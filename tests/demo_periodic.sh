#!/usr/bin/env bash
# The demo trainer in periodic mode (local SGD) at 4 ranks: local steps run without gradient
# allreduces, the parameters are averaged every QUORUM_AVERAGE_PERIOD steps and once more at
# the end, so the replicas end bit-identical and the loss still falls.
set -euo pipefail
mpiexec=$1 demo=$2
out=$(QUORUM_SYNC_MODE=periodic QUORUM_AVERAGE_PERIOD=4 QUORUM_AVERAGE_WARMUP=2 \
      "$mpiexec" -n 4 "$demo" --steps 42 --quiet) || { echo "periodic demo failed: $out"; exit 1; }
echo "$out"
grep -q "replicas identical on all 4 ranks: yes" <<<"$out" || { echo "replicas differ"; exit 1; }
# 42 steps, 2 of warm-up: 40 local steps in 10 segments of 4, each ending in an averaging.
grep -q "periodic averaging (rank 0): 40 local steps, 10 averagings" <<<"$out" ||
  { echo "expected 40 local steps and 10 averagings"; exit 1; }
read -r last first <<<"$(sed -n 's/^final loss \([0-9.]*\) (first \([0-9.]*\)).*/\1 \2/p' <<<"$out")"
awk -v l="$last" -v f="$first" 'BEGIN { if (l >= f) { printf "loss did not fall: %s -> %s\n", f, l; exit 1 } }'
