// The NCCL backend's collectives other than allreduce: broadcast and allgather (uniform sizes as
// one ncclAllGather, ragged ones as a group of broadcasts), and enter(), how every collective
// starts.
#include <algorithm>

#include "ops/nccl/nccl_backend.h"
#include "ops/nccl/nccl_common.h"

namespace quorum::ops {
namespace {

using nccl::cuda_status;
using nccl::nccl_status;
using nccl::where;

}  // namespace

Status NcclBackend::enter(int ordinal, Algorithm algorithm, const std::string& what, Device** d,
                          ncclComm_t* comm) {
  QUORUM_RETURN_IF_ERROR(in_step(what));
  if (Status s = device(ordinal, d); !s.is_ok()) return fail(nullptr, s);
  // NCCL's own algorithms already know the hosts: hierarchical runs as native there.
  if (algorithm == Algorithm::kHierarchical) algorithm = Algorithm::kNative;
  if (Status s = communicator(**d, algorithm, comm); !s.is_ok()) return fail(*d, s);
  return Status::ok();
}

Status NcclBackend::broadcast(void* buf, size_t bytes, int root) {
  return broadcast_on(default_device(), buf, bytes, root, nullptr);
}

Status NcclBackend::allgather(const void* send, void* recv,
                              const std::vector<size_t>& bytes_per_rank) {
  return allgather_on(default_device(), send, recv, bytes_per_rank, nullptr);
}

Status NcclBackend::broadcast_on(int ordinal, void* buf, size_t bytes, int root,
                                 void* ready_event) {
  const std::string what = "broadcast of " + std::to_string(bytes) + " bytes from rank " +
                           std::to_string(root) + " on " + where(ordinal);
  Device* d = nullptr;
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(enter(ordinal, Algorithm::kNative, what, &d, &comm));
  // A buffer not ordered after the caller's work is neither read nor written: this rank takes
  // part through zeroed scratch memory (zeros go out from a root) and fails afterwards.
  const Status local = wait_ready(*d, ready_event, what);
  void* target = buf;
  void* scratch = nullptr;
  Status s;
  if (!local.is_ok() && bytes > 0) {
    s = cuda_status(cudaMallocAsync(&scratch, bytes, d->stream), what + ": scratch memory");
    if (s.is_ok()) {
      s = cuda_status(cudaMemsetAsync(scratch, 0, bytes, d->stream), what + ": zeroing scratch");
    }
    target = scratch;
  }
  if (s.is_ok() && bytes > 0) {
    s = nccl_status(ncclBroadcast(target, target, bytes, ncclUint8, root, comm, d->stream), comm,
                    what);
    if (s.is_ok()) s = settle(*d, comm, "ncclBroadcast");
  }
  if (scratch) cudaFreeAsync(scratch, d->stream);
  if (s.is_ok()) s = finish(*d, d->done, comm, what);
  if (!s.is_ok()) return fail(d, s);
  return local;
}

Status NcclBackend::allgather_on(int ordinal, const void* send, void* recv,
                                 const std::vector<size_t>& bytes_per_rank, void* ready_event) {
  const std::string what = "allgather on " + where(ordinal);
  if (bytes_per_rank.size() != static_cast<size_t>(size_)) {
    // The sizes come from the plan, the same on every rank: none goes on.
    return Status(StatusCode::kInternal, what + ": sizes for " +
                                             std::to_string(bytes_per_rank.size()) +
                                             " ranks in a job of " + std::to_string(size_));
  }
  Device* d = nullptr;
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(enter(ordinal, Algorithm::kNative, what, &d, &comm));
  auto* out = static_cast<char*>(recv);
  size_t mine_at = 0;  // this rank's slice of `recv`
  for (int r = 0; r < rank_; ++r) mine_at += bytes_per_rank[static_cast<size_t>(r)];
  const size_t mine = bytes_per_rank[static_cast<size_t>(rank_)];
  // An input not ordered after the caller's work is not read: zeros go out in its place, from
  // this rank's own slice of `recv` (in place), and this rank fails afterwards.
  const Status local = wait_ready(*d, ready_event, what);
  Status s;
  if (!local.is_ok()) {
    if (mine > 0) {
      s = cuda_status(cudaMemsetAsync(out + mine_at, 0, mine, d->stream), what + ": zeros");
    }
    send = out + mine_at;
  }
  const bool uniform = std::all_of(bytes_per_rank.begin(), bytes_per_rank.end(),
                                   [&](size_t b) { return b == bytes_per_rank[0]; });
  ncclResult_t r = ncclSuccess;
  if (s.is_ok() && uniform) {
    if (bytes_per_rank[0] > 0) {
      r = ncclAllGather(send, recv, bytes_per_rank[0], ncclUint8, comm, d->stream);
    }
  } else if (s.is_ok()) {
    // Different first dimensions: every rank broadcasts its slice, in one group.
    ncclGroupStart();
    size_t offset = 0;
    for (int root = 0; root < size_ && (r == ncclSuccess || r == ncclInProgress); ++root) {
      size_t b = bytes_per_rank[static_cast<size_t>(root)];
      if (b > 0) {
        r = ncclBroadcast(root == rank_ ? send : out + offset, out + offset, b, ncclUint8, root,
                          comm, d->stream);
      }
      offset += b;
    }
    ncclResult_t end = ncclGroupEnd();
    if (r == ncclSuccess || r == ncclInProgress) r = end;
  }
  if (s.is_ok()) s = nccl_status(r, comm, what);
  if (s.is_ok()) s = settle(*d, comm, "allgather");
  if (s.is_ok()) s = finish(*d, d->done, comm, what);
  if (!s.is_ok()) return fail(d, s);
  return local;
}

}  // namespace quorum::ops
