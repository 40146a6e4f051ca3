#!/usr/bin/env bash
# quorum-bench coordinator (a plain process, no mpiexec) on 8 simulated ranks: the coordinator
# path must cost rank 0 at least one message per rank per step (O(buckets)), the fast path less
# than one (O(1): a FastReport every 8 steps), and the fast path must have been handed a schedule.
# With the default jitter: per-rank start skew and swaps of neighbouring gradients, so the
# coordinator's plan order follows whichever rank came last and changes from step to step.
set -euo pipefail
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" coordinator --ranks 8 --tensors 161 --steps 12 --json >"$out"
python3 - "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
slow, fast = j["slow"], j["fast"]
assert fast["schedule_issued"], "the fast path was never handed a schedule"
assert fast["steady_steps"] > 0, "no fast steady state"
assert slow["median"]["msgs_in_per_rank"] >= 1, slow["median"]
assert fast["mean"]["msgs_in_per_rank"] < 1, fast["mean"]
assert fast["median"]["msgs_in_per_rank"] < 1, fast["median"]
print("slow: %.2f msgs in per rank per step, fast: %.3f (mean); schedule from step %d" %
      (slow["median"]["msgs_in_per_rank"], fast["mean"]["msgs_in_per_rank"],
       fast["first_schedule_step"]))
PY
