#!/usr/bin/env bash
# quorum-bench end to end on 2 ranks: a short sweep, a short synthetic training run and a short
# algorithm comparison must exit 0 (every element verified), print their tables, and write
# their --json files.
set -euo pipefail
mpiexec=$1 bench=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run() {  # name, then quorum-bench's arguments
  local name=$1
  shift
  if ! "$mpiexec" -n 2 "$bench" "$@" --json "$dir/$name.json" >"$dir/$name.txt" 2>&1; then
    echo "quorum-bench $* failed:"
    cat "$dir/$name.txt"
    exit 1
  fi
  cat "$dir/$name.txt"
}
expect() {  # name, pattern
  grep -q -- "$2" "$dir/$1.txt" || { echo "$1: missing '$2'"; exit 1; }
}
check_json() {  # name; Python assertions on `j`, the run's --json file, read from stdin
  local checks
  checks=$(cat)
  python3 - "$dir/$1.json" <<PY
import json, sys
j = json.load(open(sys.argv[1]))
assert j["verified"], "$1.json: not verified"
$checks
PY
}

run sweep sweep --max 64K --reps 3
expect sweep '^#  *size  *count  *type | *quorum_us .*busbw .*| *quorum/mpi  *paired'
expect sweep '^ *65536 '
expect sweep '^# all results verified'
check_json sweep <<'PY'
assert all(r["paired_ratio"] > 0 for r in j["results"]), "sweep.json: a paired ratio is missing"
PY

run train train --model tiny-many --steps 3 --compute-ms 1
expect train '^#variant  *step_ms .*quorum/this  *paired'
for v in quorum mpi-per-tensor mpi-fused ideal; do expect train "^ $v "; done
expect train '^# control plane per step'
expect train '^# all results verified'
check_json train <<'PY'
q = j["variants"][0]
assert q["name"] == "quorum" and q["paired_ratio"] == 1.0, q
assert all(v["paired_ratio"] > 0 for v in j["variants"]), j["variants"]
PY
run algos algos --min 4K --max 16K --rounds 2 --reps 3 --warmup 20
expect algos '^#  *size  *count | *auto_us  *native_us  *ring_us  *tree_us  *hierarchical_us | *best  *auto/best'
expect algos '^# crossovers (1 host, up to 2 ranks each)'
expect algos '^#   ring beats tree: '
expect algos '^ *16384 '
expect algos '^# auto against the best fixed algorithm: at most '
expect algos '^# all results verified'
# Every timed auto repetition ran one plan, counted under the algorithm auto chose for it.
check_json algos <<'PY'
for row in j["results"]:
    plans = sum(row["auto_plans"].values())
    assert plans == 2 * 3, f"{row['bytes']} bytes: auto ran {plans} plans, expected 6"
    assert all(len(s["rounds_us"]) == 2 for s in row["settings"].values()), row
PY
echo "quorum-bench smoke: ok"
