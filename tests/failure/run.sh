#!/usr/bin/env bash
# Faults under mpiexec: a rank stopped (SIGSTOP), a rank killed (SIGKILL), rank 0 killed.
# mpiexec runs with -disable-auto-cleanup so that survivors are not simply killed by the
# launcher (its default). A stopped rank: both survivors must report a failure naming it within
# the bound, and exit. A killed rank: MPICH/UCX may itself terminate survivors that are inside
# MPI progress when the dead peer is noticed, before quorum notices anything (seen in about 1
# run in 5 here, more often on a loaded machine). Such a run shows nothing of quorum: it is
# tried again, up to 3 times; a run that does show something must show the right thing
# (survivors naming the dead rank, or rank 0 logging the lost rank), every run must end within
# the bound (no hang), and no survivor may report anything else.
set -uo pipefail
mpiexec=$1 victim=$2
export QUORUM_FAILURE_TIMEOUT_SEC=2
export QUORUM_FAST_PATH=${QUORUM_FAST_PATH:-1}   # the victim dies on the fast path
bound=12   # seconds: 2 s timeout + 1 s coordinator tick + slack for a loaded 2-core machine
attempts=3

# One run of `mode`; prints what it saw. Returns 0 right, 1 wrong, 2 nothing of quorum to judge.
attempt() {
  local mode=$1 out launcher start pid expect survivors n need ok=1 evidence=1
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
  case $mode in stop) need=2 ;; *) need=0 ;; esac
  [ "$n" -ge "$need" ] || ok=0
  if [ "$mode" = kill ] && [ "$n" -eq 0 ] && ! grep -q "lost control connection of rank 2" "$out"; then
    evidence=0
  fi
  [ $(( $(date +%s) - start )) -le $((bound + 20)) ] || ok=0
  # The victim died on the fast path (unless the job turned it off).
  if [ "${QUORUM_FAST_PATH:-1}" != 0 ] && ! grep -q '^VICTIM .* after [1-9][0-9]* fast plans' "$out"; then
    echo "$mode: the victim ran no fast plan before it died"
    ok=0
  fi
  while read -r line; do
    [ -z "$line" ] && continue
    grep -qF "$expect" <<<"$line" || ok=0
    secs=$(sed -n 's/.*failed after \([0-9.]*\) s.*/\1/p' <<<"$line")
    awk -v s="$secs" -v b="$bound" 'BEGIN { exit !(s < b) }' || ok=0
  done <<<"$survivors"
  local rc=0
  if [ $ok -eq 0 ]; then
    echo "$mode: FAILED (expected $need+ survivors mentioning '$expect' within $bound s)"
    sed 's/^/  | /' "$out"
    rc=1
  elif [ $evidence -eq 0 ]; then
    echo "$mode: MPICH ended the job before quorum reported anything; trying again"
    sed 's/^/  | /' "$out"
    rc=2
  else
    echo "$mode: ok"
    sed 's/^/  /' <<<"$survivors"
  fi
  rm -f "$out"
  return $rc
}

status=0
for mode in stop kill kill0; do
  for try in $(seq 1 $attempts); do
    attempt "$mode"
    rc=$?
    [ $rc -eq 2 ] && [ "$try" -lt $attempts ] && continue
    [ $rc -eq 2 ] && echo "$mode: FAILED (no run of $attempts showed quorum noticing the death)"
    [ $rc -ne 0 ] && status=1
    break
  done
done
exit $status
