#include "ops/hierarchical_allreduce.h"

#include <algorithm>
#include <vector>

#include "ops/clock.h"
#include "ops/kernels.h"
#include "ops/mpi_backend.h"
#include "ops/ring_steps.h"
#include "ops/transfer.h"

namespace quorum::ops {
namespace {

// Two hosts: each pair of shard holders exchanges one way at a time, and neighbouring local
// ranks go in opposite orders, so each direction of the hosts' link carries one flow at a time
// and both directions stay busy (p2p_allreduce.h, Duplex). Elsewhere full duplex.
Duplex cross_duplex(const Hierarchy& h) {
  if (!h.uniform() || h.hosts() != 2 || h.local_size() < 2) return Duplex::kFull;
  return (h.host_index() + h.local_rank()) % 2 == 0 ? Duplex::kSendFirst : Duplex::kReceiveFirst;
}

// The inter-host step on a block, run on its own (uneven hosts): combined across hosts, then
// divided once for Average.
Status across_hosts(const Hierarchy& h, void* block, size_t n, DataType t, ReduceOp op,
                    const std::function<void()>& progress, size_t segment_bytes,
                    LevelTimes* times) {
  times->inter_start_ns = steady_now_ns();
  Status s = ring_reduce_scatter_allgather(h.cross(), block, n, t, combining(op), progress, nullptr,
                                           segment_bytes, cross_duplex(h));
  if (s.is_ok() && op == ReduceOp::kAverage) {
    divide(block, n, t, static_cast<double>(h.world_size()));
  }
  times->inter_end_ns = steady_now_ns();
  return s;
}

// The host's steps in the order every rank runs them: reduce 0, reduce 1, share 0, reduce 2,
// share 1, ..., share C-1. Reducing chunk c+1 before sharing chunk c keeps the next chunk ready
// for the link while the current one crosses it.
struct HostStep {
  bool share;
  size_t chunk;
};
std::vector<HostStep> host_order(size_t chunks) {
  std::vector<HostStep> order;
  for (size_t c = 0; c < chunks; ++c) {
    order.push_back({false, c});
    if (c > 0) order.push_back({true, c - 1});
  }
  order.push_back({true, chunks - 1});
  return order;
}

// Uniform hosts: two queues, one per level, advanced in turn by this thread. A host step starts
// when the previous one finished and (for a share) its chunk came back across the hosts; a
// crossing starts when the previous crossing finished and its chunk was reduced in the host.
Status pipelined(const Hierarchy& h, void* buf, size_t count, DataType t, ReduceOp op,
                 const std::function<void()>& progress, size_t segment_bytes, size_t chunk_bytes,
                 LevelTimes* lt) {
  const size_t elem = dtype_size(t);
  const size_t chunk_elems = std::max<size_t>(1, chunk_bytes / elem);
  const size_t chunks = (count + chunk_elems - 1) / chunk_elems;
  std::vector<RingSteps> local(chunks), cross(chunks);
  auto* base = static_cast<unsigned char*>(buf);
  for (size_t c = 0; c < chunks; ++c) {
    const size_t n = std::min(chunk_elems, count - c * chunk_elems);
    QUORUM_RETURN_IF_ERROR(
        ring_steps(h.local(), base + c * chunk_elems * elem, n, elem, Duplex::kFull, &local[c]));
    QUORUM_RETURN_IF_ERROR(ring_steps(h.cross(), local[c].owned, local[c].owned_count, elem,
                                      cross_duplex(h), &cross[c]));
  }
  TransferQueue in_host(h.local(), t, combining(op), segment_bytes, ScratchSlot::kFirst);
  TransferQueue across(h.cross(), t, combining(op), segment_bytes, ScratchSlot::kSecond);
  const std::vector<HostStep> order = host_order(chunks);
  size_t next_host = 0, next_cross = 0, reduced = 0, crossed = 0, shared = 0;
  return poll_until(
      [&](bool* done, bool* moved) {
        if (in_host.empty() && next_host < order.size()) {
          const HostStep step = order[next_host];
          if (!step.share || crossed > step.chunk) {
            const RingSteps& r = local[step.chunk];
            for (const Transfer& x : step.share ? r.allgather : r.reduce_scatter) in_host.push(x);
            in_host.push([&, step] {
              ++(step.share ? shared : reduced);
              return Status::ok();
            });
            ++next_host;
          }
        }
        if (across.empty() && next_cross < chunks && reduced > next_cross) {
          const size_t c = next_cross++;
          if (c == 0) lt->inter_start_ns = steady_now_ns();
          for (const Transfer& x : cross[c].reduce_scatter) across.push(x);
          for (const Transfer& x : cross[c].allgather) across.push(x);
          across.push([&, c] {
            if (op == ReduceOp::kAverage) {
              divide(local[c].owned, local[c].owned_count, t, static_cast<double>(h.world_size()));
            }
            if (++crossed == chunks) lt->inter_end_ns = steady_now_ns();
            return Status::ok();
          });
        }
        QUORUM_RETURN_IF_ERROR(in_host.poll(moved));
        QUORUM_RETURN_IF_ERROR(across.poll(moved));
        *done = shared == chunks;
        return Status::ok();
      },
      progress);
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
                              size_t segment_bytes, size_t chunk_bytes) {
  QUORUM_RETURN_IF_ERROR(check_transfer_args(buf, count, t, "hierarchical_allreduce"));
  LevelTimes local_times;
  LevelTimes* lt = times ? times : &local_times;
  *lt = {};
  lt->start_ns = steady_now_ns();
  lt->inter_start_ns = lt->inter_end_ns = lt->start_ns;
  Status s;
  if (count == 0) {
    s = Status::ok();
  } else if (h.uniform()) {
    s = pipelined(h, buf, count, t, op, progress, segment_bytes, chunk_bytes, lt);
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
