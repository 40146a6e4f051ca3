// The NCCL backend's communicators: created collectively on first use (rank 0's id over MPI,
// NCCL_ALGO pinned for ring and tree while one initialises), aborted when the backend fails,
// finalised at teardown.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "ops/mpi_backend.h"
#include "ops/nccl/nccl_backend.h"
#include "ops/nccl/nccl_common.h"

namespace quorum::ops {
namespace {

using nccl::cuda_status;
using nccl::nccl_error;
using nccl::nccl_status;
using nccl::where;

const char* algo_text(Algorithm a) {
  switch (a) {
    case Algorithm::kNative: return "native";
    case Algorithm::kRing: return "ring";
    case Algorithm::kTree: return "tree";
    case Algorithm::kHierarchical: return "native";  // NCCL's own rings and trees see hosts
  }
  return "native";
}

// Sets NCCL_ALGO for the lifetime of the scope (ring/tree), then puts back the user's value
// (read with the knobs at init: Config::nccl_algo), or unsets it. setenv is not thread-safe
// against environment reads elsewhere, so the scope is kept to a communicator's
// initialisation, with no engine code (progress hook) running inside it.
class PinnedAlgo {
 public:
  PinnedAlgo(Algorithm a, const std::optional<std::string>& user_value) : old_(user_value) {
    if (a == Algorithm::kNative) return;
    active_ = true;
    setenv("NCCL_ALGO", a == Algorithm::kRing ? "Ring" : "Tree", 1);
  }
  ~PinnedAlgo() {
    if (!active_) return;
    if (old_) {
      setenv("NCCL_ALGO", old_->c_str(), 1);
    } else {
      unsetenv("NCCL_ALGO");
    }
  }
  PinnedAlgo(const PinnedAlgo&) = delete;
  PinnedAlgo& operator=(const PinnedAlgo&) = delete;

 private:
  bool active_ = false;
  std::optional<std::string> old_;
};

// With NCCL_ALGO pinned the progress hook does not run, so no heartbeat leaves this rank: a
// pinned initialisation taking longer than this is abandoned (well below the default
// QUORUM_FAILURE_TIMEOUT_SEC of 30 s, after which the coordinator would call this rank lost).
constexpr auto kPinnedInitLimit = std::chrono::seconds(20);

// Finalises (flushing what is still queued; a non-blocking communicator answers ncclInProgress),
// waits for that within a bound, then destroys. False when any step failed or timed out: the
// caller aborts `comm` then (it has not been destroyed).
bool finalize_and_destroy(ncclComm_t comm) {
  ncclResult_t r = ncclCommFinalize(comm);
  if (r != ncclSuccess && r != ncclInProgress) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  ncclResult_t state = ncclInProgress;
  for (;;) {
    state = nccl::async_state(comm);
    if (state != ncclInProgress) break;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (state != ncclSuccess) return false;
  ncclCommDestroy(comm);  // frees it whatever it answers: never aborted after this
  return true;
}

}  // namespace

Status NcclBackend::communicator(Device& d, Algorithm algorithm, ncclComm_t* out) {
  ncclComm_t& slot = d.comms[static_cast<size_t>(algorithm)];
  if (slot) {
    *out = slot;
    return Status::ok();
  }
  const std::string what = std::string("creating the NCCL ") + algo_text(algorithm) +
                           " communicator on " + where(d.ordinal);
  // Rank 0's id travels with a flag, so a failure there fails every rank instead of hanging.
  struct {
    int32_t ok = 1;
    ncclUniqueId id;
  } boot;
  std::memset(&boot.id, 0, sizeof(boot.id));
  Status mine;
  if (rank_ == 0) {
    mine = nccl_status(ncclGetUniqueId(&boot.id), nullptr, what + " (ncclGetUniqueId)");
    boot.ok = mine.is_ok() ? 1 : 0;
  }
  MPI_Request req;
  QUORUM_RETURN_IF_ERROR(mpi_status(
      MPI_Ibcast(&boot, sizeof(boot), MPI_BYTE, 0, comm_, &req), "MPI_Ibcast (NCCL id)"));
  QUORUM_RETURN_IF_ERROR(wait_request(req, [this] { progress(); }));
  if (!boot.ok) {
    return mine.is_ok() ? Status(StatusCode::kInternal, what + ": rank 0 could not make an id")
                        : mine;
  }
  // Every rank has the id and its device before any starts NCCL's initialisation: a pinned one
  // runs without the progress hook (below), so it must wait for NCCL alone, not for a rank still
  // on its way here.
  int ready = cudaSetDevice(d.ordinal) == cudaSuccess ? 1 : 0;  // the hook may have moved it
  if (!ready) cudaGetLastError();
  QUORUM_RETURN_IF_ERROR(mpi_status(
      MPI_Iallreduce(MPI_IN_PLACE, &ready, 1, MPI_INT, MPI_MIN, comm_, &req),
      "MPI_Iallreduce (NCCL init)"));
  QUORUM_RETURN_IF_ERROR(wait_request(req, [this] { progress(); }));
  // A local operation nested in progress() may have failed the backend meanwhile: no new
  // communicator then (the peers learn of the failure as the job breaks).
  QUORUM_RETURN_IF_ERROR(in_step(what));
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaSetDevice(d.ordinal), what));
  if (!ready) return Status(StatusCode::kInternal, what + ": a rank could not select its device");

