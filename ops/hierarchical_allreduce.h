// Hierarchical allreduce: the topology-aware algorithm for jobs that span hosts. Moves each
// byte across the hosts' links once per host instead of once per rank's ring neighbour.
//
// Uniform hosts (L ranks on each of H), for each chunk of the buffer:
//   1. ring reduce-scatter inside the host (shared memory): local rank i completes block i+1;
//   2. ring allreduce of that block with the same local rank of every other host (the network;
//      n / L bytes per rank, n per host, against 1.5 n per host for a flat ring at 2 x 2);
//   3. ring allgather inside the host.
// Chunks are pipelined: while chunk c crosses the hosts' link, chunk c+1 is reduce-scattered
// and chunk c-1 shared inside the host, so only the first chunk's reduce and the last one's
// share add to the network's time. Every rank runs the host's steps in one fixed order
// (reduce 0, reduce 1, share 0, reduce 2, share 1, ...), whatever the timing.
// Uneven hosts: a ring allreduce inside each host, a ring allreduce among the hosts' leaders,
// and a broadcast from the leader inside each host.
//
// Contracts as ring_allreduce's (p2p_allreduce.h): collective over every rank of the
// hierarchy, any dtype (f16/bf16 included), bitwise identical on every rank (each element is
// combined in one fixed order, then copied). Average is a Sum divided once by the world size on
// the rank that completed the block, so integers truncate exactly as the flat algorithms do.
// Floats differ from a flat ring's result only by the order of the additions.
#pragma once

#include <cstddef>
#include <functional>

#include "ops/backend.h"
#include "ops/hierarchy.h"
#include "ops/p2p_allreduce.h"

namespace quorum::ops {

// Chunks of 32 MiB. Over 2 x 2 emulated hosts at 1 Gbit/s (README), 64 MiB took 652-668 ms in
// two chunks against 698-727 ms in one, 684-688 ms in four and 690 ms in eight: every chunk
// adds turns of the half-duplex exchange, whose two flows drift out of step, and the host's
// steps share the two cores with the network's. At 16 MiB two chunks of 8 MiB were 5% slower
// than one.
inline constexpr size_t kDefaultChunkBytes = size_t{32} << 20;

// `times` gets the span from the first chunk's crossing to the last one's as the inter-host
// level, and the time before and after it (what the pipeline leaves exposed) as intra-host.
Status hierarchical_allreduce(const Hierarchy& h, void* buf, size_t count, DataType t, ReduceOp op,
                              const std::function<void()>& progress, LevelTimes* times = nullptr,
                              size_t segment_bytes = kDefaultSegmentBytes,
                              size_t chunk_bytes = kDefaultChunkBytes);

}  // namespace quorum::ops
