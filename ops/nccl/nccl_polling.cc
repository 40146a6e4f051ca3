// Waiting on the GPU and NCCL without blocking the engine: settle() and finish() poll with the
// progress hook in between; in_step(), fail() and drain() make a failure that may leave this
// rank out of step permanent and leave nothing queued on the stream.
#include <optional>

#include "ops/nccl/nccl_backend.h"
#include "ops/nccl/nccl_common.h"

namespace quorum::ops {
namespace {

using nccl::cuda_status;
using nccl::nccl_error;
using nccl::where;

}  // namespace

Status NcclBackend::settle(Device& d, ncclComm_t comm, const std::string& what) {
  return poll(d, true, [&]() -> std::optional<Status> {
    // A local operation nested in progress() may have failed the backend, aborting `comm`.
    if (Status s = in_step(what); !s.is_ok()) return s;
    const ncclResult_t state = nccl::async_state(comm);
    if (state == ncclSuccess) return Status::ok();
    if (state != ncclInProgress) return nccl_error(state, comm, what + " on " + where(d.ordinal));
    return abandoned(what);
  });
}

Status NcclBackend::finish(Device& d, cudaEvent_t event, ncclComm_t comm,
                           const std::string& what) {
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaEventRecord(event, d.stream), what + " (event record)"));
  return poll(d, true, [&]() -> std::optional<Status> {
    // A local operation nested in progress() may have failed the backend meanwhile, aborting
    // `comm` and draining the stream: then the collective did not complete, whatever the event
    // says (and `comm` must not be touched again).
    if (comm && !failed_.empty()) return in_step(what);
    cudaError_t e = cudaEventQuery(event);
    if (e == cudaSuccess) return Status::ok();
    if (e != cudaErrorNotReady) return cuda_status(e, what);
    if (comm) {
      const ncclResult_t state = nccl::async_state(comm);
      if (state != ncclSuccess && state != ncclInProgress) return nccl_error(state, comm, what);
    }
    std::optional<Status> stop = abandoned(what);
    // A local operation (no comm) can be queued behind a collective that will never end now:
    // aborting the communicators ends that one, and fail() drains the stream before returning.
    if (stop && !comm) return fail(&d, *std::move(stop));
    return stop;
  });
}

std::optional<Status> NcclBackend::abandoned(const std::string& what) const {
  std::string reason = abort_reason();
  if (reason.empty()) return std::nullopt;
  return Status(StatusCode::kAborted, what + " abandoned: " + reason);
}

Status NcclBackend::in_step(const std::string& what) const {
  if (failed_.empty()) return Status::ok();
  return Status(StatusCode::kAborted,
                what + ": CUDA collectives stopped on this rank after an earlier failure (" +
                    failed_ + ")");
}

Status NcclBackend::fail(Device* d, Status s) {
  if (failed_.empty()) failed_ = s.message();
  for (auto& [ordinal, dev] : devices_) abort_comms(dev);
  if (d) drain(*d);
  return s;
}

void NcclBackend::drain(Device& d) {
  cudaSetDevice(d.ordinal);
  if (cudaEventRecord(d.done, d.stream) == cudaSuccess) {
    (void)poll(d, false, [&]() -> std::optional<Status> {
      if (cudaEventQuery(d.done) == cudaErrorNotReady) return std::nullopt;
      return Status::ok();
    });
  } else {
    cudaStreamSynchronize(d.stream);
  }
  cudaGetLastError();  // the failure being reported already says what went wrong
}

Status NcclBackend::wait_ready(Device& d, void* ready_event, const std::string& what) {
  if (!ready_event) return Status::ok();
  cudaError_t e = cudaStreamWaitEvent(d.stream, static_cast<cudaEvent_t>(ready_event), 0);
  if (e != cudaSuccess) cudaGetLastError();
  return cuda_status(e, what + ": waiting for the caller's ready event");
}

}  // namespace quorum::ops
