#include "ops/hierarchical_allreduce.h"

#include "ops/clock.h"
#include "ops/kernels.h"
#include "ops/mpi_backend.h"

namespace quorum::ops {
namespace {

// Two hosts: each pair of shard holders exchanges one way at a time, and neighbouring local
// ranks go in opposite orders, so each direction of the hosts' link carries one flow at a time
// and both directions stay busy (p2p_allreduce.h, Duplex). Elsewhere full duplex.
Duplex cross_duplex(const Hierarchy& h) {
  if (!h.uniform() || h.hosts() != 2 || h.local_size() < 2) return Duplex::kFull;
  return (h.host_index() + h.local_rank()) % 2 == 0 ? Duplex::kSendFirst : Duplex::kReceiveFirst;
}

// The inter-host step on a block: combined across hosts, then divided once for Average.
Status across_hosts(const Hierarchy& h, void* block, size_t n, DataType t, ReduceOp op,
                    const std::function<void()>& progress, size_t segment_bytes,
                    LevelTimes* times) {
  times->inter_start_ns = steady_now_ns();
  Status s = ring_reduce_scatter_allgather(h.cross(), block, n, t, combining(op), progress,
                                           nullptr, segment_bytes, cross_duplex(h));
  if (s.is_ok() && op == ReduceOp::kAverage) {
    divide(block, n, t, static_cast<double>(h.world_size()));
  }
  times->inter_end_ns = steady_now_ns();
  return s;
}

// The leader's result to its host-mates (the backend's chunked, non-spinning broadcast).
Status broadcast_in_host(const Hierarchy& h, void* buf, size_t count, DataType t,
                         const std::function<void()>& progress) {
  MpiBackend local(h.local());
  local.set_progress_hook(progress);
  return local.broadcast(buf, count * dtype_size(t), 0);
}

}  // namespace

Status hierarchical_allreduce(const Hierarchy& h, void* buf, size_t count, DataType t, ReduceOp op,
                              const std::function<void()>& progress, LevelTimes* times,
                              size_t segment_bytes) {
  LevelTimes local_times;
  LevelTimes* lt = times ? times : &local_times;
  *lt = {};
  lt->start_ns = steady_now_ns();
  lt->inter_start_ns = lt->inter_end_ns = lt->start_ns;
  Status s;
  if (count == 0) {
    s = Status::ok();
  } else if (h.uniform()) {
    s = ring_reduce_scatter_allgather(
        h.local(), buf, count, t, combining(op), progress,
        [&](void* block, size_t n) {
          return across_hosts(h, block, n, t, op, progress, segment_bytes, lt);
        },
        segment_bytes);
  } else {
    s = ring_allreduce(h.local(), buf, count, t, combining(op), progress, segment_bytes);
    lt->inter_start_ns = lt->inter_end_ns = steady_now_ns();
    if (s.is_ok() && h.cross() != MPI_COMM_NULL) {
      s = across_hosts(h, buf, count, t, op, progress, segment_bytes, lt);
    }
    if (s.is_ok()) s = broadcast_in_host(h, buf, count, t, progress);
  }
  lt->end_ns = steady_now_ns();
  return s;
}

}  // namespace quorum::ops
