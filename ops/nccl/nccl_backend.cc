#include "ops/nccl/nccl_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "ops/backoff.h"
#include "ops/mpi_backend.h"
#include "ops/nccl/pack_kernels.h"

// Non-blocking communicators (ncclConfig_t.blocking = 0), ncclCommFinalize and ncclGetLastError
// exist from 2.14; non-blocking mode was unreliable before about 2.18.
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
#error "quorum's NCCL backend needs NCCL 2.18 or newer"
#endif

namespace quorum::ops {
namespace {

constexpr int kMinNcclVersion = NCCL_VERSION(2, 18, 0);

std::string where(int ordinal) { return "cuda:" + std::to_string(ordinal); }

Status cuda_status(cudaError_t err, const std::string& what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kInternal,
                what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

// An error for `r`, whatever it is (ncclInProgress included).
Status nccl_error(ncclResult_t r, ncclComm_t comm, const std::string& what) {
  std::string detail = comm ? ncclGetLastError(comm) : "";
  return Status(StatusCode::kInternal, what + ": " + ncclGetErrorString(r) +
                                           (detail.empty() ? "" : " (" + detail + ")"));
}

// OK for a call that succeeded or was accepted (ncclInProgress, non-blocking communicators).
Status nccl_status(ncclResult_t r, ncclComm_t comm, const std::string& what) {
  if (r == ncclSuccess || r == ncclInProgress) return Status::ok();
  return nccl_error(r, comm, what);
}

ncclDataType_t nccl_type(DataType t) {
  switch (t) {
    case DataType::kF16: return ncclFloat16;
    case DataType::kBF16: return ncclBfloat16;
    case DataType::kF32: return ncclFloat32;
    case DataType::kF64: return ncclFloat64;
    case DataType::kI32: return ncclInt32;
    case DataType::kI64: return ncclInt64;
    case DataType::kU8: return ncclUint8;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage: return ncclSum;
    case ReduceOp::kMin: return ncclMin;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kProduct: return ncclProd;
  }
  return ncclSum;
}

const char* algo_text(Algorithm a) {
  switch (a) {
    case Algorithm::kNative: return "native";
    case Algorithm::kRing: return "ring";
    case Algorithm::kTree: return "tree";
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
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess) return false;
    if (state != ncclInProgress) break;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (state != ncclSuccess) return false;
  ncclCommDestroy(comm);  // frees it whatever it answers: never aborted after this
  return true;
}

// Longest sleep between polls of a device collective (ops::Backoff).
constexpr std::chrono::microseconds kDevicePauseCap{50};

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
    for (ncclComm_t& c : d.comms) {
      if (!c) continue;
      // Teardown, off the engine's hot path: a bounded wait for the flush, then destroy; abort
      // only when the job broke or that failed.
      if (broken || !finalize_and_destroy(c)) ncclCommAbort(c);
      c = nullptr;
    }
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
    Backoff backoff(kDevicePauseCap);
    for (;;) {
      ncclResult_t q = ncclCommGetAsyncError(comm, &state);
      if (q != ncclSuccess) state = q;
      if (state != ncclInProgress) break;
      std::string reason = abort_reason();
      if (reason.empty() && pinned && std::chrono::steady_clock::now() > deadline) {
        reason = "NCCL_ALGO was pinned for longer than " +
                 std::to_string(kPinnedInitLimit.count()) + " s";
      }
      if (!reason.empty()) {
        ncclCommAbort(comm);
        return Status(StatusCode::kAborted, what + " abandoned: " + reason);
      }
      if (!pinned) {
        progress();
        if (!failed_.empty()) {
          ncclCommAbort(comm);
          return in_step(what);
        }
        cudaSetDevice(d.ordinal);  // the engine may have used another device meanwhile
      }
      backoff.pause();
    }
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

Status NcclBackend::settle(Device& d, ncclComm_t comm, const std::string& what) {
  Backoff backoff(kDevicePauseCap);
  for (;;) {
    // A local operation nested in progress() may have failed the backend, aborting `comm`.
    QUORUM_RETURN_IF_ERROR(in_step(what));
    ncclResult_t state = ncclInProgress;
    ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess) return Status::ok();
    if (state != ncclInProgress) return nccl_error(state, comm, what + " on " + where(d.ordinal));
    std::string reason = abort_reason();
    if (!reason.empty()) return Status(StatusCode::kAborted, what + " abandoned: " + reason);
    progress();
    cudaSetDevice(d.ordinal);
    backoff.pause();
  }
}

Status NcclBackend::finish(Device& d, cudaEvent_t event, ncclComm_t comm,
                           const std::string& what) {
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaEventRecord(event, d.stream), what + " (event record)"));
  Backoff backoff(kDevicePauseCap);
  for (;;) {
    // A local operation nested in progress() may have failed the backend meanwhile, aborting
    // `comm` and draining the stream: then the collective did not complete, whatever the event
    // says (and `comm` must not be touched again).
    if (comm && !failed_.empty()) return in_step(what);
    cudaError_t e = cudaEventQuery(event);
    if (e == cudaSuccess) return Status::ok();
    if (e != cudaErrorNotReady) return cuda_status(e, what);
    if (comm) {
      ncclResult_t state = ncclSuccess;
      ncclResult_t r = ncclCommGetAsyncError(comm, &state);
      if (r != ncclSuccess) state = r;
      if (state != ncclSuccess && state != ncclInProgress) return nccl_error(state, comm, what);
    }
    std::string reason = abort_reason();
    if (!reason.empty()) {
      Status s(StatusCode::kAborted, what + " abandoned: " + reason);
      // A local operation (no comm) can be queued behind a collective that will never end now:
      // aborting the communicators ends that one, and fail() drains the stream before returning.
      return comm ? s : fail(&d, s);
    }
    progress();
    cudaSetDevice(d.ordinal);
    backoff.pause();
  }
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
    Backoff backoff(kDevicePauseCap);
    while (cudaEventQuery(d.done) == cudaErrorNotReady) backoff.pause();
  } else {
    cudaStreamSynchronize(d.stream);
  }
  cudaGetLastError();  // the failure being reported already says what went wrong
}

