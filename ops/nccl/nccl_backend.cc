// The NCCL backend's devices and their lifetime: construction, per-device state (stream, events,
// buffers), teardown, and the local operations on a device (allocate, release, copy,
// accumulate). The collectives live in nccl_allreduce.cc and nccl_collectives.cc.
#include "ops/nccl/nccl_backend.h"

#include <algorithm>

#include "ops/nccl/nccl_common.h"
#include "ops/nccl/pack_kernels.h"

// Non-blocking communicators (ncclConfig_t.blocking = 0), ncclCommFinalize and ncclGetLastError
// exist from 2.14; non-blocking mode was unreliable before about 2.18.
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
#error "quorum's NCCL backend needs NCCL 2.18 or newer"
#endif

namespace quorum::ops {
namespace {

using nccl::cuda_status;
using nccl::where;

constexpr int kMinNcclVersion = NCCL_VERSION(2, 18, 0);

}  // namespace

bool device_backend_built() { return true; }

Status create_device_backend(MPI_Comm comm, int local_rank,
                             std::optional<std::string> user_nccl_algo,
                             std::unique_ptr<DeviceBackend>* out) {
  *out = std::make_unique<NcclBackend>(comm, local_rank, std::move(user_nccl_algo));
  return Status::ok();
}

NcclBackend::NcclBackend(MPI_Comm comm, int local_rank, std::optional<std::string> user_nccl_algo)
    : comm_(comm), local_rank_(local_rank), user_nccl_algo_(std::move(user_nccl_algo)) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

NcclBackend::~NcclBackend() {
  if (devices_.empty()) return;  // CUDA was never used: not even initialised here
  // The caller's current device is left as it was.
  int caller = -1;
  const bool had_device = cudaGetDevice(&caller) == cudaSuccess;
  const bool broken = !failed_.empty() || !abort_reason().empty();
  for (auto& [ordinal, d] : devices_) {
    cudaSetDevice(ordinal);
    close_comms(d, broken);
    if (d.stream) cudaStreamSynchronize(d.stream);
    for (void* p : d.held) cudaFree(p);
    if (d.fusion) cudaFree(d.fusion);
    if (d.table) cudaFree(d.table);
    if (d.staging) cudaFreeHost(d.staging);
    if (d.host_counts) cudaFreeHost(d.host_counts);
    if (d.done) cudaEventDestroy(d.done);
    if (d.aux) cudaEventDestroy(d.aux);
    if (d.stream) cudaStreamDestroy(d.stream);
  }
  if (had_device) cudaSetDevice(caller);
  cudaGetLastError();  // nothing of the teardown is left for the caller's next check
}

int NcclBackend::default_device() {
  if (device_count_ < 0) {
    int n = 0;
    device_count_ = cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
  }
  return device_count_ > 0 ? local_rank_ % device_count_ : local_rank_;
}

Status NcclBackend::probe() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cuda_status(e, "rank " + std::to_string(rank_) + " cannot use CUDA");
  }
  if (n == 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "rank " + std::to_string(rank_) + " has no CUDA device");
  }
  // The libnccl found at run time may be older than the header this was built against.
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess || version < kMinNcclVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  "rank " + std::to_string(rank_) + " loaded NCCL " + std::to_string(version) +
                      "; quorum needs " + std::to_string(kMinNcclVersion) + " or newer");
  }
  return Status::ok();
}

Status NcclBackend::select(int ordinal) {
  return cuda_status(cudaSetDevice(ordinal), "selecting " + where(ordinal));
}

Status NcclBackend::device(int ordinal, Device** out) {
  QUORUM_RETURN_IF_ERROR(select(ordinal));
  auto it = devices_.find(ordinal);
  if (it == devices_.end()) {
    Device d;
    d.ordinal = ordinal;
    Status s = cuda_status(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking),
                           "creating quorum's stream on " + where(ordinal));
    if (s.is_ok()) {
      s = cuda_status(cudaEventCreateWithFlags(&d.done, cudaEventDisableTiming),
                      "creating an event on " + where(ordinal));
    }
    if (s.is_ok()) {
      s = cuda_status(cudaEventCreateWithFlags(&d.aux, cudaEventDisableTiming),
                      "creating an event on " + where(ordinal));
    }
    if (!s.is_ok()) {
      if (d.done) cudaEventDestroy(d.done);
      if (d.stream) cudaStreamDestroy(d.stream);
      return s;
    }
    it = devices_.emplace(ordinal, std::move(d)).first;
  }
  *out = &it->second;
  return Status::ok();
}

Status NcclBackend::allocate(int ordinal, size_t bytes, bool zero, void** out) {
  *out = nullptr;
  Device* d = nullptr;
  QUORUM_RETURN_IF_ERROR(device(ordinal, &d));
  const std::string what = "allocating " + std::to_string(bytes) + " bytes on " + where(ordinal);
  void* p = nullptr;
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaMallocAsync(&p, std::max<size_t>(bytes, 1), d->stream),
                                     what));
  if (zero && bytes > 0) {
    Status s = cuda_status(cudaMemsetAsync(p, 0, bytes, d->stream), what + " (zeroing)");
    if (!s.is_ok()) {
      cudaFreeAsync(p, d->stream);
      return s;
    }
  }
  d->held.insert(p);
  *out = p;
  return Status::ok();
}

void NcclBackend::release(int ordinal, void* p) {
  if (!p) return;
  auto it = devices_.find(ordinal);
  if (it == devices_.end() || it->second.held.erase(p) == 0) return;
  cudaSetDevice(ordinal);
  cudaFreeAsync(p, it->second.stream);  // stream-ordered: after every use queued before
}

Status NcclBackend::copy(int ordinal, void* dst, const void* src, size_t bytes,
                         void* ready_event) {
  const std::string what = "copying " + std::to_string(bytes) + " bytes on " + where(ordinal);
  Device* d = nullptr;
  QUORUM_RETURN_IF_ERROR(device(ordinal, &d));
  QUORUM_RETURN_IF_ERROR(wait_ready(*d, ready_event, what));
  if (bytes > 0) {
    QUORUM_RETURN_IF_ERROR(
        cuda_status(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, d->stream), what));
  }
  return finish(*d, d->aux, nullptr, what);
}

Status NcclBackend::accumulate(int ordinal, void* acc, const void* src, size_t elements,
                               DataType dtype, void* ready_event) {
  const std::string what = "adding a late " + std::string(dtype_name(dtype)) +
                           " gradient to its carry on " + where(ordinal);
  Device* d = nullptr;
  QUORUM_RETURN_IF_ERROR(device(ordinal, &d));
  QUORUM_RETURN_IF_ERROR(wait_ready(*d, ready_event, what));
  QUORUM_RETURN_IF_ERROR(
      cuda_status(nccl::launch_accumulate(acc, src, elements, dtype, d->stream), what));
  return finish(*d, d->aux, nullptr, what);
}

}  // namespace quorum::ops
