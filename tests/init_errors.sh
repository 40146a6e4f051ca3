#!/usr/bin/env bash
# A new user's first mistake: every QUORUM_* knob given an invalid value, the demo started on 2
# ranks as the README says. Each rank must print the knob's own message (the one quorum-info
# prints) labelled with its MPI rank and exit 1, not die of a signal or hang; rank 0 must not
# report lost control connections for a job that never started; quorum-info must flag the
# value on the knob's own line and exit non-zero. Then the other init failures a user can
# provoke: a check against the job size, an unbindable coordinator address, an unwritable
# timeline, and a bad value on one rank only.
# Usage: init_errors.sh MPIEXEC QUORUM_DEMO QUORUM_INFO
set -uo pipefail
mpiexec=$1 demo=$2 info=$3
failures=0
fail() { echo "init_errors: FAILED: $*"; failures=$((failures + 1)); }

# One invalid value per knob (a knob missing here fails the test), plus a few more spellings.
declare -A bad=(
  [QUORUM_FUSION_THRESHOLD]=abc [QUORUM_FUSION_MAX_TENSOR]=2G [QUORUM_CYCLE_TIME_MS]=1e9
  [QUORUM_ALGO]=fastest [QUORUM_HIERARCHICAL]=maybe [QUORUM_COMPRESSION]=zip [QUORUM_COMPRESSION_FEEDBACK]=2 [QUORUM_SYNC_MODE]=maybe [QUORUM_AVERAGE_PERIOD]=0 [QUORUM_AVERAGE_WARMUP]=-1 [QUORUM_PERIODIC_ENTER]=2
  [QUORUM_FAST_PATH]=yes [QUORUM_CACHE_CAPACITY]=8 [QUORUM_STALENESS]=0 [QUORUM_QUORUM]=-1 [QUORUM_ASYNC_ENTER]=1.5
  [QUORUM_ASYNC_EXIT]=-0.1 [QUORUM_POLICY_WINDOW]=1 [QUORUM_FAILURE_TIMEOUT_SEC]=0.5
  [QUORUM_STALL_WARNING_SEC]=0 [QUORUM_STALL_ABORT_SEC]=forever [QUORUM_LOG_LEVEL]=loud
  [QUORUM_LOG_SUBSYS]=gpu [QUORUM_THREAD_AFFINITY]=-2 [QUORUM_CONTROL_PORT]=70000
  [QUORUM_CONTROL_ADDR]=not-an-ip [QUORUM_CONNECT_TIMEOUT_SEC]=0
  [QUORUM_SHUTDOWN_TIMEOUT_SEC]=nan [QUORUM_TIMELINE_MAX_MB]=0
)
# Knobs any string is valid for, checked further down by what they do.
accepts_any=" QUORUM_TIMELINE "
extra=("QUORUM_FUSION_THRESHOLD=-1" "QUORUM_FUSION_THRESHOLD=99999999999999"
       "QUORUM_FUSION_THRESHOLD=" "HOROVOD_FUSION_THRESHOLD=12Q")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# run EXPECTED_EXIT MESSAGE_REGEX -- launcher args...: the job's output must show MESSAGE_REGEX
# from every rank listed in RANKS (default "0 1").
run() {
  local want=$1 pattern=$2 label=$3
  shift 4
  local rc=0
  timeout 60 "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ]; then fail "$label: hung (killed after 60 s)"; return; fi
  if [ "$rc" -ne "$want" ]; then fail "$label: exit $rc, expected $want"; sed 's/^/    /' "$out"; return; fi
  for r in ${RANKS:-0 1}; do
    grep -Eq "^rank $r: quorum::init failed: $pattern" "$out" ||
      { fail "$label: rank $r did not say: $pattern"; sed 's/^/    /' "$out"; return; }
  done
  if grep -Eq "lost control connection|Segmentation|signal|BAD TERMINATION" "$out"; then
    fail "$label: unexpected output"; sed 's/^/    /' "$out"; return
  fi
}
regex() { sed 's/[][\\.*^$+?(){}|]/\\&/g' <<<"$1"; }

checked=0
for knob in $("$info" --names); do
  if [[ "$accepts_any" == *" $knob "* ]]; then continue; fi
  if [ -z "${bad[$knob]+set}" ]; then fail "knob $knob has no invalid value in $0"; continue; fi
  set -- "$knob=${bad[$knob]}"
  run 1 "$(regex "$knob='${bad[$knob]}' is not valid: expected ")" "$1" -- \
    env "$1" "$mpiexec" -n 2 "$demo" --steps 5
  # quorum-info flags the knob's own line and exits non-zero.
  rc=0
  env "$1" "$info" >"$out" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || fail "quorum-info with $1 exited $rc, expected 1"
  grep -Eq "^! $knob +=" "$out" || fail "quorum-info with $1 did not mark $knob's line"
  checked=$((checked + 1))
done
for setting in "${extra[@]}"; do
  name=${setting%%=*} value=${setting#*=}
  run 1 "$(regex "$name='$value' is not valid")" "$setting" -- \
    env "$setting" "$mpiexec" -n 2 "$demo" --steps 5
done
echo "init_errors: $checked knobs and ${#extra[@]} more values checked"

run 1 "QUORUM_QUORUM=3 exceeds the job's 2 ranks" "QUORUM_QUORUM=3" -- \
  env QUORUM_QUORUM=3 "$mpiexec" -n 2 "$demo" --steps 5
run 1 "rank 0 could not start the coordinator: .*203\.0\.113\.7" "unbindable address" -- \
  env QUORUM_CONTROL_ADDR=203.0.113.7 "$mpiexec" -n 2 "$demo" --steps 5
run 1 "cannot write timeline file '/nonexistent/t\.rank[01]\.json'" "unwritable timeline" -- \
  env QUORUM_TIMELINE=/nonexistent/t.json "$mpiexec" -n 2 "$demo" --steps 5
# One rank's environment differs (MPMD launch): that rank names the knob, the other names it.
RANKS=1 run 1 "QUORUM_SYNC_MODE='maybe' is not valid" "bad value on rank 1 only" -- \
  "$mpiexec" -n 1 "$demo" --steps 5 : -n 1 -env QUORUM_SYNC_MODE maybe "$demo" --steps 5
RANKS=0 run 1 "init failed on rank 1 \(see its log\)" "bad value on rank 1, rank 0's view" -- \
  "$mpiexec" -n 1 "$demo" --steps 5 : -n 1 -env QUORUM_SYNC_MODE maybe "$demo" --steps 5
# A timeline only rank 0 cannot write: fails after the control plane is up, on both ranks.
RANKS=1 run 1 "init failed on rank 0 \(see its log\)" "unwritable timeline on rank 0 only" -- \
  "$mpiexec" -n 1 -env QUORUM_TIMELINE /nonexistent/t.json "$demo" --steps 5 : -n 1 "$demo" --steps 5

[ "$failures" -eq 0 ] || { echo "init_errors: $failures failures"; exit 1; }
echo "init_errors: every invalid setting was explained on every rank, and every rank exited 1"
