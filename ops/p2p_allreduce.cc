#include "ops/p2p_allreduce.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "ops/kernels.h"
#include "ops/mpi_backend.h"

namespace quorum::ops {
namespace {

// One tag per phase, so a message of one phase can never match a receive of another even if a
// peer runs ahead. Within a phase, MPI's non-overtaking rule keeps segments in order.
constexpr int kRingReduceScatterTag = 0x7100;
constexpr int kRingAllgatherTag = 0x7101;
constexpr int kTreeFoldTag = 0x7110;
constexpr int kTreeExchangeTag = 0x7111;
constexpr int kTreeResultTag = 0x7112;

// MPI counts are int; a segment never exceeds this many elements whatever segment_bytes says.
constexpr size_t kMaxSegmentElems = size_t{1} << 30;
// Segments in flight in each direction. Two lets segment k+1 arrive while segment k is reduced,
// and bounds the scratch memory at two segments.
constexpr size_t kDepth = 2;

// What happens to a received segment.
enum class Combine {
  kCopy,           // received straight into its destination
  kLocalFirst,     // dst = dst (op) incoming
  kIncomingFirst,  // dst = incoming (op) dst
};

// One step of an algorithm: `send_count` elements from `send` go to `dest` while `recv_count`
// elements from `src` land on `recv` (copied or combined). `send` and `recv` may be the same
// memory: a segment is combined only after its own send completed.
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

// The requests of one step. When the step leaves early on an error, receives are cancelled and
// completed (local, per the standard) so nothing lands in scratch memory after it is freed;
// sends are released, since completing them could need the peer.
struct StepRequests {
  std::array<MPI_Request, kDepth> send;
  std::array<MPI_Request, kDepth> recv;

  StepRequests() {
    send.fill(MPI_REQUEST_NULL);
    recv.fill(MPI_REQUEST_NULL);
  }
  StepRequests(const StepRequests&) = delete;
  StepRequests& operator=(const StepRequests&) = delete;
  ~StepRequests() {
    for (MPI_Request& r : recv) {
      if (r == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    for (MPI_Request& r : send) {
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    }
  }
};

// Runs Transfers in segments, owning the scratch memory they share.
class Pipeline {
 public:
  Pipeline(MPI_Comm comm, DataType t, ReduceOp op, size_t segment_bytes,
           const std::function<void()>& progress)
      : comm_(comm),
        type_(transport_datatype(t)),
        t_(t),
        op_(op),
        elem_(dtype_size(t)),
        seg_elems_(std::clamp<size_t>(segment_bytes / dtype_size(t), 1, kMaxSegmentElems)),
        progress_(progress) {}

  Status run(const Transfer& x) {
    const size_t nsend = segments(x.send_count);
    const size_t nrecv = segments(x.recv_count);
    // Scratch slots are as large as this step's segments, never larger than the whole receive.
    const size_t slot_elems = std::min(seg_elems_, x.recv_count);
    if (x.combine != Combine::kCopy && scratch_.size() < kDepth * slot_elems * elem_) {
      scratch_.resize(kDepth * slot_elems * elem_);
    }
    StepRequests req;
    auto slot = [&](size_t k) { return scratch_.data() + (k % kDepth) * slot_elems * elem_; };
    auto post_recv = [&](size_t k) {
      void* dst = x.combine == Combine::kCopy ? x.recv + k * seg_elems_ * elem_ : slot(k);
      return mpi_status(MPI_Irecv(dst, length(x.recv_count, k), type_, x.src, x.tag, comm_,
                                  &req.recv[k % kDepth]),
                        "MPI_Irecv");
    };
    auto post_send = [&](size_t k) {
      return mpi_status(MPI_Isend(x.send + k * seg_elems_ * elem_, length(x.send_count, k), type_,
                                  x.dest, x.tag, comm_, &req.send[k % kDepth]),
                        "MPI_Isend");
    };

    for (size_t k = 0; k < std::min(kDepth, nrecv); ++k) QUORUM_RETURN_IF_ERROR(post_recv(k));
    for (size_t k = 0; k < std::min(kDepth, nsend); ++k) QUORUM_RETURN_IF_ERROR(post_send(k));
    // Every rank has posted segment k of each direction before waiting on it, so each wait is
    // matched by a peer that has already posted its side: no ordering can deadlock.
    for (size_t k = 0; k < std::max(nsend, nrecv); ++k) {
      if (k < nsend) QUORUM_RETURN_IF_ERROR(wait_request(req.send[k % kDepth], progress_));
      if (k < nrecv) {
        QUORUM_RETURN_IF_ERROR(wait_request(req.recv[k % kDepth], progress_));
        combine(x, k, slot(k));
        if (k + kDepth < nrecv) QUORUM_RETURN_IF_ERROR(post_recv(k + kDepth));
      }
      if (k + kDepth < nsend) QUORUM_RETURN_IF_ERROR(post_send(k + kDepth));
    }
    return Status::ok();
  }

 private:
  size_t segments(size_t count) const { return (count + seg_elems_ - 1) / seg_elems_; }

  int length(size_t count, size_t k) const {
    return static_cast<int>(std::min(seg_elems_, count - k * seg_elems_));
  }

  void combine(const Transfer& x, size_t k, unsigned char* in) {
    if (x.combine == Combine::kCopy) return;
    unsigned char* dst = x.recv + k * seg_elems_ * elem_;
    const auto n = static_cast<size_t>(length(x.recv_count, k));
    if (x.combine == Combine::kLocalFirst) {
      reduce_into(dst, in, n, t_, op_);
    } else {
      reduce_into(in, dst, n, t_, op_);
      std::memcpy(dst, in, n * elem_);
    }
  }

  MPI_Comm comm_;
  MPI_Datatype type_;
  DataType t_;
  ReduceOp op_;
  size_t elem_;
  size_t seg_elems_;
  const std::function<void()>& progress_;
  // Kept from call to call on this thread: a fresh allocation of megabytes per collective costs
  // page faults (and UCX registration) every time an algorithm comes back into use.
  std::vector<unsigned char>& scratch_ = thread_scratch();
  static std::vector<unsigned char>& thread_scratch() {
    static thread_local std::vector<unsigned char> scratch;
    return scratch;
  }
};

Status check_args(const void* buf, size_t count, DataType t, const char* who) {
  if (transport_datatype(t) == MPI_DATATYPE_NULL) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(who) + " cannot carry dtype " + std::string(dtype_name(t)));
  }
  if (buf == nullptr && count > 0) {
    return Status(StatusCode::kInvalidArgument, std::string(who) + ": null buffer");
  }
  return Status::ok();
}


Status comm_shape(MPI_Comm comm, int* rank, int* size) {
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_rank(comm, rank), "MPI_Comm_rank"));
  return mpi_status(MPI_Comm_size(comm, size), "MPI_Comm_size");
}

}  // namespace

