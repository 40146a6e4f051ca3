#!/usr/bin/env bash
# On a GPU machine: builds quorum with the NCCL backend into its own build directory, runs every
# GPU test (kernels, single-rank collectives for every dtype with and without fp16/bf16
# compression, bounded rounds, mixed host and CUDA tensors; two ranks, one per GPU, where 2+
# GPUs exist, bounded rounds with a straggler among them) and a short kernel bandwidth sweep.
# Needs the dependencies of scripts/install-deps.sh plus CUDA and NCCL under $NCCL_ROOT (default
# /usr/local/cuda). About 3-5 minutes.
#   tests/gpu/run.sh [build-dir]     (default: build-gpu-run)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-gpu-run}
root=${NCCL_ROOT:-/usr/local/cuda}
jobs=$(nproc)

# The launcher the build finds (meson.build prefers mpiexec.mpich). Open MPI refuses to start as
# root without --allow-run-as-root: tests/gpu/meson.build passes it to the GPU tests, and the
# environment below covers any other mpiexec this run starts.
if command -v mpiexec.mpich > /dev/null; then
  launcher=mpiexec.mpich
else
  launcher=mpiexec
fi
echo "== MPI launcher: $(command -v "$launcher" || echo "$launcher (not found)")"
launcher_version=$("$launcher" --version 2>&1 || true)   # not piped into grep -q (pipefail)
if grep -qiE 'open mpi|openrte|open-mpi' <<<"$launcher_version"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

echo "== GPUs"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
  # The machine has a GPU: a test that finds none fails instead of skipping (tests/gpu/gpu_main.h).
  if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then export QUORUM_GPU_REQUIRED=1; fi
fi

echo "== build ($build)"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dnccl=enabled -Dnccl_root="$root" -Dtorch=disabled
fi
ninja -C "$build" -j "$jobs" tests/gpu/gpu_kernels tests/gpu/gpu_bench \
  tests/gpu/gpu_collectives tests/gpu/unit_pack_layout

echo "== GPU tests"
# SKIP (exit 77) is expected only for the 2-rank runs on a machine with one GPU.
status=0
meson test -C "$build" --no-rebuild --print-errorlogs unit_pack_layout || status=$?
meson test -C "$build" --suite gpu --no-rebuild --num-processes 1 --print-errorlogs || status=$?

echo "== kernel bandwidth (pack/unpack vs cudaMemcpyAsync D2D)"
"$build/tests/gpu/gpu_bench" || status=$?
exit $status