  ncclComm_t comm = nullptr;
  ncclResult_t state = ncclInProgress;
  {
    // NCCL reads NCCL_ALGO while the communicator initialises, on its own thread after
    // ncclCommInitRankConfig returned, so the pin lasts until the initialisation finished.
    // Meanwhile no progress hook runs (engine code never sees the pinned environment); the
    // abort reason is still checked, and kPinnedInitLimit bounds the wait. Unpinned, the hook
    // runs between polls as everywhere else.
    const bool pinned = algorithm != Algorithm::kNative;
    PinnedAlgo pin(algorithm, user_nccl_algo_);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm, size_, boot.id, rank_, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
      Status s = nccl_error(r, comm, what);
      if (comm) ncclCommAbort(comm);
      return s;
    }
    if (!comm) return Status(StatusCode::kInternal, what + ": NCCL returned no communicator");
    const auto deadline = std::chrono::steady_clock::now() + kPinnedInitLimit;
    Status ended = poll(d, !pinned, [&]() -> std::optional<Status> {
      // A local operation nested in progress() (unpinned only) may have failed the backend.
      if (!failed_.empty()) {
        ncclCommAbort(comm);
        return in_step(what);
      }
      state = nccl::async_state(comm);
      if (state != ncclInProgress) return Status::ok();
      std::optional<Status> stop = abandoned(what);
      if (!stop && pinned && std::chrono::steady_clock::now() > deadline) {
        stop = Status(StatusCode::kAborted,
                      what + " abandoned: NCCL_ALGO was pinned for longer than " +
                          std::to_string(kPinnedInitLimit.count()) + " s");
      }
      if (stop) ncclCommAbort(comm);
      return stop;
    });
    QUORUM_RETURN_IF_ERROR(ended);
  }
  if (state != ncclSuccess) {
    Status s = nccl_error(state, comm, what);
    ncclCommAbort(comm);
    return s;
  }
  slot = comm;
  *out = comm;
  return Status::ok();
}

void NcclBackend::abort_comms(Device& d) {
  for (ncclComm_t& c : d.comms) {
    if (c) ncclCommAbort(c);
    c = nullptr;
  }
}

void NcclBackend::close_comms(Device& d, bool broken) {
  for (ncclComm_t& c : d.comms) {
    if (!c) continue;
    // Teardown, off the engine's hot path: a bounded wait for the flush, then destroy; abort
    // only when the job broke or that failed.
    if (broken || !finalize_and_destroy(c)) ncclCommAbort(c);
    c = nullptr;
  }
}

}  // namespace quorum::ops
