#!/usr/bin/env bash
# The main job: install what is missing, build, train the demo MLP on 4 ranks with a timeline,
# then print the per-step sync-cost report from that timeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=build/demo-timeline
mkdir -p "$out"
rm -f "$out"/trace.rank*.json
QUORUM_TIMELINE="$out/trace.json" mpiexec -n "${RANKS:-4}" build/tools/quorum-demo "$@"
echo
echo "== sync-cost report (build/tools/trace/quorum-trace summary $out/trace.json)"
build/tools/trace/quorum-trace summary --top 5 --last 3 "$out/trace.json"
build/tools/trace/quorum-trace merge -o "$out/merged.json" "$out/trace.json"
build/tools/trace/quorum-trace plot -o "$out/steps.html" "$out/trace.json"
echo
echo "timeline: $out/merged.json (open in https://ui.perfetto.dev or chrome://tracing)"
echo "per-step plot: $out/steps.html"
