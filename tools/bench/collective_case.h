// collective_case.h — one collective at one size, as the sweep measures it: this rank's input
// from the (seed, rank, index) rule (tests/common/test_data.h), the exact expected output, and
// the two ways to run it — through quorum (enqueue to completion) and as the raw MPI call on
// MPI_COMM_WORLD (in place where MPI allows it). Allreduce uses Sum; broadcast's root is rank 0.
//
// Sizes follow nccl-tests: `bytes` is the allreduced or broadcast buffer, or the allgather's
// whole output (each rank contributes bytes / ranks). Every rank constructs the same case, in
// the same order. Owns its buffers; one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorum/quorum.h"
#include "tools/bench/mpi_types.h"
#include "tools/bench/verify.h"

namespace quorum::bench {

enum class Collective { kAllreduce, kBroadcast, kAllgather };

std::string_view collective_name(Collective c);
// nccl-tests' bus bandwidth factor: allreduce 2(p-1)/p, allgather (p-1)/p, broadcast 1.
double bus_factor(Collective c, int ranks);

class CollectiveCase {
 public:
  // `bytes` is rounded down to whole elements (at least one per rank).
  CollectiveCase(Collective c, DataType t, size_t bytes, uint64_t seed, int rank, int ranks,
                 const MpiTypes& mpi);

  size_t bytes() const { return count_ * dtype_size(type_); }
  size_t count() const { return count_; }  // elements in the reported buffer

  // Puts the inputs in place and poisons what the collective must overwrite; call before every
  // repetition of the matching run_*.
  void prepare_quorum();
  void prepare_mpi();
  // Enqueues through quorum and waits for completion.
  Status run_quorum();
  void run_mpi();
  // The first element of the output that differs from the expected result.
  std::optional<Mismatch> check() const;

 private:
  Collective collective_;
  DataType type_;
  int rank_;
  const MpiTypes& mpi_;
  size_t count_ = 0;      // elements in output_
  size_t own_count_ = 0;  // elements this rank contributes (allgather), else count_
  std::string name_;
  std::vector<unsigned char> input_;     // this rank's input (broadcast: the root's)
  std::vector<unsigned char> expected_;  // empty for broadcast: input_ is the expectation
  std::vector<unsigned char> output_;
};

}  // namespace quorum::bench
