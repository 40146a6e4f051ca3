// The engine's allreduce data path: packing into the fusion buffer (with count slots when a
// plan is counted), standing in with zeros for rounds this rank missed, carries of late
// gradients, stored results, folds at flush(), and unpacking.
#include <algorithm>
#include <cstring>

#include "coordinator/reserved_names.h"
#include "ops/kernels.h"
#include "runtime/engine.h"
#include "runtime/fast_vote.h"
#include "runtime/wire_count.h"
#include "runtime/logging.h"

namespace quorum {
void Engine::track_extra_bytes(int64_t delta) {
  int64_t now = extra_bytes_.fetch_add(delta) + delta;
  int64_t peak = extra_peak_.load();
  while (now > peak && !extra_peak_.compare_exchange_weak(peak, now)) {
  }
}

void Engine::add_to_carry(TensorHistory& h, const void* gradient) {
  const DataType wire = ops::wire_dtype(h.dtype);
  std::vector<unsigned char> wide(h.elements * dtype_size(wire));
  if (h.elements) ops::cast(wide.data(), wire, gradient, h.dtype, h.elements);
  if (h.carry.empty()) {
    h.carry = std::move(wide);
    track_extra_bytes(static_cast<int64_t>(h.carry.size()));
  } else if (h.elements) {
    ops::reduce_into(h.carry.data(), wide.data(), h.elements, wire, ReduceOp::kSum);
  }
  h.carry_count++;
}

bool Engine::answer_late(PendingRequest& r) {
  if (r.input.device.kind == Device::Kind::kCuda) return answer_late_device(r);
  auto it = history_.find(r.desc.name);
  if (it == history_.end() || it->second.stored.empty()) return false;
  TensorHistory& h = it->second;
  std::vector<unsigned char> result = std::move(h.stored.front().result);
  const int64_t round_gradients = h.stored.front().gradients;
  h.stored.pop_front();
  track_extra_bytes(-static_cast<int64_t>(result.size()));
  Status status;
  if (r.input.dtype != h.dtype || r.elements != h.elements) {
    status = Status(StatusCode::kMismatch,
                    "tensor '" + r.desc.name + "': a late request (" +
                        std::to_string(r.elements) + " " + std::string(dtype_name(r.input.dtype)) +
                        ") differs from the bounded round it answers (" +
                        std::to_string(h.elements) + " " + std::string(dtype_name(h.dtype)) + ")");
  } else {
    // The gradient joins this rank's next contribution; taken before the output is written,
    // which may be the same memory (an in-place allreduce). A catch-up brings none.
    if (!r.catch_up) add_to_carry(h, r.input.data);
    if (r.elements) std::memcpy(r.output.data, result.data(), result.size());
    late_answered_.fetch_add(1, std::memory_order_relaxed);
  }
  note_behind();
  queue_.finish(r.desc.name);
  (status.is_ok() ? tensors_ : errors_).fetch_add(1, std::memory_order_relaxed);
  r.handle->count = round_gradients;
  r.handle->complete(status);
  return true;
}

void Engine::trace_levels(const coord::Plan& plan, const ops::LevelTimes& t) {
  // Nested inside the plan's collective span; category "level", so the sync-cost breakdown
  // does not count the time twice.
  if (!tl_) return;
  const auto seq = static_cast<int64_t>(plan.seq);
  trace(Lane::kCollective, "level", "intra-host reduce", t.start_ns, t.inter_start_ns,
        {{"plan", seq}, {"level", std::string("intra")}});
  if (t.inter_end_ns > t.inter_start_ns) {
    trace(Lane::kCollective, "level", "inter-host allreduce", t.inter_start_ns, t.inter_end_ns,
          {{"plan", seq}, {"level", std::string("inter")}});
  }
  trace(Lane::kCollective, "level", "intra-host share", t.inter_end_ns, t.end_ns,
        {{"plan", seq}, {"level", std::string("intra")}});
}

Status Engine::plan_allreduce(void* buf, size_t count, DataType wire, ReduceOp op,
                              ops::Algorithm algorithm) {
  Status s = opt_.host_backend->allreduce(buf, count, wire, op, algorithm);
  if (s.is_ok()) by_algorithm_[static_cast<size_t>(algorithm)].fetch_add(1);
  return s;
}

void Engine::pack_part(TensorHistory* h, void* dst, DataType wire, const void* src,
                       DataType dtype, size_t elements) {
  if (!opt_.config.compression_feedback || !h || wire == ops::wire_dtype(dtype)) {
    ops::cast(dst, wire, src, dtype, elements);
    return;
  }
  const DataType acc = ops::wire_dtype(dtype);
  const size_t bytes = elements * dtype_size(acc);
  if (h->residual.size() != bytes) {  // the first round, or the tensor changed size: owe nothing
    track_extra_bytes(static_cast<int64_t>(bytes) - static_cast<int64_t>(h->residual.size()));
    h->residual.assign(bytes, 0);
  }
  ops::cast_with_feedback(dst, wire, src, dtype, h->residual.data(), acc, elements);
}

Status Engine::run_allreduce(const coord::Plan& plan, std::vector<Slot>& slots) {
  const DataType dtype = plan.dtype;
  const bool counted = plan.counted;
  // Compression applies to plain rounds of gradients: a counted one keeps full precision for
  // its counts and the carries that join it, and parameters being averaged stay exact.
  const bool exact = compression_ == DataType::kF32 || counted ||
                     std::any_of(slots.begin(), slots.end(),
                                 [](const Slot& s) { return is_parameter_name(s.name); });
  const DataType wire = exact ? ops::wire_dtype(dtype) : ops::wire_dtype(dtype, compression_);
  const bool compressed = wire != ops::wire_dtype(dtype);
  const size_t esize = dtype_size(wire);
  size_t total = 0;
  for (const Slot& s : slots) total += s.elements;
  // A plain Average divides by the rank count inside the backend (a ring divides only the block
  // each rank completed); a counted one is a Sum here, divided by each part's count below.
  const ReduceOp op = plan.op == ReduceOp::kAverage && counted ? ReduceOp::kSum : plan.op;
  const size_t count_slots = counted ? slots.size() : 0;
  // A voted fast-path entry: its vote is the last element (runtime/fast_vote.h).
  const bool voted = fast_vote_.has_value();
  const size_t n = total + count_slots + (voted ? 1 : 0);

  // A lone tensor already in its wire dtype, in a plain round, is reduced in place in its
  // output: no copy into the fusion buffer (this covers every tensor larger than the threshold).
  // (A voted entry is always copied: if a rank left, its inputs must be as they were.)
  const bool direct = slots.size() == 1 && wire == dtype && !counted && !voted &&
                      !slots[0].missing && slots[0].request;
  std::vector<unsigned char> oversized;
  unsigned char* buf = nullptr;
  if (direct) {
    PendingRequest& e = *slots[0].request;
    buf = static_cast<unsigned char*>(e.output.data);
    if (e.output.data != e.input.data && total > 0) {
      std::memmove(e.output.data, e.input.data, total * esize);
    }
  } else {
    size_t need = n * esize;
    if (need > static_cast<size_t>(opt_.config.fusion_threshold)) {
      oversized.resize(need);
      buf = oversized.data();
    } else {
      if (fusion_.size() < need) fusion_.resize(need);
      buf = fusion_.data();
    }
    int64_t t0 = Timeline::now_ns();
    size_t offset = 0;
    for (size_t k = 0; k < slots.size(); ++k) {
      Slot& s = slots[k];
      unsigned char* dst = buf + offset;
      int64_t count = 0;
      if (s.missing) {
        std::memset(dst, 0, s.elements * esize);  // stands in with zeros
      } else {
        if (s.elements) pack_part(s.history, dst, wire, s.request->input.data, dtype, s.elements);
        count = 1;
        TensorHistory* h = s.history;
        if (counted && h && h->carry_count > 0) {  // late gradients join this contribution
          if (s.elements) ops::reduce_into(dst, h->carry.data(), s.elements, wire, ReduceOp::kSum);
          count += h->carry_count;
          track_extra_bytes(-static_cast<int64_t>(h->carry.size()));
          std::vector<unsigned char>().swap(h->carry);
          h->carry_count = 0;
        }
      }
      if (counted) write_count(buf + total * esize, wire, k, count);
      offset += s.elements * esize;
    }
    if (voted) {
      write_count(buf + (total + count_slots) * esize, wire, 0,
                  static_cast<int64_t>(vote_contribution(plan.op, *fast_vote_, opt_.size)));
    }
    trace(Lane::kCollective, "pack", "pack", t0, Timeline::now_ns(),
          {{"plan", static_cast<int64_t>(plan.seq)}, {"bytes", static_cast<int64_t>(n * esize)},
           {"tensors", static_cast<int64_t>(slots.size())}});
  }

  std::vector<PendingRequest*> requests;
  for (Slot& s : slots) {
    if (s.request) requests.push_back(s.request);
  }
  Status status;
  if (n > 0) {
    auto algorithm = static_cast<ops::Algorithm>(plan.algorithm);
    // MPI has no half arithmetic: a compressed plan that was to run natively runs as a ring.
    if (compressed && algorithm == ops::Algorithm::kNative) algorithm = ops::Algorithm::kRing;
    int64_t t0 = Timeline::now_ns();
    timed(plan, n * esize, requests, [&] { return plan_allreduce(buf, n, wire, op, algorithm); },
          &status);
    const ops::LevelTimes* levels = status.is_ok() ? opt_.host_backend->last_levels() : nullptr;
    if (levels) {
      intra_ns_.fetch_add(levels->intra_ns(), std::memory_order_relaxed);
      inter_ns_.fetch_add(levels->inter_ns(), std::memory_order_relaxed);
      trace_levels(plan, *levels);
    }
    if (status.is_ok() && opt_.on_allreduce_timed) {
      opt_.on_allreduce_timed(algorithm, n * esize,
                              static_cast<double>(Timeline::now_ns() - t0) * 1e-9, levels);
    }
  }
  if (!status.is_ok()) {
    if (voted) fast_vote_error_ = status.message();
    return status;
  }
  if (voted && !vote_all_stayed(plan.op, read_count(buf + (total + count_slots) * esize, wire, 0))) {
    // Nothing unpacked: the round goes to the coordinator, and this was no plan of its own.
    fast_vote_left_ = true;
    by_algorithm_[static_cast<size_t>(plan.algorithm)].fetch_sub(1);
    return Status::ok();
  }

  int64_t t0 = Timeline::now_ns();
  size_t offset = 0;
  for (size_t k = 0; k < slots.size(); ++k) {
    Slot& s = slots[k];
    unsigned char* data = buf + offset;
    int64_t gradients = counted ? static_cast<int64_t>(read_count(buf + total * esize, wire, k))
                                : opt_.size;
    if (plan.op == ReduceOp::kAverage && counted && s.elements && gradients > 0) {
      ops::divide(data, s.elements, wire, static_cast<double>(gradients));
    }
    // Our request arrived after the round was cut: it gets this result, and its gradient (not
    // in the round) goes to the carry, first, since the output may be the input's memory.
    if (s.missing && s.history && s.request && !s.request->catch_up) {
      add_to_carry(*s.history, s.request->input.data);
    }
    if (s.request) {
      if (!direct && s.elements) ops::cast(s.request->output.data, dtype, data, wire, s.elements);
      s.request->handle->count = gradients;
    }
    if (s.missing && s.history && !s.request) {
      // Kept for when our framework asks for this round.
      std::vector<unsigned char> result(s.elements * dtype_size(dtype));
      if (s.elements) ops::cast(result.data(), dtype, data, wire, s.elements);
      track_extra_bytes(static_cast<int64_t>(result.size()));
      s.history->stored.push_back({std::move(result), gradients});
    }
    offset += s.elements * esize;
  }
  note_behind();
  if (!direct) {
    trace(Lane::kCollective, "unpack", "unpack", t0, Timeline::now_ns(),
          {{"plan", static_cast<int64_t>(plan.seq)}, {"bytes", static_cast<int64_t>(n * esize)}});
  }
  return Status::ok();
}

Status Engine::run_fold(const coord::Plan& plan) {
  // One tensor per fold plan: every rank contributes its carry (or zeros) and its count.
  const std::string& name = name_by_id_.at(plan.ids.at(0));
  TensorHistory& h = history_[name];
  const DataType wire = ops::wire_dtype(plan.dtype);
  const size_t esize = dtype_size(wire);
  std::vector<unsigned char> buf((h.elements + 1) * esize, 0);
  if (h.carry_count > 0 && h.elements) std::memcpy(buf.data(), h.carry.data(), h.elements * esize);
  write_count(buf.data() + h.elements * esize, wire, 0, h.carry_count);
  track_extra_bytes(-static_cast<int64_t>(h.carry.size()));
  std::vector<unsigned char>().swap(h.carry);
  h.carry_count = 0;
  Status status;
  timed(plan, buf.size(), {},
        [&] {
          return plan_allreduce(buf.data(), h.elements + 1, wire,
                                plan.op == ReduceOp::kAverage ? ReduceOp::kSum : plan.op,
                                static_cast<ops::Algorithm>(plan.algorithm));
        },
        &status);
  QUORUM_RETURN_IF_ERROR(status);
  auto gradients = static_cast<int64_t>(read_count(buf.data() + h.elements * esize, wire, 0));
  if (plan.op == ReduceOp::kAverage && gradients > 0 && h.elements) {
    ops::divide(buf.data(), h.elements, wire, static_cast<double>(gradients));
  }
  std::vector<unsigned char> out(h.elements * dtype_size(h.dtype));
  if (h.elements) ops::cast(out.data(), h.dtype, buf.data(), wire, h.elements);
  hand_folded(name, Tensor{out.data(), h.dtype, {static_cast<int64_t>(h.elements)}, Device::host()},
              gradients);
  return Status::ok();
}

void Engine::hand_folded(const std::string& name, const Tensor& folded, int64_t gradients) {
  folded_.fetch_add(static_cast<uint64_t>(gradients), std::memory_order_relaxed);
  if (gradients <= 0) return;
  FlushCallback cb;
  {
    std::lock_guard lk(flush_mu_);
    cb = flush_callback_;
  }
  if (!cb) {
    QLOG(kWarn, kEngine) << "tensor '" << name << "': " << gradients
                         << " late gradients folded with no flush callback to apply them";
    return;
  }
  try {
    cb(name, folded, gradients);
  } catch (...) {
    QLOG(kError, kEngine) << "a flush callback threw; the exception was dropped";
  }
}

std::shared_ptr<detail::HandleState> Engine::request_flush(FlushCallback on_folded) {
  auto state = std::make_shared<detail::HandleState>("flush", nullptr);
  {
    std::lock_guard lk(flush_mu_);
    if (exited_) {
      state->complete(Status(StatusCode::kAborted, "flush: quorum's engine has stopped"));
      return state;
    }
    if (flush_handle_) {
      state->complete(Status(StatusCode::kFailedPrecondition, "flush: another flush is running"));
      return state;
    }
    flush_callback_ = std::move(on_folded);
    flush_handle_ = state;
    flush_sent_ = false;
  }
  wake();
  return state;
}

}  // namespace quorum
