#include "ops/mpi_backend.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <string>

#include "ops/hierarchical_allreduce.h"
#include "ops/kernels.h"
#include "ops/p2p_allreduce.h"
#include "ops/transfer.h"

namespace quorum::ops {
namespace {

// MPI counts are int; large buffers go in pieces of at most this many elements or bytes.
constexpr size_t kMaxChunk = size_t{1} << 30;
// Allreduces up to this size wait patiently (Patience::kPatient): MPICH sends them eagerly.
constexpr size_t kPatientBytes = 64 * 1024;

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      return MPI_SUM;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kProduct:
      return MPI_PROD;
  }
  return MPI_OP_NULL;
}

}  // namespace

MPI_Datatype mpi_datatype(DataType t) {
  switch (t) {
    case DataType::kF32:
      return MPI_FLOAT;
    case DataType::kF64:
      return MPI_DOUBLE;
    case DataType::kI32:
      return MPI_INT32_T;
    case DataType::kI64:
      return MPI_INT64_T;
    case DataType::kU8:
      return MPI_UINT8_T;
    case DataType::kF16:
    case DataType::kBF16:
      return MPI_DATATYPE_NULL;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Datatype transport_datatype(DataType t) {
  return t == DataType::kF16 || t == DataType::kBF16 ? MPI_UINT16_T : mpi_datatype(t);
}

Status mpi_status(int err, std::string_view call) {
  if (err == MPI_SUCCESS) return Status::ok();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, text, &len);
  return Status(StatusCode::kInternal,
                std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

Status comm_shape(MPI_Comm comm, int* rank, int* size) {
  QUORUM_RETURN_IF_ERROR(mpi_status(MPI_Comm_rank(comm, rank), "MPI_Comm_rank"));
  return mpi_status(MPI_Comm_size(comm, size), "MPI_Comm_size");
}

namespace {
std::atomic<bool> g_abandoned{false};
std::mutex g_abandon_mu;
std::string g_abandon_reason;
}  // namespace

void abandon_waits(const std::string& reason) {
  std::lock_guard lk(g_abandon_mu);
  if (!g_abandoned) g_abandon_reason = reason;
  g_abandoned = true;
}

void reset_abandoned() {
  std::lock_guard lk(g_abandon_mu);
  g_abandoned = false;
  g_abandon_reason.clear();
}

Status abandoned_status() {
  if (!g_abandoned.load(std::memory_order_relaxed)) return Status::ok();
  std::lock_guard lk(g_abandon_mu);
  return Status(StatusCode::kAborted, "collective abandoned: " + g_abandon_reason);
}

Status wait_request(MPI_Request& request, const std::function<void()>& progress,
                    Patience patience) {
  return poll_until(
      [&request](bool* done, bool*) {
        int flag = 0;
        QUORUM_RETURN_IF_ERROR(
            mpi_status(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), "MPI_Test"));
        *done = flag != 0;
        return Status::ok();
      },
      progress, patience);
}

MpiBackend::MpiBackend(MPI_Comm comm, const Hierarchy* hierarchy)
    : comm_(comm), hierarchy_(hierarchy) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

Status MpiBackend::allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                             Algorithm algorithm) {
  levels_valid_ = false;
  if (algorithm == Algorithm::kHierarchical && hierarchy_) {
    Status s = hierarchical_allreduce(
        *hierarchy_, buf, count, t, op, [this] { progress(); }, &levels_);
    levels_valid_ = s.is_ok();
    return s;
  }
  if (algorithm == Algorithm::kRing || algorithm == Algorithm::kHierarchical) {
    return ring_allreduce(comm_, buf, count, t, op, [this] { progress(); });
  }
  if (algorithm == Algorithm::kTree) {
    return tree_allreduce(comm_, buf, count, t, op, [this] { progress(); });
  }
  MPI_Datatype type = mpi_datatype(t);
  if (type == MPI_DATATYPE_NULL) {
    return Status(StatusCode::kInvalidArgument, "MPI_Allreduce has no " +
                                                    std::string(dtype_name(t)) +
                                                    " arithmetic: run a ring or tree for it");
  }
  auto* bytes = static_cast<char*>(buf);
  size_t elem = dtype_size(t);
  // A small allreduce goes out in one eager message per peer: waiting on it is waiting for the
  // peers, which needs no fast polling to move data.
  const Patience patience = count * elem <= kPatientBytes ? Patience::kPatient : Patience::kEager;
  for (size_t done = 0; done < count;) {
    size_t n = std::min(kMaxChunk, count - done);
    MPI_Request req;
    QUORUM_RETURN_IF_ERROR(
        mpi_status(MPI_Iallreduce(MPI_IN_PLACE, bytes + done * elem, static_cast<int>(n), type,
                                  mpi_op(op), comm_, &req),
                   "MPI_Iallreduce"));
    QUORUM_RETURN_IF_ERROR(wait_request(req, [this] { progress(); }, patience));
    done += n;
  }
  if (op == ReduceOp::kAverage) divide(buf, count, t, static_cast<double>(size_));
  return Status::ok();
}

Status MpiBackend::broadcast(void* buf, size_t bytes, int root) {
  auto* p = static_cast<char*>(buf);
  for (size_t done = 0; done < bytes;) {
    size_t n = std::min(kMaxChunk, bytes - done);
    MPI_Request req;
    QUORUM_RETURN_IF_ERROR(mpi_status(
        MPI_Ibcast(p + done, static_cast<int>(n), MPI_BYTE, root, comm_, &req), "MPI_Ibcast"));
    QUORUM_RETURN_IF_ERROR(wait_request(req, [this] { progress(); }));
    done += n;
  }
  return Status::ok();
}

Status MpiBackend::allgather(const void* send, void* recv,
                             const std::vector<size_t>& bytes_per_rank) {
  std::vector<int> counts(bytes_per_rank.size()), displs(bytes_per_rank.size());
  size_t offset = 0;
  for (size_t r = 0; r < bytes_per_rank.size(); ++r) {
    if (bytes_per_rank[r] > INT_MAX || offset > INT_MAX) {
      return Status(StatusCode::kUnimplemented,
                    "allgather over MPI is limited to 2 GiB in total; rank " + std::to_string(r) +
                        " contributes " + std::to_string(bytes_per_rank[r]) + " bytes");
    }
    counts[r] = static_cast<int>(bytes_per_rank[r]);
    displs[r] = static_cast<int>(offset);
    offset += bytes_per_rank[r];
  }
  MPI_Request req;
  QUORUM_RETURN_IF_ERROR(
      mpi_status(MPI_Iallgatherv(send, counts[static_cast<size_t>(rank_)], MPI_BYTE, recv,
                                 counts.data(), displs.data(), MPI_BYTE, comm_, &req),
                 "MPI_Iallgatherv"));
  return wait_request(req, [this] { progress(); });
}

}  // namespace quorum::ops