Status ring_reduce_scatter_allgather(MPI_Comm comm, void* buf, size_t count, DataType t,
                                     ReduceOp op, const std::function<void()>& progress,
                                     const OwnedBlock& owned, size_t segment_bytes,
                                     Duplex duplex) {
  QUORUM_RETURN_IF_ERROR(check_args(buf, count, t, "ring_allreduce"));
  int rank = 0, size = 1;
  QUORUM_RETURN_IF_ERROR(comm_shape(comm, &rank, &size));
  if (count == 0) return Status::ok();
  if (size == 1) return owned ? owned(buf, count) : Status::ok();

  auto* base = static_cast<unsigned char*>(buf);
  const size_t elem = dtype_size(t);
  const auto p = static_cast<size_t>(size);
  const auto r = static_cast<size_t>(rank);
  // Block b starts at b * (count / p) plus one for each earlier block that takes a remainder.
  auto block_count = [&](size_t b) { return count / p + (b < count % p ? 1 : 0); };
  auto block_ptr = [&](size_t b) {
    return base + (b * (count / p) + std::min(b, count % p)) * elem;
  };
  const int right = (rank + 1) % size;
  const int left = (rank + size - 1) % size;
  Pipeline pipe(comm, t, combining(op), segment_bytes, progress);
  // One step: both ways at once, or (two ranks, half duplex) one way and then the other.
  auto step = [&](const Transfer& x) {
    if (size != 2 || duplex == Duplex::kFull) return pipe.run(x);
    Transfer send_only = x, recv_only = x;
    send_only.recv_count = 0;
    send_only.src = MPI_PROC_NULL;
    recv_only.send_count = 0;
    recv_only.dest = MPI_PROC_NULL;
    const bool send_first = duplex == Duplex::kSendFirst;
    QUORUM_RETURN_IF_ERROR(pipe.run(send_first ? send_only : recv_only));
    return pipe.run(send_first ? recv_only : send_only);
  };

  // Reduce-scatter. At step s rank r passes block r-s on and folds block r-s-1 into its own
  // copy, so block b is combined in the fixed order b, b+1, ..., b-1 (mod p) and ends complete
  // on rank b-1 only: one computation, whose bits the allgather then copies.
  for (size_t s = 0; s + 1 < p; ++s) {
    const size_t send_b = (r + p - s) % p;
    const size_t recv_b = (r + 2 * p - s - 1) % p;
    QUORUM_RETURN_IF_ERROR(
        step({block_ptr(send_b), block_count(send_b), right, block_ptr(recv_b),
              block_count(recv_b), left, Combine::kLocalFirst, kRingReduceScatterTag}));
  }
  if (owned) {
    const size_t mine = (r + 1) % p;
    QUORUM_RETURN_IF_ERROR(owned(block_ptr(mine), block_count(mine)));
  }
  // Allgather: rank r starts with complete block r+1 and forwards what it last received.
  for (size_t s = 0; s + 1 < p; ++s) {
    const size_t send_b = (r + 1 + p - s) % p;
    const size_t recv_b = (r + p - s) % p;
    QUORUM_RETURN_IF_ERROR(
        step({block_ptr(send_b), block_count(send_b), right, block_ptr(recv_b),
              block_count(recv_b), left, Combine::kCopy, kRingAllgatherTag}));
  }
  return Status::ok();
}