void NcclBackend::abort_comms(Device& d) {
  for (ncclComm_t& c : d.comms) {
    if (c) ncclCommAbort(c);
    c = nullptr;
  }
}

Status NcclBackend::wait_ready(Device& d, void* ready_event, const std::string& what) {
  if (!ready_event) return Status::ok();
  cudaError_t e = cudaStreamWaitEvent(d.stream, static_cast<cudaEvent_t>(ready_event), 0);
  if (e != cudaSuccess) cudaGetLastError();
  return cuda_status(e, what + ": waiting for the caller's ready event");
}

Status NcclBackend::ensure_tables(Device& d, size_t parts) {
  if (d.table_capacity < parts) {
    size_t cap = std::max<size_t>(parts, std::max<size_t>(64, d.table_capacity * 2));
    if (d.table) QUORUM_RETURN_IF_ERROR(cuda_status(cudaFreeAsync(d.table, d.stream), "freeing"));
    d.table = nullptr;
    // The pinned table may still feed an earlier copy: every job is waited for before the next
    // one starts, so it is idle here.
    if (d.staging) cudaFreeHost(d.staging);
    d.staging = nullptr;
    d.table_capacity = 0;
    QUORUM_RETURN_IF_ERROR(cuda_status(
        cudaMallocAsync(reinterpret_cast<void**>(&d.table), cap * sizeof(nccl::PackEntry),
                        d.stream),
        "allocating the part table on " + where(d.ordinal)));
    QUORUM_RETURN_IF_ERROR(cuda_status(
        cudaMallocHost(reinterpret_cast<void**>(&d.staging), cap * sizeof(nccl::PackEntry)),
        "allocating the pinned part table for " + where(d.ordinal)));
    d.table_capacity = cap;
  }
  if (d.counts_capacity < parts) {
    size_t cap = std::max<size_t>(parts, std::max<size_t>(64, d.counts_capacity * 2));
    if (d.host_counts) cudaFreeHost(d.host_counts);
    d.host_counts = nullptr;
    d.counts_capacity = 0;
    QUORUM_RETURN_IF_ERROR(cuda_status(
        cudaMallocHost(reinterpret_cast<void**>(&d.host_counts), cap * sizeof(float)),
        "allocating pinned count slots for " + where(d.ordinal)));
    d.counts_capacity = cap;
  }
  return Status::ok();
}

