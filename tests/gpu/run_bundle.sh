#!/usr/bin/env bash
# On a GPU machine without this project's build dependencies: unpacks a bundle made by
# tests/gpu/bundle.sh and runs every GPU test in it (the same runs as suite 'gpu' in
# tests/gpu/meson.build: keep the two lists alike), then the full pack/unpack bandwidth sweep.
# Each run is limited to 90 s, since NCCL has no timeout of its own. Logs go to stdout and, where
# $OUT is set (the device tool), to $OUT/gpu.log. Exit status: 0 when nothing failed.
#   tests/gpu/run_bundle.sh [bundle-dir]     (default: .gpu-bundle)
# NCCL comes from the machine: $NCCL_LIB_DIR, else Python's nvidia-nccl wheel, else a search.
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:-.gpu-bundle}

main() {
here=$(mktemp -d /tmp/quorum-bundle.XXXX)
trap 'rm -rf "$here"' EXIT
tar -C "$here" -xzf "$bundle/bundle.tar.gz" || { echo "cannot unpack $bundle/bundle.tar.gz"; exit 2; }
cat "$bundle/MANIFEST" | head -2

nccl_dir=${NCCL_LIB_DIR:-}
if [ -z "$nccl_dir" ]; then
  nccl_dir=$(python3 -c 'import os, nvidia.nccl as n; print(os.path.join(list(n.__path__)[0], "lib"))' 2>/dev/null || true)
fi
if [ -z "$nccl_dir" ] || [ ! -e "$nccl_dir/libnccl.so.2" ]; then
  found=$(find /opt /usr /usr/local -name 'libnccl.so.2' 2>/dev/null | head -1)
  nccl_dir=${found:+$(dirname "$found")}
fi
[ -n "$nccl_dir" ] || { echo "no libnccl.so.2 on this machine (set NCCL_LIB_DIR)"; exit 2; }
echo "== NCCL from $nccl_dir"
export LD_LIBRARY_PATH="$here/lib:$nccl_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$here/bin:$PATH" UCX_MODULE_DIR="$here/lib/ucx"
missing=$(for f in "$here"/bin/*; do ldd "$f" | grep 'not found'; done | sort -u)
[ -z "$missing" ] || { echo "unresolved libraries:"; echo "$missing"; exit 2; }

echo "== GPUs"
gpus=0
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi
# The machine has a GPU: a test that finds none fails instead of skipping (tests/gpu/gpu_main.h).
[ "$gpus" -gt 0 ] && export QUORUM_GPU_REQUIRED=1

pass=0 fail=0 skip=0 failed=()
run() {  # run NAME COMMAND...: one test, limited to 90 s; 77 is a skip
  local name=$1; shift
  echo "== $name"
  local t0=$SECONDS rc=0
  timeout -k 5 90 "$@" || rc=$?
  case $rc in
    0) pass=$((pass + 1)); echo "-- $name: OK ($((SECONDS - t0)) s)" ;;
    77) skip=$((skip + 1)); echo "-- $name: SKIP" ;;
    *) fail=$((fail + 1)); failed+=("$name"); echo "-- $name: FAIL (exit $rc after $((SECONDS - t0)) s)" ;;
  esac
}

run unit_pack_layout "$here/bin/unit_pack_layout"
run gpu_kernels "$here/bin/gpu_kernels"
common=(QUORUM_FUSION_THRESHOLD=64K QUORUM_LOG_LEVEL=warn NCCL_DEBUG=WARN)
variants=("none:" "fp16:QUORUM_COMPRESSION=fp16" "bf16:QUORUM_COMPRESSION=bf16"
          "bounded:QUORUM_SYNC_MODE=bounded" "ring:QUORUM_ALGO=ring" "tree:QUORUM_ALGO=tree")
for n in 1 2; do
  if [ "$n" -gt 1 ] && [ "$gpus" -lt "$n" ]; then
    echo "== 2-rank runs skipped: $gpus GPU(s), one rank per GPU"
    skip=$((skip + ${#variants[@]} + 1))
    break
  fi
  for v in "${variants[@]}"; do
    run "gpu_collectives_${v%%:*}_n$n" env "${common[@]}" ${v#*:} \
      mpiexec -n "$n" "$here/bin/gpu_collectives"
  done
  if [ "$n" -eq 2 ]; then
    run gpu_collectives_cut_n2 env "${common[@]}" QUORUM_SYNC_MODE=bounded QUORUM_QUORUM=1 \
      QUORUM_STALENESS=2 GPU_TEST_STRAGGLER=1 \
      mpiexec -n 2 "$here/bin/gpu_collectives" --gtest_filter='GpuBounded.*'
  fi
done
run gpu_bench "$here/bin/gpu_bench"

echo "== $pass passed, $fail failed, $skip skipped${failed:+ (failed: ${failed[*]})}"
[ "$fail" -eq 0 ]
}

# The whole log to stdout and, with the device tool, to $OUT/gpu.log; the pipeline ends only
# when tee has written the last line.
if [ -n "${OUT:-}" ]; then
  main 2>&1 | tee "$OUT/gpu.log"
  exit "${PIPESTATUS[0]}"
fi
main 2>&1
