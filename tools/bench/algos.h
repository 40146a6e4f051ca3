// algos.h — QUORUM_ALGO=auto next to every fixed algorithm (native, ring, tree, hierarchical) in
// one process,
// so that the comparison is not drowned by the drift between separate runs. For each round and
// size, quorum is started once per setting (QUORUM_ALGO set before init; the order rotates from
// round to round), warmed up long enough for auto's cost model to explore every alternative
// at that size, then timed enqueue to completion; every element of every repetition is
// verified. Collective over MPI_COMM_WORLD, which the caller owns (MPI_THREAD_MULTIPLE);
// quorum must not be initialised on entry and is not on return.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tools/bench/mpi_types.h"

namespace quorum::bench {

inline constexpr int kNumAlgoSettings = 5;
// Index 0 is auto; the rest are the fixed algorithms it chooses among, in ops::Algorithm order
// (setting s is Algorithm s - 1).
inline constexpr std::array<const char*, kNumAlgoSettings> kAlgoSettings = {
    "auto", "native", "ring", "tree", "hierarchical"};

struct AlgosOptions {
  std::vector<size_t> sizes;  // bytes
  DataType dtype = DataType::kF32;
  int rounds = 5;
  int reps = 15;  // timed repetitions per round, size and setting
  // Untimed repetitions per round, size and setting, cut short after warmup_seconds. The
  // default lets auto's exploration (one decision in 16 per size class, 8 samples of each of
  // up to three alternatives) finish: 3 * 8 * 16 = 384.
  int warmup = 400;
  double warmup_seconds = 2.0;
  uint64_t seed = 1;
};

struct AlgosRow {
  size_t bytes = 0;
  // Per setting: the slowest rank's median of each round, and the median over rounds (us).
  std::array<std::vector<double>, kNumAlgoSettings> rounds_us;
  std::array<double, kNumAlgoSettings> median_us{};
  int best_fixed = 1;       // index into kAlgoSettings of the fixed setting with the least median
  double auto_ratio = 0;    // median over rounds of auto / best_fixed in the same round
  // What auto ran in its timed repetitions, summed over rounds (rank 0's plans): native, ring,
  // tree, hierarchical.
  std::array<uint64_t, 4> auto_plans{};
  // The hierarchical setting's time per repetition in each level (rank 0's, us), median over
  // rounds: inside the host, across hosts.
  std::vector<double> intra_rounds_us, inter_rounds_us;
  double intra_us = 0, inter_us = 0;
  int warmup = 0;  // warm-up repetitions actually run (the last round's)
  long long wrong = 0;
};

struct AlgosResult {
  std::vector<AlgosRow> rows;  // complete on rank 0
  int hosts = 1;               // the job's hosts, and the most ranks on one
  int ranks_per_host = 1;
  long long wrong = 0;         // on every rank
  std::vector<std::string> errors;
};

AlgosResult run_algos(const AlgosOptions& options, const MpiTypes& mpi);

}  // namespace quorum::bench
