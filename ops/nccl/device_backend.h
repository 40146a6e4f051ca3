// The data plane for CUDA tensors, as the engine sees it: no CUDA or NCCL types here, so the
// engine compiles the same with and without a CUDA build. The NCCL implementation
// (nccl_backend.h) is the only one; a build without NCCL has none (create_device_backend says
// so). Like ops::Backend every collective is called from the engine thread only, in plan order
// on every rank, and returns once its results are in place: it queues work on quorum's own CUDA
// stream and polls for completion, calling the progress hook between polls, so the engine keeps
// negotiating while the GPU works. Device pointers belong to the caller unless stated.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ops/backend.h"
#include "ops/nccl/device_dtypes.h"

namespace quorum::ops {

// One tensor's part of a fused device allreduce.
struct DevicePart {
  const void* input = nullptr;  // tensor dtype; null: contributes zeros (a stand-in)
  const void* carry = nullptr;  // late gradients in the accumulate dtype, added to the input
  void* output = nullptr;       // tensor dtype; null: the result is not wanted here
  void* keep = nullptr;         // a second copy of the result (tensor dtype), or null
  size_t elements = 0;
  int64_t count = 0;            // gradients this rank contributes (its count slot): 1 for the
                                // input, when there is one, plus those in the carry
  void* ready_event = nullptr;  // cudaEvent_t the input waits for, or null (ready now)
  std::string name;             // for error messages
};

struct DeviceAllreduce {
  int device = 0;               // CUDA ordinal every pointer of the job lives on
  DataType dtype = DataType::kF32;
  DataType wire = DataType::kF32;  // what travels: from device_wire_dtype()
  ReduceOp op = ReduceOp::kSum;    // Average travels as Sum and is divided at unpack
  Algorithm algorithm = Algorithm::kNative;
  bool counted = false;         // a count slot per part travels; Average divides by it
  int64_t divisor = 1;          // Average when not counted: the rank count
  size_t keep_buffer_bytes = 0;  // fusion buffers up to this size stay allocated
  std::vector<DevicePart> parts;
};

class DeviceBackend : public Backend {
 public:
  // Returns a reason when collectives must stop (a peer failed), else "". Polled between
  // completion checks; on a reason the communicators are aborted, for good (out_of_step()), and
  // the call fails.
  using AbortCheck = std::function<std::string()>;
  void set_abort_check(AbortCheck check) { abort_check_ = std::move(check); }

  // The CUDA ordinal this rank uses by default (its local rank, modulo the device count).
  virtual int default_device() = 0;
  // OK when this process can use CUDA (a driver and at least one device), else why not.
  virtual Status probe() = 0;

  // Errors of the collectives below come in three kinds:
  //  - the same on every rank (an unsupported dtype pair, sizes for the wrong rank count): no
  //    rank entered NCCL, out_of_step() stays empty;
  //  - a caller's ready event that cannot be waited for: a local error of that tensor alone.
  //    The collective still runs with zeros in its place (and without the gradient it counted);
  //    its output is not written; the error is returned after the collective completed;
  //  - anything else (no device, no memory for a buffer, a failed launch or copy, an NCCL error,
  //    an abort): this rank may have skipped a collective its peers entered, or left one early.
  //    out_of_step() says why from then on, and the caller must end the job (see out_of_step()).
  // In every case nothing is left queued on the GPU when the call returns: no output is written
  // after it.

  // The fused allreduce: one pack launch, the collective, one unpack launch. On OK every
  // output (and keep) holds the result; `counts` (when counted) receives each part's reduced
  // count of gradients; `part_errors` (when not null) receives each part's local error (OK for
  // the parts that went in). Without `part_errors` a local error is the returned status.
  virtual Status fused_allreduce(const DeviceAllreduce& job, std::vector<int64_t>* counts,
                                 std::vector<Status>* part_errors) = 0;

  // Root's `bytes` at `buf` land in every rank's `buf` on `device`. A rank whose ready event
  // cannot be waited for leaves its `buf` alone (a root sends zeros instead) and fails.
  virtual Status broadcast_on(int device, void* buf, size_t bytes, int root,
                              void* ready_event) = 0;
  // Like Backend::allgather, with device memory on `device`. A rank whose ready event cannot be
  // waited for does not read `send`: its slice of `recv` is zeros everywhere, and it fails.
  virtual Status allgather_on(int device, const void* send, void* recv,
                              const std::vector<size_t>& bytes_per_rank, void* ready_event) = 0;

  // Why this rank can no longer run device collectives in step with the other ranks, or ""
  // while it can. Set by a failed collective of the third kind above. Permanent: every
  // communicator is aborted then, and every later collective fails at once with this reason
  // (creating new communicators would be a collective the peers never join). The peers may be
  // waiting inside NCCL, which has no timeout, so the caller must turn this into a job-wide
  // failure they observe (the engine breaks the job and leaves it: engine_device.cc).
  virtual std::string out_of_step() const = 0;

  // Makes `device` the calling thread's current CUDA device, so that a user's output allocator
  // called next allocates there.
  virtual Status select(int device) = 0;

  // Device memory on `device` for stored results and carries, ordered on quorum's stream.
  // zero: the memory reads as zeros. Released by release(); everything left at destruction is
  // freed then.
  virtual Status allocate(int device, size_t bytes, bool zero, void** out) = 0;
  virtual void release(int device, void* p) = 0;
  // Local operations (not collectives), completed on return: dst = src (`bytes`, device to
  // device) and acc += src (acc in the accumulate dtype of `dtype`), each after `ready_event`.
  virtual Status copy(int device, void* dst, const void* src, size_t bytes, void* ready_event) = 0;
  virtual Status accumulate(int device, void* acc, const void* src, size_t elements,
                            DataType dtype, void* ready_event) = 0;

 protected:
  std::string abort_reason() const { return abort_check_ ? abort_check_() : std::string(); }

 private:
  AbortCheck abort_check_;
};

// Whether this build has a device backend (NCCL). Without one, CUDA tensors are rejected.
bool device_backend_built();

// Creates the device backend over `comm`'s ranks (not owned; it must outlive the backend): no
// CUDA call happens until the first CUDA collective, so it is cheap on machines without a GPU.
// `local_rank` picks the default device; `user_nccl_algo` is NCCL_ALGO as the process was
// started (Config::nccl_algo), restored after each ring/tree communicator pins it.
// kUnimplemented in a build without NCCL.
Status create_device_backend(MPI_Comm comm, int local_rank,
                             std::optional<std::string> user_nccl_algo,
                             std::unique_ptr<DeviceBackend>* out);

}  // namespace quorum::ops
