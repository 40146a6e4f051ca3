#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test (unit, net, mpi).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
rc=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || rc=$?
logs=(main=build/meson-logs/testlog.json)
# The whole suite (no arguments, as CI runs it) goes on with the unit and net suites under
# ASan+UBSan and a short libFuzzer run per target (QUORUM_CI_SANITIZE=0 or
# QUORUM_CI_FUZZ_SECONDS=0 skips either). A step that cannot even build counts as one failure.
if [ $# -eq 0 ] && [ "${QUORUM_CI_SANITIZE:-1}" != 0 ]; then
  rm -f build-asan/meson-logs/testlog.json
  # MPI suites under ASan: scripts/sanitize.sh asan --suite mpi (not in CI: MPICH/UCX noise).
  scripts/sanitize.sh asan --suite unit --suite net || rc=$?
  logs+=(asan=build-asan/meson-logs/testlog.json)
fi
if [ $# -eq 0 ] && [ "${QUORUM_CI_FUZZ_SECONDS:-20}" != 0 ]; then
  rm -f build-fuzz/fuzz-results.json
  scripts/fuzz.sh "${QUORUM_CI_FUZZ_SECONDS:-20}" || rc=$?
  logs+=(fuzz=build-fuzz/fuzz-results.json)
fi
# Plain lines with the counts, read from meson's own JSON logs: one per run, then the total
# (always the last line).
python3 - "${logs[@]}" <<'PY' || true
import json, sys
total = {"OK": 0, "FAIL": 0, "SKIP": 0}
failed = []  # (label, record) of every test that did not pass or skip
per_run = []  # (label, counts)
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
    try:
        for line in open(path):
            rec = json.loads(line)
            r = rec.get("result", "")
            if r in counts: counts[r] += 1
            elif r: counts["FAIL"] += 1
            if r and r not in ("OK", "SKIP", "EXPECTEDFAIL"): failed.append((label, rec))
    except OSError:
        counts["FAIL"] += 1  # the run did not get as far as testing
        failed.append((label, {"name": path, "result": "NOT RUN", "stdout": ""}))
    for k in total: total[k] += counts[k]
    per_run.append((label, counts))
# Failures again at the very end, with the tail of their output, so that a log cut to its last
# lines still says what broke.
for label, rec in failed:
    print(f"--- {label}: {rec.get('name')} {rec.get('result')} after {rec.get('duration', 0):.1f} s")
    lines = (rec.get("stdout") or "").splitlines()
    # Another rank's failure lines may lie far above the tail (only rank 0 prints progress).
    marks = [t for t in lines[:-20] if "Failure" in t or t.startswith("[rank ") or "Expected" in t]
    for text in marks[:12] + (["    ..."] if marks else []) + lines[-20:]:
        print(f"    {text}")
for label, counts in per_run if len(per_run) > 1 else []:
    print(f"{label}: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
print(f"{total['OK']} passed, {total['FAIL']} failed, {total['SKIP']} skipped")
PY
exit $rc
