// The steps of a ring allreduce as data, so one ring can be run on its own (ring_allreduce) or
// interleaved with other rings on other communicators (the hierarchical allreduce's pipeline).
//
// A ring over p ranks splits the buffer into p blocks whose element counts differ by at most
// one. Reduce-scatter: at step s rank r passes block r-s on to rank r+1 and folds block r-s-1
// from rank r-1 into its own copy, so block b is combined in the fixed order b, b+1, ..., b-1
// (mod p) and ends complete on rank b-1 only: one computation, whose bits the allgather then
// copies. Allgather: rank r starts with complete block r+1 and forwards what it last received.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <vector>

#include "ops/transfer.h"

namespace quorum::ops {

// Tags 0x7100 and 0x7101 on the ring's communicator, one per phase, so a message of one phase
// never matches a receive of the other even if a peer runs ahead.
inline constexpr int kRingReduceScatterTag = 0x7100;
inline constexpr int kRingAllgatherTag = 0x7101;

// How a two-rank ring runs each step (p2p_allreduce.h explains why it matters).
enum class Duplex { kFull, kSendFirst, kReceiveFirst };

struct RingSteps {
  std::vector<Transfer> reduce_scatter;  // combine with kLocalFirst
  std::vector<Transfer> allgather;       // copies
  // The block this rank completes between the phases (the whole buffer with one rank).
  unsigned char* owned = nullptr;
  size_t owned_count = 0;
};

// The steps for this rank of `comm` over `count` elements of `elem_bytes` at `buf`. No steps
// with one rank or count 0. With two ranks and a half-duplex `duplex`, each step is two
// Transfers, one per direction, in the order `duplex` says.
Status ring_steps(MPI_Comm comm, void* buf, size_t count, size_t elem_bytes, Duplex duplex,
                  RingSteps* out);

}  // namespace quorum::ops
