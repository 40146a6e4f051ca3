// sweep.h — the nccl-tests-style sweep: for each collective and size, quorum's enqueue-to-
// completion time next to the raw MPI call of the same bytes in the same run, every element of
// every repetition verified for both. Collective over MPI_COMM_WORLD (quorum initialised, MPI
// at MPI_THREAD_MULTIPLE); rank 0 prints the table to stdout as the rows finish, and a wrong
// element's description to stderr from the rank that saw it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quorum/types.h"
#include "tools/bench/collective_case.h"
#include "tools/bench/mpi_types.h"
#include "tools/bench/stats.h"

namespace quorum::bench {

struct SweepOptions {
  std::vector<Collective> collectives;
  std::vector<size_t> sizes;  // bytes, in the order measured
  DataType dtype = DataType::kF32;
  int reps = 0;                 // timed repetitions per size; 0 = adaptive
  int warmup = 2;               // untimed repetitions first (adaptive reps time at least one)
  double target_seconds = 0.2;  // adaptive: aim for this much time per size
  int min_reps = 5;
  int max_reps = 1000;
  uint64_t seed = 1;
};

// min, min*factor, ... up to and including max (factor >= 2, min >= 1).
std::vector<size_t> geometric_sizes(size_t min, size_t max, size_t factor);

struct SweepRow {
  Collective collective = Collective::kAllreduce;
  size_t bytes = 0;
  size_t count = 0;
  int reps = 0;
  Summary quorum_us;  // slowest rank's median and min
  Summary mpi_us;
  double quorum_algbw = 0, quorum_busbw = 0;  // GB/s from the medians
  double mpi_algbw = 0, mpi_busbw = 0;
  // Median over repetitions of quorum's time over MPI's in the same repetition (they run back
  // to back), the largest over ranks: steadier than the ratio of medians when the machine's
  // speed drifts during a run.
  double paired = 0;
  long long wrong = 0;  // wrong repetitions, summed over ranks and both implementations
};

struct SweepResult {
  std::vector<SweepRow> rows;       // complete on rank 0
  long long wrong = 0;              // on every rank; the sweep stops after the first wrong size
  std::vector<std::string> errors;  // this rank's descriptions of what went wrong
};

SweepResult run_sweep(const SweepOptions& options, const MpiTypes& mpi);

}  // namespace quorum::bench