// Every early return after device() goes through fail() (the peers may be inside NCCL already,
// see device_backend.h) except a part's unusable ready event, which only that part pays for.
Status NcclBackend::fused_allreduce(const DeviceAllreduce& job, std::vector<int64_t>* counts,
                                    std::vector<Status>* part_errors) {
  const std::string what = "allreduce of " + std::to_string(job.parts.size()) + " tensor(s) on " +
                           where(job.device);
  const int n = static_cast<int>(job.parts.size());
  if (part_errors) part_errors->assign(job.parts.size(), Status::ok());
  if (!nccl::pack_supported(job.dtype, job.wire)) {
    // The same on every rank (one dtype, rank 0's compression): none goes on.
    return Status(StatusCode::kInternal, what + ": no kernel for " +
                                             std::string(dtype_name(job.dtype)) + " over " +
                                             std::string(dtype_name(job.wire)));
  }
  QUORUM_RETURN_IF_ERROR(in_step(what));
  Device* d = nullptr;
  if (Status s = device(job.device, &d); !s.is_ok()) return fail(nullptr, s);
  ncclComm_t comm = nullptr;
  if (Status s = communicator(*d, job.algorithm, &comm); !s.is_ok()) return fail(d, s);
  if (Status s = ensure_tables(*d, std::max(n, 1)); !s.is_ok()) return fail(d, s);
  Status local;  // the first part's error, for a caller without part_errors
  for (int k = 0; k < n; ++k) {
    const DevicePart& p = job.parts[static_cast<size_t>(k)];
    nccl::PackEntry& e = d->staging[k];
    e = nccl::PackEntry{p.input, p.carry, p.output, p.keep, p.elements, 0, 0,
                        static_cast<float>(p.count), 0};
    Status ready = wait_ready(*d, p.ready_event, "tensor '" + p.name + "'");
    if (ready.is_ok()) continue;
    // Not ordered after its producer, so neither read nor written: the part stands in with
    // zeros, without the gradient its input stood for (the others' Average stays right); its
    // carry still goes in.
    if (e.src) e.count = std::max(0.0f, e.count - 1.0f);
    e.src = nullptr;
    e.dst = nullptr;
    if (part_errors) (*part_errors)[static_cast<size_t>(k)] = ready;
    if (local.is_ok()) local = ready;
  }
  const bool average = job.op == ReduceOp::kAverage;
  const nccl::PackEntry* lone = n == 1 ? &d->staging[0] : nullptr;
  // A lone tensor already in its wire dtype goes straight from input to output.
  const bool direct = lone && job.wire == job.dtype && !job.counted && lone->src && !lone->carry &&
                      !lone->keep && lone->dst;
  uint64_t total = 0;
  const uint64_t chunks = nccl::lay_out(d->staging, n, &total);
  const size_t wire_bytes = dtype_size(job.wire);
  const size_t bytes = nccl::fused_bytes(total, wire_bytes, static_cast<uint64_t>(n), job.counted);
  void* fused = nullptr;
  void* temporary = nullptr;
  if (direct) {
    fused = lone->dst;
  } else if (bytes > 0) {
    if (bytes <= job.keep_buffer_bytes || bytes <= d->fusion_bytes) {
      if (d->fusion_bytes < bytes) {
        if (d->fusion) cudaFreeAsync(d->fusion, d->stream);
        d->fusion = nullptr;
        d->fusion_bytes = 0;
        Status s = cuda_status(cudaMallocAsync(&d->fusion, bytes, d->stream),
                               what + ": allocating the " + std::to_string(bytes) +
                                   "-byte fusion buffer");
        if (!s.is_ok()) return fail(d, s);
        d->fusion_bytes = bytes;
      }
      fused = d->fusion;
    } else {
      Status s = cuda_status(cudaMallocAsync(&temporary, bytes, d->stream),
                             what + ": allocating a " + std::to_string(bytes) + "-byte buffer");
      if (!s.is_ok()) return fail(d, s);
      fused = temporary;
    }
  }
  auto* count_slots = job.counted && fused
                          ? reinterpret_cast<float*>(static_cast<char*>(fused) +
                                                     nccl::count_slots_offset(total, wire_bytes))
                          : nullptr;
  Status s;
  const bool unpack = !direct || (average && job.divisor > 1);
  if (n > 0 && (!direct || unpack)) {
    s = cuda_status(cudaMemcpyAsync(d->table, d->staging, sizeof(nccl::PackEntry) * n,
                                    cudaMemcpyHostToDevice, d->stream),
                    what + ": copying the part table");
  }
  if (s.is_ok() && !direct && n > 0) {
    s = cuda_status(nccl::launch_pack(d->table, n, chunks, job.dtype, job.wire, fused, count_slots,
                                      d->stream),
                    what + ": pack kernel");
  }
  if (s.is_ok() && (total > 0 || count_slots)) {
    const void* send = direct ? lone->src : fused;
    ncclGroupStart();
    ncclResult_t r = ncclSuccess;
    if (total > 0) {
      r = ncclAllReduce(send, fused, total, nccl_type(job.wire), nccl_op(job.op), comm, d->stream);
    }
    if ((r == ncclSuccess || r == ncclInProgress) && count_slots) {
      r = ncclAllReduce(count_slots, count_slots, static_cast<size_t>(n), ncclFloat32, ncclSum,
                        comm, d->stream);
    }
    ncclResult_t end = ncclGroupEnd();
    s = nccl_status(r != ncclSuccess && r != ncclInProgress ? r : end, comm,
                    what + ": ncclAllReduce");
    if (s.is_ok()) s = settle(*d, comm, "ncclAllReduce");
  }
  if (s.is_ok() && unpack && total > 0) {
    s = cuda_status(nccl::launch_unpack(d->table, n, chunks, job.dtype, job.wire, fused,
                                        count_slots, average, static_cast<double>(job.divisor),
                                        d->stream),
                    what + ": unpack kernel");
  }
  if (s.is_ok() && count_slots) {
    s = cuda_status(cudaMemcpyAsync(d->host_counts, count_slots, sizeof(float) * n,
                                    cudaMemcpyDeviceToHost, d->stream),
                    what + ": copying the counts back");
  }
  if (temporary) cudaFreeAsync(temporary, d->stream);  // stream-ordered: after every use
  if (s.is_ok()) s = finish(*d, d->done, comm, what);
  if (!s.is_ok()) return fail(d, s);
  if (counts) {
    counts->assign(static_cast<size_t>(n), 0);
    if (count_slots) {
      for (int k = 0; k < n; ++k) (*counts)[k] = static_cast<int64_t>(d->host_counts[k]);
    }
  }
  return part_errors ? Status::ok() : local;
}

Status NcclBackend::allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                              Algorithm algorithm) {
  DeviceAllreduce job;
  job.device = default_device();
  job.dtype = t;
  job.wire = t;
  job.op = op;  // Average travels as Sum and is divided at unpack
  job.divisor = size_;
  job.algorithm = algorithm;
  job.parts.push_back(DevicePart{buf, nullptr, buf, nullptr, count, 1, nullptr, "buffer"});
  return fused_allreduce(job, nullptr, nullptr);
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
  QUORUM_RETURN_IF_ERROR(in_step(what));
  Device* d = nullptr;
  if (Status s = device(ordinal, &d); !s.is_ok()) return fail(nullptr, s);
  ncclComm_t comm = nullptr;
  if (Status s = communicator(*d, Algorithm::kNative, &comm); !s.is_ok()) return fail(d, s);
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
  QUORUM_RETURN_IF_ERROR(in_step(what));
  Device* d = nullptr;
  if (Status s = device(ordinal, &d); !s.is_ok()) return fail(nullptr, s);
  ncclComm_t comm = nullptr;
  if (Status s = communicator(*d, Algorithm::kNative, &comm); !s.is_ok()) return fail(d, s);
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
