#!/usr/bin/env bash
# The main job: install what is missing, build, train the demo MLP on 4 ranks with a timeline,
# then print the per-step sync-cost report from that timeline.
# HOSTS=h0,h1 trains across emulated hosts (scripts/hosts.sh up 2 first): RANKS ranks spread
# evenly, shared memory inside a host and TCP between them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=build/demo-timeline
mkdir -p "$out"
rm -f "$out"/trace.rank*.json
launch=()
if [ -n "${HOSTS:-}" ]; then
  nhosts=$(tr ',' '\n' <<<"$HOSTS" | grep -c .)
  launch=(-launcher ssh -launcher-exec "$PWD/scripts/host-exec.sh" -hosts "$HOSTS"
          -ppn $(( (${RANKS:-4} + nhosts - 1) / nhosts )) -genv UCX_TLS self,tcp)
fi
QUORUM_TIMELINE="$out/trace.json" mpiexec "${launch[@]}" -n "${RANKS:-4}" build/tools/quorum-demo "$@"
echo
echo "== sync-cost report (build/tools/trace/quorum-trace summary $out/trace.json)"
build/tools/trace/quorum-trace summary --top 5 --last 3 "$out/trace.json"
build/tools/trace/quorum-trace merge -o "$out/merged.json" "$out/trace.json"
build/tools/trace/quorum-trace plot -o "$out/steps.html" "$out/trace.json"
echo
echo "timeline: $out/merged.json (open in https://ui.perfetto.dev or chrome://tracing)"
echo "per-step plot: $out/steps.html"
