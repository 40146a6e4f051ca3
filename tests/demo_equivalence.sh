#!/usr/bin/env bash
# The demo trainer at 4 ranks must reach the same loss as 1 rank on the same global batch
# (within float tolerance: the average of 4 shard means rounds differently from one mean),
# its loss must fall, and its replicas must be bit-identical.
set -euo pipefail
mpiexec=$1 demo=$2
run() { "$mpiexec" -n "$1" "$demo" --steps 40 --quiet; }
one=$(run 1) || { echo "1-rank run failed: $one"; exit 1; }
four=$(run 4) || { echo "4-rank run failed: $four"; exit 1; }
echo "1 rank : $one"
echo "4 ranks: $four"
loss() { sed -n 's/^final loss \([0-9.]*\) (first \([0-9.]*\)).*/\1 \2/p' <<<"$1" | head -1; }
read -r l1 f1 <<<"$(loss "$one")"
read -r l4 f4 <<<"$(loss "$four")"
grep -q "replicas identical on all 4 ranks: yes" <<<"$four" || { echo "replicas differ"; exit 1; }
awk -v a="$l1" -v b="$l4" -v f="$f4" 'BEGIN {
  d = a - b; if (d < 0) d = -d;
  if (d > 1e-4 * a) { printf "final loss differs: 1 rank %s, 4 ranks %s\n", a, b; exit 1 }
  if (b >= f) { printf "loss did not fall: %s -> %s\n", f, b; exit 1 }
  printf "equivalent within 1e-4 relative (|diff| = %g); loss fell %s -> %s\n", d, f, b
}'
