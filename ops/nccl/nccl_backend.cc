#include "ops/nccl/nccl_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "ops/mpi_backend.h"
#include "ops/nccl/pack_kernels.h"

namespace quorum::ops {
namespace {

std::string where(int ordinal) { return "cuda:" + std::to_string(ordinal); }

Status cuda_status(cudaError_t err, const std::string& what) {
  if (err == cudaSuccess) return Status::ok();
  return Status(StatusCode::kInternal,
                what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

Status nccl_status(ncclResult_t r, ncclComm_t comm, const std::string& what) {
  if (r == ncclSuccess || r == ncclInProgress) return Status::ok();
  std::string detail = comm ? ncclGetLastError(comm) : "";
  return Status(StatusCode::kInternal, what + ": " + ncclGetErrorString(r) +
                                           (detail.empty() ? "" : " (" + detail + ")"));
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

// Sets NCCL_ALGO for the lifetime of the scope (ring/tree), restoring what was there before.
class PinnedAlgo {
 public:
  explicit PinnedAlgo(Algorithm a) {
    if (a == Algorithm::kNative) return;
    active_ = true;
    if (const char* old = std::getenv("NCCL_ALGO")) old_ = std::string(old);
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

// Polling back-off: a few yields (short collectives end within microseconds), then sleeps
// growing to tens of microseconds, so a long collective costs almost no CPU.
class Backoff {
 public:
  void pause() {
    using namespace std::chrono_literals;
    if (polls_++ < 200) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min<std::chrono::microseconds>(sleep_ * 2, 50us);
  }

 private:
  int polls_ = 0;
  std::chrono::microseconds sleep_{1};
};

}  // namespace

bool device_backend_built() { return true; }

Status create_device_backend(MPI_Comm comm, int local_rank, std::unique_ptr<DeviceBackend>* out) {
  *out = std::make_unique<NcclBackend>(comm, local_rank);
  return Status::ok();
}

NcclBackend::NcclBackend(MPI_Comm comm, int local_rank) : comm_(comm), local_rank_(local_rank) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

NcclBackend::~NcclBackend() {
  const bool broken = !abort_reason().empty();
  for (auto& [ordinal, d] : devices_) {
    cudaSetDevice(ordinal);
    for (ncclComm_t& c : d.comms) {
      if (!c) continue;
      if (broken) {
        ncclCommAbort(c);
      } else {
        // Teardown, off the engine's hot path: a bounded wait for the flush, then destroy.
        ncclResult_t r = ncclCommFinalize(c);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        ncclResult_t state = ncclInProgress;
        while (r == ncclSuccess && std::chrono::steady_clock::now() < deadline &&
               ncclCommGetAsyncError(c, &state) == ncclSuccess && state == ncclInProgress) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        if (r == ncclSuccess && state == ncclSuccess) {
          ncclCommDestroy(c);
        } else {
          ncclCommAbort(c);
        }
      }
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
  return Status::ok();
}

Status NcclBackend::device(int ordinal, Device** out) {
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaSetDevice(ordinal), "selecting " + where(ordinal)));
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
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaSetDevice(d.ordinal), what));
  if (!boot.ok) {
    return mine.is_ok() ? Status(StatusCode::kInternal, what + ": rank 0 could not make an id")
                        : mine;
  }
  ncclComm_t comm = nullptr;
  ncclResult_t state = ncclInProgress;
  {
    PinnedAlgo pin(algorithm);  // kept until the asynchronous initialisation has read it
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm, size_, boot.id, rank_, &config);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_status(r, comm, what);
    Backoff backoff;
    while (ncclCommGetAsyncError(comm, &state) == ncclSuccess && state == ncclInProgress) {
      std::string reason = abort_reason();
      if (!reason.empty()) {
        ncclCommAbort(comm);
        return Status(StatusCode::kAborted, what + " abandoned: " + reason);
      }
      progress();
      cudaSetDevice(d.ordinal);  // the engine may have used another device meanwhile
      backoff.pause();
    }
  }
  if (state != ncclSuccess) {
    Status s = nccl_status(state, comm, what);
    ncclCommAbort(comm);
    return s;
  }
  slot = comm;
  *out = comm;
  return Status::ok();
}

Status NcclBackend::settle(Device& d, ncclComm_t comm, const char* what) {
  ncclResult_t state = ncclInProgress;
  Backoff backoff;
  for (;;) {
    ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) state = r;
    if (state != ncclInProgress) break;
    progress();
    cudaSetDevice(d.ordinal);
    backoff.pause();
  }
  if (state == ncclSuccess) return Status::ok();
  Status s = nccl_status(state, comm, std::string(what) + " on " + where(d.ordinal));
  abort_comms(d);
  return s;
}

Status NcclBackend::finish(Device& d, cudaEvent_t event, ncclComm_t comm,
                           const std::string& what) {
  QUORUM_RETURN_IF_ERROR(cuda_status(cudaEventRecord(event, d.stream), what + " (event record)"));
  Backoff backoff;
  for (;;) {
    cudaError_t e = cudaEventQuery(event);
    if (e == cudaSuccess) return Status::ok();
    if (e != cudaErrorNotReady) return cuda_status(e, what);
    if (comm) {
      ncclResult_t state = ncclSuccess;
      if (ncclCommGetAsyncError(comm, &state) == ncclSuccess && state != ncclSuccess &&
          state != ncclInProgress) {
        Status s = nccl_status(state, comm, what);
        abort_comms(d);
        return s;
      }
    }
    std::string reason = abort_reason();
    if (!reason.empty()) {
      abort_comms(d);
      return Status(StatusCode::kAborted, what + " abandoned: " + reason);
    }
    progress();
    cudaSetDevice(d.ordinal);
    backoff.pause();
  }
}

void NcclBackend::abort_comms(Device& d) {
  for (ncclComm_t& c : d.comms) {
    if (c) ncclCommAbort(c);
    c = nullptr;
  }
}

Status NcclBackend::wait_ready(Device& d, void* ready_event, const std::string& what) {
  if (!ready_event) return Status::ok();
  return cuda_status(cudaStreamWaitEvent(d.stream, static_cast<cudaEvent_t>(ready_event), 0),
                     what + ": waiting for the caller's ready event");
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

Status NcclBackend::fused_allreduce(const DeviceAllreduce& job, std::vector<int64_t>* counts) {
  const std::string what = "allreduce of " + std::to_string(job.parts.size()) + " tensor(s) on " +
                           where(job.device);
  if (!nccl::pack_supported(job.dtype, job.wire)) {
    return Status(StatusCode::kInternal, what + ": no kernel for " +
                                             std::string(dtype_name(job.dtype)) + " over " +
                                             std::string(dtype_name(job.wire)));
  }
  Device* d = nullptr;
  QUORUM_RETURN_IF_ERROR(device(job.device, &d));
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(communicator(*d, job.algorithm, &comm));
  for (const DevicePart& p : job.parts) {
    QUORUM_RETURN_IF_ERROR(wait_ready(*d, p.ready_event, "tensor '" + p.name + "'"));
  }
  const int n = static_cast<int>(job.parts.size());
  const bool average = job.op == ReduceOp::kAverage;
  const DevicePart* lone = n == 1 ? &job.parts[0] : nullptr;
  // A lone tensor already in its wire dtype goes straight from input to output.
  const bool direct = lone && job.wire == job.dtype && !job.counted && lone->input &&
                      !lone->carry && !lone->keep && lone->output;
  QUORUM_RETURN_IF_ERROR(ensure_tables(*d, std::max(n, 1)));
  uint64_t total = 0;
  for (int k = 0; k < n; ++k) {
    const DevicePart& p = job.parts[static_cast<size_t>(k)];
    d->staging[k] = nccl::PackEntry{p.input, p.carry, p.output, p.keep, p.elements, 0, 0,
                                    static_cast<float>(p.count), 0};
  }
  const uint64_t chunks = nccl::lay_out(d->staging, n, &total);
  const size_t wire_bytes = dtype_size(job.wire);
  const size_t bytes = nccl::fused_bytes(total, wire_bytes, static_cast<uint64_t>(n), job.counted);
  void* fused = nullptr;
  void* temporary = nullptr;
  if (direct) {
    fused = lone->output;
  } else if (bytes > 0) {
    if (bytes <= job.keep_buffer_bytes || bytes <= d->fusion_bytes) {
      if (d->fusion_bytes < bytes) {
        if (d->fusion) cudaFreeAsync(d->fusion, d->stream);
        d->fusion = nullptr;
        d->fusion_bytes = 0;
        QUORUM_RETURN_IF_ERROR(cuda_status(cudaMallocAsync(&d->fusion, bytes, d->stream),
                                           what + ": allocating the " + std::to_string(bytes) +
                                               "-byte fusion buffer"));
        d->fusion_bytes = bytes;
      }
      fused = d->fusion;
    } else {
      QUORUM_RETURN_IF_ERROR(cuda_status(cudaMallocAsync(&temporary, bytes, d->stream),
                                         what + ": allocating a " + std::to_string(bytes) +
                                             "-byte buffer"));
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
    const void* send = direct ? lone->input : fused;
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
  if (temporary) cudaFreeAsync(temporary, d->stream);
  // Even after an error the stream is drained, so no kernel still reads buffers we reuse.
  // (An NCCL error has aborted the communicators: only the event is watched then.)
  Status done = finish(*d, d->done, s.is_ok() ? comm : nullptr, what);
  QUORUM_RETURN_IF_ERROR(s);
  QUORUM_RETURN_IF_ERROR(done);
  if (counts) {
    counts->assign(static_cast<size_t>(n), 0);
    if (count_slots) {
      for (int k = 0; k < n; ++k) (*counts)[k] = static_cast<int64_t>(d->host_counts[k]);
    }
  }
  return Status::ok();
}

Status NcclBackend::allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                              Algorithm algorithm) {
  DeviceAllreduce job;
  job.device = default_device();
  job.dtype = t;
  job.wire = t;
  job.op = op == ReduceOp::kAverage ? ReduceOp::kSum : op;
  job.algorithm = algorithm;
  job.parts.push_back(DevicePart{buf, nullptr, buf, nullptr, count, 1, nullptr, "buffer"});
  return fused_allreduce(job, nullptr);
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
  QUORUM_RETURN_IF_ERROR(device(ordinal, &d));
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(communicator(*d, Algorithm::kNative, &comm));
  QUORUM_RETURN_IF_ERROR(wait_ready(*d, ready_event, what));
  if (bytes > 0) {
    QUORUM_RETURN_IF_ERROR(nccl_status(
        ncclBroadcast(buf, buf, bytes, ncclUint8, root, comm, d->stream), comm, what));
    QUORUM_RETURN_IF_ERROR(settle(*d, comm, "ncclBroadcast"));
  }
  return finish(*d, d->done, comm, what);
}

Status NcclBackend::allgather_on(int ordinal, const void* send, void* recv,
                                 const std::vector<size_t>& bytes_per_rank, void* ready_event) {
  const std::string what = "allgather on " + where(ordinal);
  if (bytes_per_rank.size() != static_cast<size_t>(size_)) {
    return Status(StatusCode::kInternal, what + ": sizes for " +
                                             std::to_string(bytes_per_rank.size()) +
                                             " ranks in a job of " + std::to_string(size_));
  }
  Device* d = nullptr;
  QUORUM_RETURN_IF_ERROR(device(ordinal, &d));
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(communicator(*d, Algorithm::kNative, &comm));
  QUORUM_RETURN_IF_ERROR(wait_ready(*d, ready_event, what));
  const bool uniform = std::all_of(bytes_per_rank.begin(), bytes_per_rank.end(),
                                   [&](size_t b) { return b == bytes_per_rank[0]; });
  auto* out = static_cast<char*>(recv);
  ncclResult_t r = ncclSuccess;
  if (uniform) {
    if (bytes_per_rank[0] > 0) {
      r = ncclAllGather(send, recv, bytes_per_rank[0], ncclUint8, comm, d->stream);
    }
  } else {
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
  QUORUM_RETURN_IF_ERROR(nccl_status(r, comm, what));
  QUORUM_RETURN_IF_ERROR(settle(*d, comm, "allgather"));
  return finish(*d, d->done, comm, what);
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
