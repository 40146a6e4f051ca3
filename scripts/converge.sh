#!/usr/bin/env bash
# The convergence table of the README: quorum-bench converge for every synchronisation mode
# (sync, bounded, periodic, auto; each also with fp16 compression and error feedback) under
# three straggler scenarios, several seeds. The target held-out loss of each (scenario, seed) is
# the one sync reaches (smoothed over 3 evaluations) at 70% of its steps; every mode's time to
# it, its final held-out loss and its bytes are given as ratios to sync's from the same seed,
# medians over seeds.
#   scripts/converge.sh [build-dir] [ranks] [seeds] [steps]    (defaults: build 4 "1 2" 300)
# Environment:
#   SCENARIOS="none transient persistent"   straggler scenarios to run
#   CONVERGE_ARGS="..."                      more quorum-bench converge flags (--model wide, --lr)
#   HOSTS=N                                  across N emulated hosts (scripts/hosts.sh, root; RATE
#                                            shapes their links), ranks/N per host, over TCP
#   MODES="sync:none:0 periodic:fp16:1"      mode:compression:feedback[:catchup] (default: all 8;
#                                            a 4th field 1 passes --catch-up: a rank behind on
#                                            bounded rounds skips its compute)
set -uo pipefail
cd "$(dirname "$0")/.."
bench=${1:-build}/tools/quorum-bench
ranks=${2:-4} seeds=${3:-"1 2"} steps=${4:-300}
[ -x "$bench" ] || { echo "no $bench: build first (scripts/build.sh)"; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
read -r -a modes <<<"${MODES:-sync:none:0 bounded:none:0 periodic:none:0 auto:none:0 sync:fp16:1 bounded:fp16:1 periodic:fp16:1 auto:fp16:1}"
read -r -a extra <<<"${CONVERGE_ARGS:-}"
launch=(mpiexec -n "$ranks")
where="$ranks ranks"
if [ -n "${HOSTS:-}" ]; then
  scripts/hosts.sh up "$HOSTS" >/dev/null || exit 2
  trap 'rm -f "$out"; scripts/hosts.sh down >/dev/null' EXIT
  list=$(for ((h = 0; h < HOSTS; ++h)); do printf 'h%d:%d,' "$h" $((ranks / HOSTS)); done)
  launch=(mpiexec -launcher ssh -launcher-exec "$PWD/scripts/host-exec.sh" -hosts "${list%,}"
          -n "$ranks" -genv UCX_TLS self,tcp)
  bench=$PWD/$bench
  where="$ranks ranks on $HOSTS emulated hosts, links ${RATE:-unshaped}"
fi
echo "### $(date -u +%FT%TZ) $(git rev-parse --short HEAD), $where, load $(cut -d' ' -f1-3 /proc/loadavg) ${CONVERGE_ARGS:-}"
for scenario in ${SCENARIOS:-none transient persistent}; do
  for seed in $seeds; do
    for m in "${modes[@]}"; do
      IFS=: read -r mode comp fb cu <<<"$m"
      cu_flag=()
      [ "${cu:-0}" = 1 ] && cu_flag=(--catch-up)
      "${launch[@]}" -genv QUORUM_SYNC_MODE "$mode" -genv QUORUM_COMPRESSION "$comp" \
        -genv QUORUM_COMPRESSION_FEEDBACK "$fb" -genv QUORUM_AVERAGE_PERIOD 8 \
        -genv QUORUM_AVERAGE_WARMUP 20 -genv QUORUM_LOG_LEVEL error \
        timeout 900 "$bench" converge --curve --straggler "$scenario" --seed "$seed" \
        --steps "$steps" "${cu_flag[@]}" "${extra[@]}" >>"$out" 2>&1 || echo "run failed: $m $scenario $seed" >&2
    done
  done
done
python3 - "$out" <<'PY'
import re, statistics, sys
runs, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith("converge "):
        cur = dict(kv.split("=", 1) for kv in line.split()[1:]); cur["curve"] = []; runs.append(cur)
    elif line.startswith("result ") and cur:
        cur.update(kv.split("=", 1) for kv in line.split()[1:])
    elif line.startswith("curve ") and cur:
        _, s, t, l = line.split(); cur["curve"].append((int(s), float(t), float(l)))
def smooth(c):
    return [(s, t, statistics.mean(x[2] for x in c[max(0, i - 2):i + 1])) for i, (s, t, _) in enumerate(c)]
def label(r):
    return (r["mode"] + ("+" + r["compression"] if r["compression"] != "none" else "")
            + ("+catch-up" if r.get("catch_up") == "yes" else ""))
table = {}
for scen in ["none", "transient", "persistent"]:
    for seed in sorted({r["seed"] for r in runs}):
        group = [r for r in runs if r["straggler"] == scen and r["seed"] == seed]
        base = next((r for r in group if label(r) == "sync"), None)
        if not base or not base["curve"]: continue
        sc = smooth(base["curve"])
        target = sc[int(0.7 * (len(sc) - 1))][2]
        def reach(r):
            return next((t for s, t, l in smooth(r["curve"]) if l <= target), None)
        tb = reach(base)
        for r in group:
            tr = reach(r)
            row = table.setdefault((scen, label(r)), {"time": [], "loss": [], "bytes": [], "abs": [], "same": [], "target": [], "wall": []})
            row["target"].append(target)
            row["wall"].append(float(base["train_s"]) / float(r["train_s"]))
            row["time"].append(tb / tr if tr else 0.0)
            row["loss"].append(float(r["final_heldout"]) / float(base["final_heldout"]))
            row["bytes"].append(int(r["bytes"]) / max(1, int(base["bytes"])))
            row["abs"].append(float(r["final_heldout"]))
            row["same"].append(r.get("identical") == "yes")
print("| stragglers | mode | speed-up to target vs sync (target loss) | final held-out loss vs sync | final held-out loss | wall-time speed-up vs sync | bytes vs sync | replicas identical |")
print("|---|---|---|---|---|---|---|---|")
for (scen, lab), row in table.items():
    med = lambda v: statistics.median(v)
    print(f"| {scen} | {lab} | {med(row['time']):.2f}x ({med(row['target']):.4f}) | {med(row['loss']):.3f} | {med(row['abs']):.4f} | {med(row['wall']):.2f}x | {med(row['bytes']):.2f} | {'yes' if all(row['same']) else 'NO'} |")
PY
