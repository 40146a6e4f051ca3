#!/usr/bin/env bash
# quorum-torch-example at 2 and 4 ranks must reach the same loss as plain libtorch in one
# process (--local, no quorum) on the same global batch, within 1e-4 relative (the average of
# per-rank shard means rounds differently from one mean), with the loss identical on every rank,
# bit-identical replicas, and a falling loss.
set -euo pipefail
mpiexec=$1 example=$2
args=(--steps 60 --batch 256 --print-every 20 --warmup 0 --quiet)
one=$("$example" --local "${args[@]}") || { echo "single-process run failed: $one"; exit 1; }
echo "1 process : $one"
loss() { sed -n 's/^final loss \([0-9.]*\) (first \([0-9.]*\)).*/\1 \2/p' <<<"$1" | head -1; }
read -r l1 f1 <<<"$(loss "$one")"
for n in 2 4; do
  out=$("$mpiexec" -n "$n" "$example" "${args[@]}") || { echo "$n-rank run failed: $out"; exit 1; }
  echo "$n ranks   : $out"
  grep -q "loss identical on all $n ranks: yes; replicas identical: yes" <<<"$out" ||
    { echo "$n ranks: loss or replicas differ across ranks"; exit 1; }
  read -r ln fn <<<"$(loss "$out")"
  awk -v a="$l1" -v b="$ln" -v f="$fn" -v n="$n" 'BEGIN {
    d = a - b; if (d < 0) d = -d;
    if (d > 1e-4 * a) { printf "final loss differs: 1 process %s, %d ranks %s\n", a, n, b; exit 1 }
    if (b >= f) { printf "loss did not fall at %d ranks: %s -> %s\n", n, f, b; exit 1 }
    printf "%d ranks: equivalent within 1e-4 relative (|diff| = %g); loss fell %s -> %s\n", n, d, f, b
  }'
done
