// The point-to-point layer under quorum's own allreduce algorithms (p2p_allreduce.h,
// hierarchical_allreduce.h): a step sends a block to one peer while it receives (copies or
// combines) a block from another, in segments, and a TransferQueue runs such steps one after
// another on one communicator without ever blocking. Several queues on different communicators
// can be advanced by the same thread in turn, which is how the hierarchical allreduce keeps the
// hosts' link busy while it reduces the next chunk inside the host.
//
// Contracts:
// - A queue is used by one thread at a time, and only between MPI_Init and MPI_Finalize.
// - Every rank of the communicator pushes matching steps in the same order (MPI's non-overtaking
//   rule then pairs the segments of one tag in order).
// - Errors come back as Status naming the MPI call (with MPI_ERRORS_RETURN on the communicator).
//   When a queue is destroyed with a step in flight, its receives are cancelled and completed so
//   nothing lands in freed scratch memory; its sends are released.
#pragma once

#include <mpi.h>

#include <array>
#include <cstddef>
#include <deque>
#include <functional>
#include <variant>
#include <vector>

#include "quorum/types.h"

namespace quorum::ops {

// What happens to a received segment.
enum class Combine {
  kCopy,           // received straight into its destination
  kLocalFirst,     // dst = dst (op) incoming
  kIncomingFirst,  // dst = incoming (op) dst
};

// One step: `send_count` elements from `send` go to `dest` while `recv_count` elements from
// `src` land on `recv` (copied or combined). `send` and `recv` may be the same memory: a segment
// is combined only after its own send completed. MPI_PROC_NULL with a count of 0 leaves a
// direction out.
struct Transfer {
  const unsigned char* send = nullptr;
  size_t send_count = 0;
  int dest = MPI_PROC_NULL;
  unsigned char* recv = nullptr;
  size_t recv_count = 0;
  int src = MPI_PROC_NULL;
  Combine combine = Combine::kCopy;
  int tag = 0;
};

// Scratch memory is kept per thread and per slot from call to call (a fresh allocation of
// megabytes per collective costs page faults and UCX registration every time). Queues that are
// in flight at the same time on one thread must use different slots.
enum class ScratchSlot { kFirst = 0, kSecond = 1 };

class TransferQueue {
 public:
  // `op` is what kLocalFirst / kIncomingFirst combine with (Average must already be a Sum).
  // Segments hold at most `segment_bytes` (at least one element, at most 2^30); two are in
  // flight each way, so the scratch memory is two segments whatever the step's size.
  TransferQueue(MPI_Comm comm, DataType t, ReduceOp op, size_t segment_bytes,
                ScratchSlot slot = ScratchSlot::kFirst);
  ~TransferQueue();
  TransferQueue(const TransferQueue&) = delete;
  TransferQueue& operator=(const TransferQueue&) = delete;

  // Appends a step, or an action that runs (on the polling thread) once every earlier item
  // finished; an action's error stops the queue and comes back from poll().
  void push(const Transfer& x);
  void push(std::function<Status()> action);

  // Advances without blocking: tests the running step's requests, combines what arrived, posts
  // the next segments, starts the next items. Sets *moved when anything advanced.
  Status poll(bool* moved);
  // Nothing queued and nothing in flight.
  bool empty() const { return items_.empty() && !running_; }

  // Polls until empty, calling `progress` and pausing (yield, then short sleeps) between polls
  // that moved nothing. Returns kAborted once abandon_waits() was called (mpi_backend.h).
  Status drain(const std::function<void()>& progress);

 private:
  Status start(const Transfer& x);
  Status advance(bool* moved);
  Status post_send(size_t k);
  Status post_recv(size_t k);
  unsigned char* slot(size_t k);
  int length(size_t count, size_t k) const;
  void cancel_in_flight();

  static constexpr size_t kDepth = 2;
  MPI_Comm comm_;
  MPI_Datatype type_;
  DataType t_;
  ReduceOp op_;
  size_t elem_;
  size_t seg_elems_;
  std::vector<unsigned char>& scratch_;
  std::deque<std::variant<Transfer, std::function<Status()>>> items_;
  // The running step: segment k_ is the oldest not yet finished in each direction.
  bool running_ = false;
  Transfer x_;
  size_t nsend_ = 0, nrecv_ = 0, k_ = 0, slot_elems_ = 0;
  bool sent_ = false, received_ = false;
  std::array<MPI_Request, kDepth> send_req_;
  std::array<MPI_Request, kDepth> recv_req_;
};

// kInvalidArgument naming `who` for a dtype the transport cannot carry or a null buffer with
// elements: what every algorithm checks before it communicates.
Status check_transfer_args(const void* buf, size_t count, DataType t, const char* who);

// How long poll_until() may pause between polls. kEager: at most 8 us, since MPI moves data
// only inside our calls. kPatient, for a collective too small to need driving (it waits for the
// peers to arrive): up to 1/8 of the time already waited, at most 128 us, so a rank that waits
// milliseconds for a straggler leaves the cores to the framework.
enum class Patience { kEager, kPatient };

// Calls `poll(&done, &moved)` until it reports done, without a blocking spin: between polls
// that moved nothing it calls `progress`, checks abandon_waits(), yields and then sleeps with a
// growing pause (see Patience). Every wait in the MPI data plane goes through this.
Status poll_until(const std::function<Status(bool* done, bool* moved)>& poll,
                  const std::function<void()>& progress, Patience patience = Patience::kEager);

}  // namespace quorum::ops
