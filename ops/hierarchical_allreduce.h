// Hierarchical allreduce: the topology-aware algorithm for jobs that span hosts. Moves each
// byte across the hosts' links once per host instead of once per rank's ring neighbour.
//
// Uniform hosts (L ranks on each of H):
//   1. ring reduce-scatter inside the host (shared memory): local rank i completes block i+1;
//   2. ring allreduce of that block with the same local rank of every other host (the network;
//      n / L bytes per rank, n per host, against 1.5 n per host for a flat ring at 2 x 2);
//   3. ring allgather inside the host.
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

Status hierarchical_allreduce(const Hierarchy& h, void* buf, size_t count, DataType t, ReduceOp op,
                              const std::function<void()>& progress, LevelTimes* times = nullptr,
                              size_t segment_bytes = kDefaultSegmentBytes);

}  // namespace quorum::ops
