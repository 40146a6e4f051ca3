// The engine's data path for CUDA tensors (plans whose device is CUDA), on the device backend
// (NCCL). It mirrors engine_allreduce.cc: a plan's tensors are packed into a device fusion
// buffer by one kernel launch (casting to the wire dtype, adding carries, writing count slots),
// reduced, and unpacked by one launch (Average divides by the count). Bounded rounds work the
// same way as on the host: a missing slot contributes zeros with count 0; a stood-in round's
// result is kept in device memory until this rank's framework asks for it; late gradients
// accumulate in a device carry that joins the next contribution or a fold at flush().
//
// Every rank reaches these functions for the same plans in the same order, so the collective
// set-up steps inside them (checking every rank can use CUDA, creating communicators) are
// collectives too. One CUDA device per rank: the device of its first device plan (the plan's
// first tensor); a tensor on another device is a local error, and the rank takes part anyway.
//
// Failures. A local failure (a tensor on the wrong device, an unusable ready event, no memory
// for a stored result or a carry) fails that tensor on this rank only: the rank still takes part
// in the collective, with zeros. A failure that keeps it from taking part (no buffer to take part
// with, a failed launch, an NCCL error: ops::DeviceBackend::out_of_step()) would leave the other
// ranks inside NCCL, which has no timeout; the rank breaks the job instead
// (leave_job_if_device_failed()).
#include <cstring>

#include "ops/mpi_backend.h"
#include "ops/nccl/device_backend.h"
#include "runtime/engine.h"
#include "runtime/logging.h"

