#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in ./build-fuzz and runs
# each for SECONDS (default 30) on a scratch copy of its seed corpus. Prints the executions run
# per target; exits non-zero on any crash, sanitizer report or failed property (the input that
# broke it is left in build-fuzz/fuzz-artifacts/). Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
dir=build-fuzz
scripts/install-deps.sh >/dev/null
if [ ! -f "$dir/build.ninja" ]; then
  # -fsanitize=fuzzer-no-link instruments the code under test for coverage; the fuzz targets
  # themselves add -fsanitize=fuzzer (tests/fuzz/meson.build). b_lundef must be off for clang's
  # static sanitizer runtimes in shared libraries.
  CC=clang CXX=clang++ meson setup "$dir" --buildtype=debugoptimized -Dfuzz=enabled -Dtorch=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link >"$dir.setup.log" 2>&1 ||
    { cat "$dir.setup.log"; exit 1; }
  mv "$dir.setup.log" "$dir/"
fi
ninja -C "$dir" tests/fuzz/fuzz_messages tests/fuzz/fuzz_config
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
mkdir -p "$dir/fuzz-artifacts"
results="$dir/fuzz-results.json"  # one JSON line per target, like meson's testlog.json
: >"$results"
rc=0
total=0
for target in messages config; do
  work="$dir/fuzz-corpus/$target"
  rm -rf "$work"
  mkdir -p "$work"
  cp tests/fuzz/corpus/$target/* "$work/"
  dict=()
  [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
  log="$dir/fuzz-$target.log"
  status=0
  "$dir/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/fuzz-artifacts/$target-" "${dict[@]}" "$work" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(ls "$work" | wc -l)
  if [ "$status" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|fuzz_(messages|config):|runtime error|Test unit written' "$log" | head -20 || true
    echo "fuzz_$target: FAILED (exit $status) after ${execs:-?} executions; log $log"
    rc=1
    result=FAIL
  else
    echo "fuzz_$target: ${execs:-0} executions in ${seconds} s, no crash (corpus $corpus inputs)"
    result=OK
  fi
  printf '{"name": "fuzz_%s", "result": "%s", "executions": %s}\n' "$target" "$result" \
    "${execs:-0}" >>"$results"
  total=$((total + ${execs:-0}))
done
echo "fuzz: $total executions in total"
exit $rc
