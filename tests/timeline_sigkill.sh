#!/usr/bin/env bash
# Ranks killed with SIGKILL mid-run leave timeline files that still parse as JSON (the writer
# keeps each file valid at every moment). The PIDs to kill come from the files' own metadata.
# Whatever happens, nothing started here outlives the script.
set -uo pipefail
mpiexec=$1 demo=$2
dir=$(mktemp -d)
QUORUM_TIMELINE="$dir/t.json" setsid "$mpiexec" -n 2 "$demo" --steps 100000000 --quiet \
  >"$dir/out" 2>&1 &
launcher=$!
cleanup() {
  kill -9 -- "-$launcher" 2>/dev/null   # the whole session: mpiexec and its ranks
  wait "$launcher" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
count_events() { python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["traceEvents"]))' "$1" 2>/dev/null || echo 0; }
for _ in $(seq 1 600); do   # up to 60 s (slow under sanitizers) for a few hundred events each
  if [ -f "$dir/t.rank0.json" ] && [ -f "$dir/t.rank1.json" ] &&
     [ "$(count_events "$dir/t.rank0.json")" -gt 300 ] && [ "$(count_events "$dir/t.rank1.json")" -gt 300 ]; then
    break
  fi
  sleep 0.1
done
pids=()
for f in "$dir"/t.rank0.json "$dir"/t.rank1.json; do
  [ -f "$f" ] || { echo "no timeline file $f after 60 s"; cat "$dir/out"; exit 1; }
  pids+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["otherData"]["pid"])' "$f")")
done
kill -9 "${pids[@]}"   # both at once, mid-run
wait "$launcher" 2>/dev/null   # mpiexec reports the killed ranks
status=0
for f in "$dir"/t.rank0.json "$dir"/t.rank1.json; do
  python3 - "$f" <<'PY' || status=1
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
assert d["otherData"]["format"] == "quorum-timeline", "not a quorum trace"
assert len(ev) > 300, f"only {len(ev)} events"
print(f"{sys.argv[1].rsplit('/', 1)[1]}: valid JSON after SIGKILL, {len(ev)} events")
PY
done
exit $status
