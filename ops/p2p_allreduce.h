// Allreduce algorithms built on MPI point-to-point calls (MPI_Isend/MPI_Irecv only), so the
// runtime can pick ring or tree by its cost model instead of leaving the choice to MPI.
//
// Contracts common to both functions:
// - Collective over `comm`: every rank calls the same function with the same `count`, `t`, `op`
//   (and `segment_bytes`), in the same order relative to other calls on `comm`. One thread at a
//   time per communicator.
// - `buf` holds `count` elements of `t` on entry and the reduction over all ranks on return. `t`
//   may be any dtype, f16/bf16 included (compressed plans: each combine widens to float, adds and
//   rounds). Average is the sum divided by the rank count (ops::divide).
// - The result is bitwise identical on every rank: each element is combined in one fixed order
//   on one rank and copied to the others (ring), or both partners of an exchange apply the same
//   operation with the lower rank's operand first (tree).
// - Steps run on a TransferQueue (transfer.h), which calls `progress` between idle polls.
// - MPI errors come back as Status naming the call only if `comm` has MPI_ERRORS_RETURN. After an
//   error, `buf` is unspecified, outstanding receives are cancelled, and `comm` should be treated
//   as broken (peers may still be mid-collective).
// - Tags 0x7100..0x7112 (ring_steps.h, p2p_allreduce.cc) are reserved on `comm` for these algorithms.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <functional>

#include "ops/ring_steps.h"
#include "quorum/types.h"

namespace quorum::ops {

// Ring: reduce-scatter then allgather over neighbours (rank - 1 -> rank -> rank + 1). The buffer
// is split into `size` blocks whose element counts differ by at most one (count < size and
// count == 0 are fine). Average divides each block once, on the rank that completed it, before
// the allgather: each rank divides 1/size of the buffer instead of all of it. Each of the
// 2(size - 1) steps moves one block in segments of at most `segment_bytes` (at least one
// element), with a window of two segments in flight each way, so the scratch memory is two
// segments however large the message is.
//
// Every segment is one MPI message. Over MPICH's ch4:ucx on TCP, a 16 MiB ring run by the engine
// took 1.44-1.53x MPI_Allreduce's time in six of seven runs with 1 MiB segments, and 0.96-1.05x
// in all five with 4 MiB ones (2 ranks, loopback). Called directly and paired in one process,
// 1 MiB was about 8% faster on both transports. 4 MiB is the robust choice; it still overlaps
// the reduction of one segment with the arrival of the next from 8 MiB messages on.
inline constexpr size_t kDefaultSegmentBytes = size_t{4} << 20;

// What the algorithms combine with: Average is a Sum until it is divided.
inline ReduceOp combining(ReduceOp op) { return op == ReduceOp::kAverage ? ReduceOp::kSum : op; }
Status ring_allreduce(MPI_Comm comm, void* buf, size_t count, DataType t, ReduceOp op,
                      const std::function<void()>& progress,
                      size_t segment_bytes = kDefaultSegmentBytes);

// The ring's two phases with a step between them. After the reduce-scatter (combining with
// `op`; Average is a Sum here) `owned` is called once with the block this rank completed, and
// may rewrite it in place (divide it, or reduce it further over another communicator); the
// allgather then copies every rank's block, as `owned` left it, to every rank. With one rank,
// `owned` gets the whole buffer; with count 0 it is not called. ring_allreduce is this with
// `owned` dividing by the rank count for Average.
//
// `duplex` matters for two ranks only, whose ring neighbour is the same rank both ways: kFull
// sends and receives each step at once; kSendFirst / kReceiveFirst run the step's send and its
// receive one after the other (the peer passes the opposite value), so the connection carries
// one direction at a time. Several such pairs that alternate keep both directions of a shared
// link busy with one flow each; over UCX's TCP on this project's emulated hosts one connection
// driven both ways at once ran at half its rate in half the runs (README, hierarchical allreduce).
using OwnedBlock = std::function<Status(void* block, size_t count)>;
Status ring_reduce_scatter_allgather(MPI_Comm comm, void* buf, size_t count, DataType t,
                                     ReduceOp op, const std::function<void()>& progress,
                                     const OwnedBlock& owned,
                                     size_t segment_bytes = kDefaultSegmentBytes,
                                     Duplex duplex = Duplex::kFull);

// Tree: recursive doubling, log2(p') full-buffer exchanges where p' is the largest power of two
// not above the rank count. The first 2(size - p') ranks fold in pairwise first (even rank sends
// its buffer to the odd one and later receives the result from it), which adds two steps for a
// rank count that is not a power of two. Exchanges are segmented like the ring.
Status tree_allreduce(MPI_Comm comm, void* buf, size_t count, DataType t, ReduceOp op,
                      const std::function<void()>& progress,
                      size_t segment_bytes = kDefaultSegmentBytes);

}  // namespace quorum::ops
