#include "ops/ring_steps.h"

#include <algorithm>

#include "ops/mpi_backend.h"

namespace quorum::ops {

Status ring_steps(MPI_Comm comm, void* buf, size_t count, size_t elem_bytes, Duplex duplex,
                  RingSteps* out) {
  int rank = 0, size = 1;
  QUORUM_RETURN_IF_ERROR(comm_shape(comm, &rank, &size));
  *out = {};
  auto* base = static_cast<unsigned char*>(buf);
  const auto p = static_cast<size_t>(size);
  const auto r = static_cast<size_t>(rank);
  // Block b starts at b * (count / p) plus one for each earlier block that takes a remainder.
  auto block_count = [&](size_t b) { return count / p + (b < count % p ? 1 : 0); };
  auto block_ptr = [&](size_t b) {
    return base + (b * (count / p) + std::min(b, count % p)) * elem_bytes;
  };
  const size_t mine = (r + 1) % p;
  out->owned = block_ptr(mine);
  out->owned_count = block_count(mine);
  if (size == 1 || count == 0) return Status::ok();

  const int right = (rank + 1) % size;
  const int left = (rank + size - 1) % size;
  auto add = [&](std::vector<Transfer>& steps, const Transfer& x) {
    if (size != 2 || duplex == Duplex::kFull) {
      steps.push_back(x);
      return;
    }
    Transfer send_only = x, recv_only = x;
    send_only.recv_count = 0;
    send_only.src = MPI_PROC_NULL;
    recv_only.send_count = 0;
    recv_only.dest = MPI_PROC_NULL;
    const bool send_first = duplex == Duplex::kSendFirst;
    steps.push_back(send_first ? send_only : recv_only);
    steps.push_back(send_first ? recv_only : send_only);
  };
  for (size_t s = 0; s + 1 < p; ++s) {
    const size_t send_b = (r + p - s) % p;
    const size_t recv_b = (r + 2 * p - s - 1) % p;
    add(out->reduce_scatter,
        {block_ptr(send_b), block_count(send_b), right, block_ptr(recv_b), block_count(recv_b),
         left, Combine::kLocalFirst, kRingReduceScatterTag});
  }
  for (size_t s = 0; s + 1 < p; ++s) {
    const size_t send_b = (r + 1 + p - s) % p;
    const size_t recv_b = (r + p - s) % p;
    add(out->allgather, {block_ptr(send_b), block_count(send_b), right, block_ptr(recv_b),
                         block_count(recv_b), left, Combine::kCopy, kRingAllgatherTag});
  }
  return Status::ok();
}

}  // namespace quorum::ops
