#!/usr/bin/env bash
# Rank 0's coordinator from 2 to 4,096 simulated ranks (quorum-bench coordinator: the real
# CoordinatorService, no MPI), ResNet-50's 161 gradients, on the coordinator path and on the
# fast path, as the README's scale table (markdown). About a minute. Needs a build.
#   scripts/coordinator_scale.sh [build-dir] [max-ranks]     (defaults: build, 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:-build}/tools/quorum-bench
max=${2:-4096}
[ -x "$bench" ] || { echo "no $bench: build first (scripts/build.sh)"; exit 2; }
echo "### $(date -u +%FT%TZ) $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| ranks | path | rank 0 CPU / step | msgs in / step | msgs out / step | in / rank / step | bytes in / step | bytes out / step | schedule from step | fallbacks |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
n=2
while [ "$n" -le "$max" ]; do
  "$bench" coordinator --ranks "$n" --tensors 161 --steps 25 --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
for path, label in (("slow", "coordinator"), ("fast", "fast")):
    r = j[path]
    m = r["mean"]  # means: the fast path reports every 8th step
    first = r["first_schedule_step"] if r.get("schedule_issued") else "never"
    print("| %d | %s | %.1f us | %.1f | %.1f | %.3f | %.0f | %.0f | %s | %s |" % (
        j["ranks"], label, m["cpu_us"], m["msgs_in"], m["msgs_out"], m["msgs_in_per_rank"],
        m["bytes_in"], m["bytes_out"], first if path == "fast" else "-",
        r["fallbacks"] if path == "fast" else "-"))
'
  n=$((n * 2))
done
