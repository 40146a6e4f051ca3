#!/usr/bin/env bash
# Head-to-head: quorum (libtorch + DistributedOptimizer, build/tools/quorum-torch-example) against
# PyTorch DDP with the gloo backend (tools/ddp_baseline.py, Debian python3-torch via
# /usr/bin/python3) on the same MLP, global batch and steps at 2 ranks under mpiexec, plus each
# framework's single-process compute time on the per-rank batch. Communication overhead =
# 2-rank step time - 1-process step time on the per-rank batch. The four runs are interleaved,
# REPS times; each run reports its median step time and the table shows the median of those.
#   REPS=5 STEPS=300 BATCH=256 scripts/compare_ddp.sh [extra args for both trainers]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-5} steps=${STEPS:-300} batch=${BATCH:-256} build=${BUILD:-build}
py=/usr/bin/python3
example=$build/tools/quorum-torch-example
mpiexec=$(command -v mpiexec.mpich || command -v mpiexec)
[ -x "$example" ] || { echo "$example not built (needs -Dtorch=enabled and libtorch-dev)"; exit 1; }
$py -c 'import torch' 2>/dev/null || { echo "python3-torch is missing: apt-get install python3-torch libopenblas0"; exit 1; }
export OMP_NUM_THREADS=1 MASTER_ADDR=127.0.0.1
common=(--steps "$steps" --warmup 20 --print-every "$steps" --threads 1 --quiet "$@")
half=$((batch / 2))

median_of_run() { sed -n 's/^step time: median \([0-9.]*\) ms.*/\1/p' <<<"$1"; }
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A runs
run() {  # name command...
  local name=$1; shift
  local out rc=0
  out=$(timeout 300 "$@" 2>&1) || rc=$?
  local m; m=$(median_of_run "$out")
  [ -n "$m" ] || { echo "$name failed (exit $rc, or ran over 300 s) before its step time:"; echo "$out"; exit 1; }
  # A failure after the timed loop (e.g. at shutdown) does not change the figure; say so.
  [ "$rc" -eq 0 ] || echo "  note: $name exited $rc after reporting: $(grep -m1 -i 'fail\|error' <<<"$out" || true)"
  runs[$name]="${runs[$name]:-} $m"
  [ "$name" != quorum2 ] || finals="${finals:-}$(sed -n 's/^final loss \([0-9.]*\).*/q=\1 /p' <<<"$out")"
  [ "$name" != ddp2 ] || finals="${finals:-}$(sed -n 's/^final loss \([0-9.]*\).*/d=\1 /p' <<<"$out")"
}
echo "compare_ddp: MLP, global batch $batch at 2 ranks ($half per rank), $steps steps (20 warmup), $reps repetitions, 1 torch thread per process"
for ((i = 1; i <= reps; i++)); do
  run quorum2 "$mpiexec" -n 2 "$example" --batch "$batch" "${common[@]}"
  run torch1 "$example" --local --batch "$half" "${common[@]}"
  MASTER_PORT=$(free_port) run ddp2 "$mpiexec" -n 2 $py tools/ddp_baseline.py --batch "$batch" "${common[@]}"
  run py1 $py tools/ddp_baseline.py --local --batch "$half" "${common[@]}"
  echo "  repetition $i/$reps done"
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
printf '%-46s %-36s %s\n' "run" "median step time per repetition (ms)" "median"
for k in quorum2 torch1 ddp2 py1; do
  case $k in
    quorum2) label="quorum, 2 ranks, libtorch ($half per rank)" ;;
    torch1) label="libtorch, 1 process, batch $half (no quorum)" ;;
    ddp2) label="DDP gloo, 2 ranks, PyTorch ($half per rank)" ;;
    py1) label="PyTorch, 1 process, batch $half (no DDP)" ;;
  esac
  printf '%-46s %-36s %s\n' "$label" "${runs[$k]# }" "$(median "${runs[$k]}")"
done
q=$(median "${runs[quorum2]}") t=$(median "${runs[torch1]}") d=$(median "${runs[ddp2]}") p=$(median "${runs[py1]}")
awk -v q="$q" -v t="$t" -v d="$d" -v p="$p" 'BEGIN {
  oq = q - t; od = d - p;
  printf "overhead (2-rank step - 1-process step on the per-rank batch): quorum %.3f ms, DDP-gloo %.3f ms\n", oq, od
  if (od > 0) printf "quorum overhead / DDP-gloo overhead = %.2f (goal <= 0.33): %s\n", oq / od, (oq <= od / 3 ? "met" : "NOT met")
}'
echo "final losses (same data and initial weights in both): $(tr ' ' '\n' <<<"${finals:-}" | sed '/^$/d' | sort -u | paste -sd' ')"
