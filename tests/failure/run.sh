#!/usr/bin/env bash
# Faults under mpiexec: a rank stopped (SIGSTOP), a rank killed (SIGKILL), rank 0 killed.
# mpiexec runs with -disable-auto-cleanup so that survivors are not simply killed by the
# launcher (its default). A stopped rank: both survivors must report a failure naming it within
# the bound, and exit. A killed rank: MPICH/UCX may itself terminate survivors that are inside
# MPI progress when the dead peer is noticed, so fewer (or no) survivors may report; none may
# report anything else, rank 0 must have logged the lost rank when no survivor reports, and the
# whole job must end within the bound (no hang).
set -uo pipefail
mpiexec=$1 victim=$2
export QUORUM_FAILURE_TIMEOUT_SEC=2
bound=12   # seconds: 2 s timeout + 1 s coordinator tick + slack for a loaded 2-core machine
status=0
for mode in stop kill kill0; do
  out=$(mktemp)
  setsid "$mpiexec" -disable-auto-cleanup -n 3 "$victim" "$mode" >"$out" 2>&1 &
  launcher=$!
  start=$(date +%s)
  for _ in $(seq 1 300); do   # up to 30 s for both survivors, or the job to end
    [ "$(grep -c '^SURVIVOR' "$out")" -ge 2 ] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.1
  done
  # The stopped victim never exits by itself.
  pid=$(sed -n 's/^VICTIM rank [0-9]* pid \([0-9]*\).*/\1/p' "$out")
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  sleep 1
  kill -9 -- "-$launcher" 2>/dev/null   # anything still running (a hung survivor) goes too
  wait "$launcher" 2>/dev/null
  case $mode in
    stop) expect="rank 2 failed (silent for" ;;
    kill) expect="rank 2 failed (" ;;
    kill0) expect="coordinator on rank 0" ;;
  esac
  survivors=$(grep '^SURVIVOR' "$out")
  n=$(grep -c '^SURVIVOR' "$out")
  ok=1
  # stop: both survivors report. kill and kill0: MPICH/UCX may terminate survivors itself when
  # the dead peer is noticed inside MPI progress (seen for both survivors in about 1 run in 5
  # here), so none need report; then the coordinator must still have seen the death (kill) and
  # the job must end in time.
  case $mode in stop) need=2 ;; kill) need=0 ;; kill0) need=0 ;; esac
  [ "$n" -ge "$need" ] || ok=0
  if [ "$mode" = kill ] && [ "$n" -eq 0 ]; then
    grep -q "lost control connection of rank 2" "$out" || ok=0
  fi
  [ $(( $(date +%s) - start )) -le $((bound + 20)) ] || ok=0
  while read -r line; do
    [ -z "$line" ] && continue
    grep -qF "$expect" <<<"$line" || ok=0
    secs=$(sed -n 's/.*failed after \([0-9.]*\) s.*/\1/p' <<<"$line")
    awk -v s="$secs" -v b="$bound" 'BEGIN { exit !(s < b) }' || ok=0
  done <<<"$survivors"
  if [ $ok -eq 1 ]; then
    echo "$mode: ok"
    sed 's/^/  /' <<<"$survivors"
  else
    echo "$mode: FAILED (expected $need+ survivors mentioning '$expect' within $bound s)"
    sed 's/^/  | /' "$out"
    status=1
  fi
  rm -f "$out"
done
exit $status
