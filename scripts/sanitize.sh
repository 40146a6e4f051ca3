#!/usr/bin/env bash
# Builds quorum with sanitizers in its own directory and runs the unit, net and MPI suites there.
#   scripts/sanitize.sh asan [meson test args]   ASan + UBSan in ./build-asan
#   scripts/sanitize.sh tsan [meson test args]   TSan in ./build-tsan
# The only suppressions (tests/sanitizers/lsan.supp) are leaks inside UCX and MPICH, never
# quorum code; the environment set below keeps third-party plugins from getting in the way.
# Extra arguments go to `meson test` (default: the unit, net, mpi and trace suites). Exits
# non-zero on any sanitizer report or failed test.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true
supp="$PWD/tests/sanitizers"
skip=()
case "$mode" in
  asan)
    dir=build-asan sanitize=address,undefined
    suites=(--suite unit --suite net --suite mpi --suite trace)
    # hwloc's PCI plugin (used by MPICH and by quorum's topology) keeps libpciaccess memory in
    # a plugin that hwloc dlcloses before exit, so LeakSanitizer reports it with "<unknown
    # module>" frames that no suppression can match. Without PCI discovery nothing leaks.
    export HWLOC_COMPONENTS=-pci
    # verify_asan_link_order=0: install_consumer runs uninstrumented programs against the
    # instrumented libquorum, which brings the ASan runtime in as a dependency.
    export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:verify_asan_link_order=0"
    export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    ;;
  tsan)
    dir=build-tsan sanitize=thread
    suites=(--suite unit --suite net --suite mpi --suite trace)
    export TSAN_OPTIONS="second_deadlock_stack=1:history_size=4"
    # UCX patches mmap/munmap/brk to track registered memory; under TSan's interceptors every
    # MPI program then dies with SIGSEGV at MPI_Finalize. Shared memory and TCP need no hooks.
    export UCX_MEM_EVENTS=no
    # OpenBLAS worker threads (libtorch's GEMMs in the torch tests) race with their caller on
    # the output buffer as TSan sees it; one BLAS thread keeps the report about quorum.
    export OPENBLAS_NUM_THREADS=1
    # An uninstrumented program cannot load a TSan-instrumented libquorum (the runtime must
    # come first), so the installed-headers consumer test cannot run here.
    skip=(install_consumer)
    ;;
  *)
    echo "usage: $0 asan|tsan [meson test args]" >&2
    exit 2
    ;;
esac
scripts/install-deps.sh >/dev/null
if [ ! -f "$dir/build.ninja" ]; then
  # debugoptimized: sanitizer reports with line numbers at a bearable speed; assertions on.
  # The libtorch binding is left out: it adds minutes of compiling and no quorum code.
  meson setup "$dir" --buildtype=debugoptimized -Db_sanitize="$sanitize" -Db_ndebug=false -Dtorch=disabled \
    >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
  mv "$dir.setup.log" "$dir/"
fi
ninja -C "$dir"
[ $# -gt 0 ] && suites=("$@")
if [ ${#skip[@]} -gt 0 ]; then
  # meson test has no exclusion by name: list the suites' tests and drop the skipped ones.
  mapfile -t names < <(meson test -C "$dir" --list "${suites[@]}" 2>/dev/null |
    sed -n 's|^[^ ]* / ||p' | grep -vxF -f <(printf '%s\n' "${skip[@]}"))
  suites=("${names[@]}")
  echo "sanitize: skipping ${skip[*]} under $mode"
fi
# Sanitized code is several times slower; oversubscribed MPI ranks even more so.
exec meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 4 "${suites[@]}"
