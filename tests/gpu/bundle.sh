#!/usr/bin/env bash
# Packs the GPU tests for a GPU machine that has a CUDA driver but none of this project's Debian
# packages (MPICH, hwloc, UCX), such as the machines lent through the workplace's device tool:
# the test binaries from a build with NCCL, every shared library they load apart from glibc,
# libstdc++, the CUDA driver and NCCL (found on that machine: NCCL is 218 MB), and MPICH's
# launcher, into one compressed file. tests/gpu/run_bundle.sh unpacks and runs it there.
#   tests/gpu/bundle.sh [build-dir] [bundle-dir]     (defaults: build-gpu, .gpu-bundle)
# The bundle directory is git-ignored; hand it to the device tool with carry: [".gpu-bundle"].
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-gpu}
out=${2:-.gpu-bundle}
root=${NCCL_ROOT:-/usr/local/cuda}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dnccl=enabled -Dnccl_root="$root" -Dtorch=disabled
fi
bins=(tests/gpu/gpu_kernels tests/gpu/gpu_bench tests/gpu/gpu_collectives
      tests/gpu/unit_pack_layout)
ninja -C "$build" "${bins[@]}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib/ucx"
for b in "${bins[@]}"; do cp "$build/$b" "$stage/bin/"; done
launcher=$(readlink -f "$(command -v mpiexec.hydra)")
cp "$launcher" "$stage/bin/mpiexec"
cp "$(command -v hydra_pmi_proxy)" "$stage/bin/"
# UCX's transports are plugins it loads from its module directory; shared memory (cma) is the
# one that matters on one machine.
cp -L /usr/lib/x86_64-linux-gnu/ucx/libuct_cma.so.0 "$stage/lib/ucx/"

# Everything these load, except what the target machine has its own of: glibc, the C++ runtime,
# the CUDA driver and NCCL.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libresolv\.|libstdc\+\+|libgcc_s|libcuda\.|libnccl\.)'
deps=$(for f in "$stage"/bin/* "$stage"/lib/ucx/*; do ldd "$f" 2>/dev/null || true; done)
unresolved=$(grep 'not found' <<<"$deps" | grep -vE 'libcuda\.|libnccl\.' || true)
if [ -n "$unresolved" ]; then
  echo "libraries not found here, so not in the bundle:"
  echo "$unresolved"
  exit 1
fi
awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' <<<"$deps" | sort -u | while read -r name path; do
  if ! grep -qE "$skip" <<<"$name"; then cp -L "$path" "$stage/lib/$name"; fi
done

rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -czf "$out/bundle.tar.gz" .
cat > "$out/MANIFEST" <<EOF
built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')
NCCL header $(awk '/define NCCL_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$root/include/nccl.h"), CUDA $("$root/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
$(tar -tzvf "$out/bundle.tar.gz" | awk '{print $3, $6}')
EOF
echo "bundle: $out ($(du -sh "$out" | cut -f1)); on the GPU machine: tests/gpu/run_bundle.sh $out"
