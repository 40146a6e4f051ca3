#include "ops/p2p_allreduce.h"

#include <algorithm>
#include <string>

#include "ops/kernels.h"
#include "ops/mpi_backend.h"

namespace quorum::ops {
namespace {

// Tree tags; the ring's are in ring_steps.h.
constexpr int kTreeFoldTag = 0x7110;
constexpr int kTreeExchangeTag = 0x7111;
constexpr int kTreeResultTag = 0x7112;

}  // namespace

Status ring_reduce_scatter_allgather(MPI_Comm comm, void* buf, size_t count, DataType t,
                                     ReduceOp op, const std::function<void()>& progress,
                                     const OwnedBlock& owned, size_t segment_bytes, Duplex duplex) {
  QUORUM_RETURN_IF_ERROR(check_transfer_args(buf, count, t, "ring_allreduce"));
  if (count == 0) return Status::ok();

  RingSteps steps;
  QUORUM_RETURN_IF_ERROR(ring_steps(comm, buf, count, dtype_size(t), duplex, &steps));
  TransferQueue queue(comm, t, combining(op), segment_bytes);
  for (const Transfer& x : steps.reduce_scatter) queue.push(x);
  if (owned) queue.push([&] { return owned(steps.owned, steps.owned_count); });
  for (const Transfer& x : steps.allgather) queue.push(x);
  return queue.drain(progress);
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
  QUORUM_RETURN_IF_ERROR(check_transfer_args(buf, count, t, "tree_allreduce"));
  int rank = 0, size = 1;
  QUORUM_RETURN_IF_ERROR(comm_shape(comm, &rank, &size));
  if (size == 1 || count == 0) return Status::ok();

  auto* base = static_cast<unsigned char*>(buf);
  int pof2 = 1;
  while (pof2 <= size / 2) pof2 *= 2;
  const int rem = size - pof2;
  TransferQueue queue(comm, t, combining(op), segment_bytes);

  // Fold-in: among the first 2*rem ranks, each even rank hands its data to the odd rank above
  // and sits out; the pof2 survivors are renumbered 0..pof2-1 in rank order.
  int vrank = rank - rem;
  if (rank < 2 * rem) {
    if (rank % 2 == 0) {
      queue.push(
          Transfer{base, count, rank + 1, nullptr, 0, MPI_PROC_NULL, Combine::kCopy, kTreeFoldTag});
      vrank = -1;
    } else {
      queue.push(Transfer{nullptr, 0, MPI_PROC_NULL, base, count, rank - 1, Combine::kIncomingFirst,
                          kTreeFoldTag});
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
      queue.push(Transfer{base, count, peer, base, count, peer,
                          peer < rank ? Combine::kIncomingFirst : Combine::kLocalFirst,
                          kTreeExchangeTag});
    }
  }
  if (vrank >= 0 && op == ReduceOp::kAverage) {
    queue.push([=] {
      divide(base, count, t, static_cast<double>(size));
      return Status::ok();
    });
  }
  // Fold-out: the odd rank returns the result to the even rank that sat out.
  if (rank < 2 * rem) {
    if (rank % 2 == 0) {
      queue.push(Transfer{nullptr, 0, MPI_PROC_NULL, base, count, rank + 1, Combine::kCopy,
                          kTreeResultTag});
    } else {
      queue.push(Transfer{base, count, rank - 1, nullptr, 0, MPI_PROC_NULL, Combine::kCopy,
                          kTreeResultTag});
    }
  }
  return queue.drain(progress);
}

}  // namespace quorum::ops
