#!/usr/bin/env bash
# Reproduces the MPI_Finalize hang of MPICH 4.0.2 over UCX 1.13's TCP transport without quorum
# (README, emulated hosts): 4 ranks pass 4 KiB around a ring eight times with MPI_Isend/Irecv,
# then finalize. Runs it RUNS times (default 4) under a 20 s timeout each and says how many hung.
#   scripts/ucx-finalize-repro.sh            # UCX_TLS=self,tcp (hangs in most runs here)
#   UCX_TLS=self,sm scripts/ucx-finalize-repro.sh   # shared memory (finishes)
set -euo pipefail
runs=${RUNS:-4}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/ring.c" <<'C'
#include <mpi.h>
#include <stdlib.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  enum { kCount = 1024 };
  float* out = calloc(kCount, sizeof(float));
  float* in = calloc(kCount, sizeof(float));
  for (int k = 0; k < 8; ++k) {
    MPI_Request req[2];
    MPI_Irecv(in, kCount, MPI_FLOAT, (rank + size - 1) % size, 7, MPI_COMM_WORLD, &req[0]);
    MPI_Isend(out, kCount, MPI_FLOAT, (rank + 1) % size, 7, MPI_COMM_WORLD, &req[1]);
    MPI_Status status[2];
    MPI_Waitall(2, req, status);
  }
  MPI_Finalize();
  return 0;
}
C
mpicc -O2 "$dir/ring.c" -o "$dir/ring"
hung=0
for ((i = 1; i <= runs; i++)); do
  if ! timeout 20 mpiexec -n 4 -genv UCX_TLS "${UCX_TLS:-self,tcp}" "$dir/ring" >/dev/null 2>&1; then
    hung=$((hung + 1))
  fi
done
echo "UCX_TLS=${UCX_TLS:-self,tcp}: $hung of $runs runs did not finish within 20 s"