namespace quorum {
namespace {

std::string device_text(int ordinal) { return "cuda:" + std::to_string(ordinal); }

// A broadcast's or allgather's tensor is not on the device this rank's CUDA plans run on.
Status on_other_device(int tensor_ordinal, int plan_ordinal) {
  return Status(StatusCode::kInvalidArgument,
                "the tensor is on " + device_text(tensor_ordinal) +
                    " but this rank's CUDA plans run on " + device_text(plan_ordinal) +
                    ": quorum uses one CUDA device per rank");
}

}  // namespace

Status Engine::device_ready() {
  if (!opt_.device_backend) {
    return Status(StatusCode::kUnimplemented,
                  "CUDA tensors need the NCCL backend, which this build does not have");
  }
  if (!device_hooked_) {
    // While a late request is answered from inside send_readiness(), no readiness goes out (a
    // nested send would go out of order), but messages are still read: that copy may queue
    // behind a collective in flight, and a PeerFailed is what lets it end if a peer died.
    opt_.device_backend->set_progress_hook([this] {
      if (device_quiet_) {
        receive_plans();
      } else {
        pump();
      }
    });
    opt_.device_backend->set_abort_check(
        [this] { return broken_.empty() ? lost_reason_ : broken_; });
    device_hooked_ = true;
  }
  if (!device_probed_) {
    // Every rank's first CUDA plan is the same plan, so this MPI collective lines up: can every
    // rank use CUDA? If one cannot, all fail the same way (instead of the others waiting for it
    // inside NCCL), now and for every later CUDA plan. (The compression is rank 0's since init.)
    Status mine = opt_.device_backend->probe();
    int32_t ok = mine.is_ok() ? 1 : 0;
    QUORUM_RETURN_IF_ERROR(
        opt_.host_backend->allreduce(&ok, 1, DataType::kI32, ReduceOp::kMin));
    device_probed_ = true;
    if (!ok) {
      device_error_ = mine.is_ok() ? Status(StatusCode::kFailedPrecondition,
                                            "CUDA is not usable on another rank (see its log)")
                                   : mine;
      QLOG(kError, kEngine) << "CUDA tensors cannot run: " << device_error_.message();
    }
  }
  return device_error_;
}

// What breaking the job does, on this rank and the others: broken_ is set now, so this rank's
// device abort check answers it and abandon_waits() makes every MPI wait of the plans still in
// this batch return at once; after the batch the engine thread fails every handle and a pending
// flush with the reason and closes its control connection without a Goodbye. The coordinator
// takes that as this rank failing and sends PeerFailed to every other rank: each breaks too,
// its abort check aborts its NCCL communicators (a collective waiting for this rank returns
// kAborted), and its handles fail. shutdown() then reports the job broken on every rank, as
// after any peer failure.
void Engine::leave_job_if_device_failed(const std::string& why) {
  const std::string reason = why.empty() ? opt_.device_backend->out_of_step() : why;
  if (reason.empty()) return;
  if (broken_.empty()) {
    broken_ = "rank " + std::to_string(opt_.rank) +
              " left the job: its CUDA collectives cannot go on (" + reason + ")";
    QLOG(kError, kEngine) << broken_;
  }
  ops::abandon_waits(broken_);
}

int Engine::plan_device(int wanted) {
  // A second device would need communicators of its own, created by a collective that the other
  // ranks (whose plans run on the device they already have) never join.
  if (device_ordinal_ < 0) device_ordinal_ = wanted;
  return device_ordinal_;
}

Status Engine::add_to_device_carry(DeviceHistory& h, const void* gradient, void* ready_event) {
  const size_t bytes = h.elements * dtype_size(ops::device_accumulate_dtype(h.dtype));
  if (!h.carry) {
    QUORUM_RETURN_IF_ERROR(opt_.device_backend->allocate(h.device, bytes, true, &h.carry));
    track_extra_bytes(static_cast<int64_t>(bytes));
  }
  if (h.elements) {
    QUORUM_RETURN_IF_ERROR(opt_.device_backend->accumulate(h.device, h.carry, gradient,
                                                           h.elements, h.dtype, ready_event));
  }
  h.carry_count++;
  return Status::ok();
}

void Engine::drop_device_carry(DeviceHistory& h) {
  if (!h.carry) return;
  opt_.device_backend->release(h.device, h.carry);
  track_extra_bytes(
      -static_cast<int64_t>(h.elements * dtype_size(ops::device_accumulate_dtype(h.dtype))));
  h.carry = nullptr;
  h.carry_count = 0;
}

Status Engine::run_allreduce_device(const coord::Plan& plan, std::vector<Slot>& slots) {
  QUORUM_RETURN_IF_ERROR(device_ready());
  ops::DeviceBackend& dev = *opt_.device_backend;
  const DataType dtype = plan.dtype;
  const bool counted = plan.counted;
  int ordinal = device_ordinal_;
  for (const Slot& s : slots) {
    if (ordinal < 0 && s.request) ordinal = s.request->input.device.ordinal;
  }
  for (size_t k = 0; k < slots.size() && ordinal < 0; ++k) {
    if (auto h = device_history_.find(slots[k].name); h != device_history_.end()) {
      ordinal = h->second.device;
    }
  }
  ordinal = plan_device(ordinal < 0 ? dev.default_device() : ordinal);

  ops::DeviceAllreduce job;
  job.device = ordinal;
  job.dtype = dtype;
  job.wire = ops::device_wire_dtype_for(dtype, compression_);
  job.op = plan.op;
  job.algorithm = static_cast<ops::Algorithm>(plan.algorithm);
  job.counted = counted;
  job.divisor = opt_.size;
  job.keep_buffer_bytes = static_cast<size_t>(opt_.config.fusion_threshold);
  job.parts.resize(slots.size());
  const size_t result_bytes_per_elem = dtype_size(dtype);
  Status local;  // a failure on this rank alone: it still takes part, with zeros
  std::vector<DeviceHistory*> histories(slots.size(), nullptr);
  std::vector<DeviceHistory*> carried;  // carries that join this round
  std::vector<PendingRequest*> requests;
  for (size_t k = 0; k < slots.size(); ++k) {
    Slot& s = slots[k];
    ops::DevicePart& p = job.parts[k];
    p.name = s.name;
    p.elements = s.elements;
    DeviceHistory* h = nullptr;
    if (s.history) {
      h = &device_history_[s.name];
      if (h->stored.empty() && h->carry_count == 0) {  // (re)learn while nothing is held
        h->device = ordinal;
        h->dtype = dtype;
        h->elements = s.elements;
      }
      histories[k] = h;
    }
    PendingRequest* r = s.request;
    bool usable = true;
    if (r) {
      requests.push_back(r);
      if (r->input.device.ordinal != ordinal || r->output.device.ordinal != ordinal) {
        usable = false;
        if (local.is_ok()) {
          local = Status(StatusCode::kInvalidArgument,
                         "tensor '" + s.name + "' is on " +
                             device_text(r->input.device.ordinal) + " (output " +
                             device_text(r->output.device.ordinal) + ") but its plan runs on " +
                             device_text(ordinal) + ": quorum uses one CUDA device per rank");
        }
      }
    }
    if (r && usable) p.output = r->output.data;
    if (s.missing || !usable) {
      p.count = 0;  // stands in with zeros
      if (s.missing && r && h && usable) {
        // Our request came after the round was cut: its gradient is not in the round and goes
        // to the carry, before the unpack may overwrite it (input and output may be one buffer).
        Status c = add_to_device_carry(*h, r->input.data, r->input.cuda_ready_event);
        if (!c.is_ok() && local.is_ok()) local = c;
      }
    } else {
      p.input = r->input.data;
      p.ready_event = r->input.cuda_ready_event;
      p.count = 1;
      if (counted && h && h->carry_count > 0) {  // late gradients join this contribution
        p.carry = h->carry;
        p.count += h->carry_count;
        carried.push_back(h);
      }
    }
    if (s.missing && !r && h) {
      // Kept for when our framework asks for this round.
      Status a = dev.allocate(ordinal, s.elements * result_bytes_per_elem, false, &p.keep);
      if (!a.is_ok()) {
        p.keep = nullptr;
        if (local.is_ok()) local = a;
      }
    }
  }

  std::vector<int64_t> counts;
  std::vector<Status> part_errors;  // a caller's ready event that could not be waited for
  Status status;
  const size_t wire_bytes = [&] {
    size_t total = 0;
    for (const Slot& s : slots) total += s.elements;
    return total * dtype_size(job.wire);
  }();
  timed(plan, wire_bytes, requests,
        [&] { return dev.fused_allreduce(job, &counts, &part_errors); }, &status);
  if (!status.is_ok()) leave_job_if_device_failed();
  for (DeviceHistory* h : carried) drop_device_carry(*h);

  for (size_t k = 0; k < slots.size(); ++k) {
    Slot& s = slots[k];
    const int64_t gradients = counted && k < counts.size() ? counts[k] : opt_.size;
    if (s.request) s.request->handle->count = gradients;
    DeviceHistory* h = histories[k];
    if (s.missing && !s.request && h) {
      void* kept = job.parts[k].keep;
      Status why = status.is_ok() ? (kept ? Status::ok() : local) : status;
      if (!why.is_ok() && kept) {
        dev.release(ordinal, kept);
        kept = nullptr;
      }
      if (kept) track_extra_bytes(static_cast<int64_t>(s.elements * result_bytes_per_elem));
      // Even a failed round is stored, so the late request fails with its reason, not hangs.
      h->stored.push_back({kept, gradients, why});
    }
  }
  note_behind();
  QUORUM_RETURN_IF_ERROR(status);
  // A part whose ready event failed fails alone; the plan's other tensors have their results.
  // (complete() takes the request out of pending_, so this comes after every use of it above.)
  for (size_t k = 0; k < slots.size() && local.is_ok(); ++k) {
    if (k < part_errors.size() && !part_errors[k].is_ok() && slots[k].request) {
      const Status& e = part_errors[k];
      complete(slots[k].name, Status(e.code(), "tensor '" + slots[k].name + "': " + e.message()),
               &plan);
      slots[k].request = nullptr;
    }
  }
  return local;
}

bool Engine::answer_late_device(PendingRequest& r) {
  auto it = device_history_.find(r.desc.name);
  if (it == device_history_.end() || it->second.stored.empty()) return false;
  DeviceHistory& h = it->second;
  DeviceHistory::Stored stored = std::move(h.stored.front());
  h.stored.pop_front();
  const size_t bytes = h.elements * dtype_size(h.dtype);
  if (stored.result) track_extra_bytes(-static_cast<int64_t>(bytes));
  Status status = stored.error;
  if (status.is_ok() && (r.input.dtype != h.dtype || r.elements != h.elements ||
                         r.input.device.ordinal != h.device ||
                         r.output.device.ordinal != h.device)) {
    status = Status(StatusCode::kMismatch,
                    "tensor '" + r.desc.name + "': a late request (" + std::to_string(r.elements) +
                        " " + std::string(dtype_name(r.input.dtype)) + " on " +
                        device_text(r.input.device.ordinal) +
                        ") differs from the bounded round it answers (" +
                        std::to_string(h.elements) + " " + std::string(dtype_name(h.dtype)) +
                        " on " + device_text(h.device) + ")");
  }
  if (status.is_ok() && !opt_.device_backend) {
    status = Status(StatusCode::kInternal, "tensor '" + r.desc.name + "': no device backend");
  }
  if (status.is_ok()) {
    device_quiet_ = true;
    // The gradient goes to the carry first: the output may be the input's own memory.
    if (!r.catch_up) status = add_to_device_carry(h, r.input.data, r.input.cuda_ready_event);
    if (status.is_ok() && bytes > 0) {
      status = opt_.device_backend->copy(h.device, r.output.data, stored.result, bytes, nullptr);
    }
    device_quiet_ = false;
    if (!status.is_ok()) {
      status = Status(status.code(), "tensor '" + r.desc.name + "': " + status.message());
    } else {
      late_answered_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (stored.result) opt_.device_backend->release(h.device, stored.result);
  note_behind();
  queue_.finish(r.desc.name);
  (status.is_ok() ? tensors_ : errors_).fetch_add(1, std::memory_order_relaxed);
  r.handle->count = stored.gradients;
  r.handle->complete(status);
  return true;
}

Status Engine::run_fold_device(const coord::Plan& plan) {
  QUORUM_RETURN_IF_ERROR(device_ready());
  ops::DeviceBackend& dev = *opt_.device_backend;
  const std::string& name = name_by_id_.at(plan.ids.at(0));
  // Every rank takes part, with its carry or with zeros; a rank that never held the tensor on
  // a device learns its size from the host bookkeeping.
  auto [it, fresh] = device_history_.try_emplace(name);
  DeviceHistory& h = it->second;
  if (fresh) h.device = plan_device(dev.default_device());
  if (h.stored.empty() && h.carry_count == 0) {
    h.dtype = plan.dtype;
    h.elements = history_[name].elements;
  }
  ops::DeviceAllreduce job;
  job.device = h.device;
  job.dtype = plan.dtype;
  job.wire = ops::device_wire_dtype_for(plan.dtype, compression_);
  job.op = plan.op;
  job.algorithm = static_cast<ops::Algorithm>(plan.algorithm);
  job.counted = true;
  job.keep_buffer_bytes = static_cast<size_t>(opt_.config.fusion_threshold);
  ops::DevicePart part;
  part.name = name;
  part.elements = h.elements;
  part.carry = h.carry_count > 0 ? h.carry : nullptr;
  part.count = h.carry_count;
  void* out = nullptr;
  Status local = dev.allocate(h.device, h.elements * dtype_size(plan.dtype), false, &out);
  part.output = out;
  job.parts.push_back(part);
  std::vector<int64_t> counts;
  Status status;
  timed(plan, h.elements * dtype_size(job.wire), {},
        [&] { return dev.fused_allreduce(job, &counts, nullptr); }, &status);
  if (!status.is_ok()) leave_job_if_device_failed();
  drop_device_carry(h);
  const int64_t gradients = status.is_ok() && !counts.empty() ? counts[0] : 0;
  if (status.is_ok() && local.is_ok()) {
    // `out` goes back to the pool, stream-ordered on quorum's stream, as soon as the callback
    // returns: work the callback queued on a stream of its own is not ordered before that, so
    // the callback must have finished reading (or synchronised) by then (quorum.h, flush()).
    hand_folded(name,
                Tensor{out, plan.dtype, {static_cast<int64_t>(h.elements)}, Device::cuda(h.device)},
                gradients);
  }
  dev.release(h.device, out);
  QUORUM_RETURN_IF_ERROR(status);
  return local.is_ok() ? Status::ok()
                       : Status(local.code(), "tensor '" + name + "': " + local.message());
}

Status Engine::run_broadcast_device(const coord::Plan& plan, PendingRequest& e) {
  QUORUM_RETURN_IF_ERROR(device_ready());
  ops::DeviceBackend& dev = *opt_.device_backend;
  const size_t bytes = e.elements * dtype_size(e.input.dtype);
  if (bytes == 0) return Status::ok();
  const int ordinal = plan_device(e.input.device.ordinal);
  void* buf = e.input.data;
  void* ready = e.input.cuda_ready_event;
  // A tensor on another device still takes part, through zeroed scratch memory on this rank's
  // device (zeros go out from a root), and fails afterwards.
  Status local;
  void* scratch = nullptr;
  if (e.input.device.ordinal != ordinal) {
    local = on_other_device(e.input.device.ordinal, ordinal);
    Status a = dev.allocate(ordinal, bytes, true, &scratch);
    if (!a.is_ok()) {
      leave_job_if_device_failed("no scratch memory to take part in a broadcast: " + a.message());
      return a;
    }
    buf = scratch;
    ready = nullptr;
  }
  Status status;
  timed(plan, bytes, {&e},
        [&] { return dev.broadcast_on(ordinal, buf, bytes, plan.root, ready); }, &status);
  if (!status.is_ok()) leave_job_if_device_failed();
  if (scratch) dev.release(ordinal, scratch);
  return status.is_ok() ? local : status;
}

Status Engine::run_allgather_device(const coord::Plan& plan, PendingRequest& e) {
  QUORUM_RETURN_IF_ERROR(device_ready());
  ops::DeviceBackend& dev = *opt_.device_backend;
  const int ordinal = plan_device(e.input.device.ordinal);
  const bool usable = e.input.device.ordinal == ordinal;
  auto [bytes_per_rank, shape, total] = gather_layout(e.input, plan.dim0_per_rank);
  // Whatever happens locally, this rank still takes part, or the others would hang: a tensor on
  // another device sends zeros, and an output that is missing (or on the wrong device) is
  // replaced by scratch memory on this rank's device.
  Status local;
  void* out = nullptr;
  if (usable) {
    // The allocator's contract: device memory on the input's device, which is made current
    // first (the engine thread may have used another device last).
    local = dev.select(ordinal);
    if (local.is_ok()) {
      try {
        out = e.allocate(shape);
      } catch (...) {
        out = nullptr;
      }
    }
    if (local.is_ok() && !out && total > 0) {
      local = Status(StatusCode::kInvalidArgument, "the output allocator returned no memory for " +
                                                       std::to_string(total) + " bytes");
    }
  } else {
    local = on_other_device(e.input.device.ordinal, ordinal);
  }
  if (total == 0) return local;
  const void* send = e.input.data;
  void* ready = e.input.cuda_ready_event;
  void* send_scratch = nullptr;
  void* out_scratch = nullptr;
  Status a;
  if (!usable) {
    const size_t mine = bytes_per_rank.at(static_cast<size_t>(opt_.rank));
    a = dev.allocate(ordinal, mine, true, &send_scratch);
    send = send_scratch;
    ready = nullptr;
  }
  if (a.is_ok() && !out) {
    a = dev.allocate(ordinal, total, false, &out_scratch);
    out = out_scratch;
  }
  Status status;
  if (a.is_ok()) {
    timed(plan, total, {&e},
          [&] { return dev.allgather_on(ordinal, send, out, bytes_per_rank, ready); }, &status);
    if (!status.is_ok()) leave_job_if_device_failed();
  } else {
    leave_job_if_device_failed("no scratch memory to take part in an allgather: " + a.message());
    status = a;
  }
  if (send_scratch) dev.release(ordinal, send_scratch);
  if (out_scratch) dev.release(ordinal, out_scratch);
  return status.is_ok() ? local : status;
}

}  // namespace quorum
