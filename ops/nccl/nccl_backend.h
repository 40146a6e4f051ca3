// NCCL data plane for CUDA tensors. Per CUDA device it keeps quorum's own non-blocking stream,
// two events, a device fusion buffer and its part table, and up to three communicators: one per
// algorithm. A communicator is created lazily, on the first collective that needs it, from an
// ncclUniqueId rank 0 broadcasts over MPI: every rank reaches that point in the same plan, so
// creation is itself a collective. Ring and tree communicators are created with NCCL_ALGO
// pinned (NCCL reads it while a communicator initialises, on its own thread; the variable is
// restored as soon as the initialisation finished, and no progress hook runs while it is
// pinned); native leaves NCCL's choice alone. Communicators are non-blocking, and completion is
// observed by polling a CUDA event with the progress hook called in between, never by a
// blocking synchronise on the engine thread.
//
// A failure that may leave this rank out of step with its peers (device_backend.h) aborts every
// communicator, drains the stream and is permanent: no communicator is ever created again.
//
// Threads: the engine thread only (construction and destruction from the thread that owns the
// runtime, while the engine is stopped). Each rank must introduce its devices in the same plan
// order (one device per rank, the normal case, always does).
//
// The implementation is split by job: nccl_backend.cc (devices, teardown, local operations),
// nccl_communicator.cc (creating and closing communicators), nccl_polling.cc (waiting for the
// GPU and NCCL, failing for good), nccl_allreduce.cc (the fused allreduce: pack, reduce,
// unpack), nccl_collectives.cc (broadcast and allgather); nccl_common.h holds their helpers.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <unordered_set>

#include "ops/backoff.h"
#include "ops/nccl/device_backend.h"
#include "ops/nccl/pack_layout.h"

namespace quorum::ops {

class NcclBackend final : public DeviceBackend {
 public:
  // Does not take ownership of `comm`; it must outlive the backend. No CUDA call happens here.
  NcclBackend(MPI_Comm comm, int local_rank, std::optional<std::string> user_nccl_algo);
  ~NcclBackend() override;
  NcclBackend(const NcclBackend&) = delete;
  NcclBackend& operator=(const NcclBackend&) = delete;

  std::string_view name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int default_device() override;
  Status probe() override;

  // ops::Backend on the default device: `buf`, `send` and `recv` are device memory there.
  Status allreduce(void* buf, size_t count, DataType t, ReduceOp op,
                   Algorithm algorithm = Algorithm::kNative) override;
  Status broadcast(void* buf, size_t bytes, int root) override;
  Status allgather(const void* send, void* recv,
                   const std::vector<size_t>& bytes_per_rank) override;

  Status fused_allreduce(const DeviceAllreduce& job, std::vector<int64_t>* counts,
                         std::vector<Status>* part_errors) override;
  Status broadcast_on(int device, void* buf, size_t bytes, int root, void* ready_event) override;
  Status allgather_on(int device, const void* send, void* recv,
                      const std::vector<size_t>& bytes_per_rank, void* ready_event) override;
  Status select(int device) override;
  Status allocate(int device, size_t bytes, bool zero, void** out) override;
  void release(int device, void* p) override;
  Status copy(int device, void* dst, const void* src, size_t bytes, void* ready_event) override;
  Status accumulate(int device, void* acc, const void* src, size_t elements, DataType dtype,
                    void* ready_event) override;
  std::string out_of_step() const override { return failed_; }

 private:
  struct Device {
    int ordinal = 0;
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;  // fused collectives
    cudaEvent_t aux = nullptr;   // copy() and accumulate(), which may run inside a collective's wait
    std::array<ncclComm_t, kNumAlgorithms> comms{};
    void* fusion = nullptr;      // device fusion buffer
    size_t fusion_bytes = 0;
    nccl::PackEntry* table = nullptr;    // device copy of the part table
    nccl::PackEntry* staging = nullptr;  // pinned host part table
    size_t table_capacity = 0;           // entries
    float* host_counts = nullptr;        // pinned, reduced counts come back here
    size_t counts_capacity = 0;
    std::unordered_set<void*> held;      // allocate()d and not yet released
  };

  // Longest sleep between polls of a device operation (ops::Backoff).
  static constexpr std::chrono::microseconds kDevicePauseCap{50};

  // The state of `ordinal`, set up on first use (stream, events), with it made current.
  Status device(int ordinal, Device** out);
  // The communicator of `algorithm` on `d`, created collectively on first use.
  Status communicator(Device& d, Algorithm algorithm, ncclComm_t* out);
  // The start of every collective: in_step(), then the device and its communicator (through
  // fail() when either cannot be had).
  Status enter(int ordinal, Algorithm algorithm, const std::string& what, Device** d,
               ncclComm_t* comm);
  // Calls `step` (returning std::optional<Status>: nullopt while the operation being waited for
  // still runs, else how it ended) until it answers, pausing between calls (ops::Backoff). With
  // `hook`, progress() runs before each pause and d's device is made current again after it.
  template <typename Step>
  Status poll(Device& d, bool hook, Step&& step);
  // Waits until `comm` has no operation still being enqueued (non-blocking communicators).
  // Returns early on an NCCL error or an abort reason; the caller fails (fail()).
  Status settle(Device& d, ncclComm_t comm, const std::string& what);
  // Records `event` on d's stream and polls it to completion, calling progress() between polls.
  // With `comm` (a collective) it returns early on an NCCL error or an abort reason, with work
  // still queued: the caller fails (fail()), which aborts and drains. Local work (no `comm`)
  // always runs to completion.
  Status finish(Device& d, cudaEvent_t event, ncclComm_t comm, const std::string& what);
  // Makes d's stream wait for the caller's event; on an error the thread's last CUDA error is
  // cleared, so a later launch is not taken for failed.
  Status wait_ready(Device& d, void* ready_event, const std::string& what);
  Status ensure_tables(Device& d, size_t parts);
  // kAborted saying `what` was abandoned, when the abort check gives a reason.
  std::optional<Status> abandoned(const std::string& what) const;
  // kAborted naming the earlier failure when this rank is out of step, else OK.
  Status in_step(const std::string& what) const;
  // For a failure that may leave this rank out of step (device_backend.h): records `s` as the
  // permanent reason (the first one wins), aborts every communicator, drains d's stream when
  // `d` is given (the aborted NCCL kernels exit), and returns `s`.
  Status fail(Device* d, Status s);
  // Polls until everything queued on d's stream has finished, without the progress hook; only
  // after the communicators are aborted (a live NCCL kernel could wait for its peers forever).
  void drain(Device& d);
  // Aborts every communicator of `d`.
  void abort_comms(Device& d);
  // Teardown: finalises and destroys every communicator of `d` (a bounded wait for the flush),
  // aborting instead when `broken` or when that fails.
  void close_comms(Device& d, bool broken);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  std::optional<std::string> user_nccl_algo_;  // NCCL_ALGO at init, restored after each pin
  int device_count_ = -1;  // -1 until first asked
  std::string failed_;     // out_of_step(): why this rank's collectives stopped for good
  std::map<int, Device> devices_;
};

template <typename Step>
Status NcclBackend::poll(Device& d, bool hook, Step&& step) {
  Backoff backoff(kDevicePauseCap);
  for (;;) {
    if (std::optional<Status> done = step()) return *std::move(done);
    if (hook) {
      progress();
      cudaSetDevice(d.ordinal);  // the engine may have used another device meanwhile
    }
    backoff.pause();
  }
}

}  // namespace quorum::ops
