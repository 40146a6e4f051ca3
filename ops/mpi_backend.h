// MPI data plane over a communicator that quorum owns (a duplicate of the world communicator).
// Every collective is issued non-blocking and waited on with MPI_Test plus a yielding back-off,
// because blocking MPICH calls spin at 100% CPU and starve the framework's compute threads.
#pragma once

#include <mpi.h>

#include "ops/backend.h"
#include "ops/hierarchy.h"
#include "ops/transfer.h"

namespace quorum::ops {

// Maps a dtype MPI can reduce to its MPI datatype; MPI_DATATYPE_NULL for f16/bf16, which MPI
// has no arithmetic for.
MPI_Datatype mpi_datatype(DataType t);

// The datatype that moves elements of `t` unchanged between ranks: mpi_datatype(t), or a
// 16-bit integer for f16/bf16 (which quorum's own kernels combine).
MPI_Datatype transport_datatype(DataType t);

// Waits for `request` without a blocking spin: polls, yields, then sleeps with a growing pause
// (capped at tens of microseconds), calling `progress` between polls.
Status wait_request(MPI_Request& request, const std::function<void()>& progress,
                    Patience patience = Patience::kEager);

// When a peer has failed, a collective that includes it never completes. abandon_waits() makes
// every wait_request() in this process return kAborted with `reason` from then on (the MPI job
// cannot be used again); reset_abandoned() clears it for a fresh init. Thread-safe.
void abandon_waits(const std::string& reason);
void reset_abandoned();
// kAborted with the reason once abandon_waits() was called, OK before.
Status abandoned_status();

// Turns an MPI error code into a Status naming the call.
Status mpi_status(int err, std::string_view call);
// This rank's rank in `comm` and its size, or the failing call's Status.
Status comm_shape(MPI_Comm comm, int* rank, int* size);

class MpiBackend final : public Backend {
 public:
  // Does not take ownership of `comm` or `hierarchy`; they must outlive the backend. Sets
  // MPI_ERRORS_RETURN. Without a hierarchy, kHierarchical runs as a ring (one host).
  explicit MpiBackend(MPI_Comm comm, const Hierarchy* hierarchy = nullptr);

  std::string_view name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // f16/bf16 (compressed plans) run on ring or tree only: kNative returns kInvalidArgument.
  Status allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                   Algorithm algorithm = Algorithm::kNative) override;
  Status broadcast(void* buf, size_t bytes, int root) override;
  const LevelTimes* last_levels() const override { return levels_valid_ ? &levels_ : nullptr; }
  Status allgather(const void* send, void* recv,
                   const std::vector<size_t>& bytes_per_rank) override;

 private:
  MPI_Comm comm_;
  const Hierarchy* hierarchy_ = nullptr;
  LevelTimes levels_;
  bool levels_valid_ = false;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace quorum::ops
