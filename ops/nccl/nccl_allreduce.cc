// The fused allreduce on a device: the part table goes to the GPU, one pack launch fills the
// fusion buffer (casting to the wire dtype, adding carries, writing count slots), one
// ncclAllReduce, one unpack launch (dividing for Average, casting back).
#include <algorithm>

#include "ops/nccl/nccl_backend.h"
#include "ops/nccl/nccl_common.h"
#include "ops/nccl/pack_kernels.h"

namespace quorum::ops {
namespace {

using nccl::cuda_status;
using nccl::nccl_op;
using nccl::nccl_status;
using nccl::nccl_type;
using nccl::where;

}  // namespace

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
  Device* d = nullptr;
  ncclComm_t comm = nullptr;
  QUORUM_RETURN_IF_ERROR(enter(job.device, job.algorithm, what, &d, &comm));
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

}  // namespace quorum::ops