Status ring_allreduce(MPI_Comm comm, void* buf, size_t count, DataType t, ReduceOp op,
                      const std::function<void()>& progress, size_t segment_bytes) {
  int size = 1;
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_size(comm, &size), "MPI_Comm_size"));
  OwnedBlock divide_owned;
  if (op == ReduceOp::kAverage) {
    divide_owned = [t, size](void* block, size_t n) {
      divide(block, n, t, static_cast<double>(size));
      return Status::ok();
    };
  }
  return ring_reduce_scatter_allgather(comm, buf, count, t, op, progress, divide_owned,
                                       segment_bytes);
}

Status tree_allreduce(MPI_Comm comm, void* buf, size_t count, DataType t, ReduceOp op,
                      const std::function<void()>& progress, size_t segment_bytes) {
  QUORUM_RETURN_IF_ERROR(check_args(buf, count, t, "tree_allreduce"));
  int rank = 0, size = 1;
  QUORUM_RETURN_IF_ERROR(comm_shape(comm, &rank, &size));
  if (size == 1 || count == 0) return Status::ok();

  auto* base = static_cast<unsigned char*>(buf);
  int pof2 = 1;
  while (pof2 <= size / 2) pof2 *= 2;
  const int rem = size - pof2;
  Pipeline pipe(comm, t, combining(op), segment_bytes, progress);

  // Fold-in: among the first 2*rem ranks, each even rank hands its data to the odd rank above
  // and sits out; the pof2 survivors are renumbered 0..pof2-1 in rank order.
  int vrank = rank - rem;
  if (rank < 2 * rem) {
    if (rank % 2 == 0) {
      QUORUM_RETURN_IF_ERROR(pipe.run(
          {base, count, rank + 1, nullptr, 0, MPI_PROC_NULL, Combine::kCopy, kTreeFoldTag}));
      vrank = -1;
    } else {
      QUORUM_RETURN_IF_ERROR(pipe.run({nullptr, 0, MPI_PROC_NULL, base, count, rank - 1,
                                       Combine::kIncomingFirst, kTreeFoldTag}));
      vrank = rank / 2;
    }
  }
  // Recursive doubling. Both partners hold identical bits within their half (by induction) and
  // compute lower (op) higher, so they end identical again: min/max of signed zeros and NaNs
  // are not symmetric, so the operand order matters even for commutative ops.
  if (vrank >= 0) {
    for (int mask = 1; mask < pof2; mask <<= 1) {
      const int vpeer = vrank ^ mask;
      const int peer = vpeer < rem ? vpeer * 2 + 1 : vpeer + rem;
      QUORUM_RETURN_IF_ERROR(pipe.run({base, count, peer, base, count, peer,
                                       peer < rank ? Combine::kIncomingFirst : Combine::kLocalFirst,
                                       kTreeExchangeTag}));
    }
  }
  if (vrank >= 0 && op == ReduceOp::kAverage) divide(base, count, t, static_cast<double>(size));
  // Fold-out: the odd rank returns the result to the even rank that sat out.
  if (rank < 2 * rem) {
    if (rank % 2 == 0) {
      QUORUM_RETURN_IF_ERROR(pipe.run(
          {nullptr, 0, MPI_PROC_NULL, base, count, rank + 1, Combine::kCopy, kTreeResultTag}));
    } else {
      QUORUM_RETURN_IF_ERROR(pipe.run(
          {base, count, rank - 1, nullptr, 0, MPI_PROC_NULL, Combine::kCopy, kTreeResultTag}));
    }
  }
  return Status::ok();
}

}  // namespace quorum::ops
