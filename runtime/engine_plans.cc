// The engine's coordinator path: readiness out (ids for names the coordinator knows, full
// descriptions otherwise, held by the readiness gate for the rest of a fused group), plan batches
// in, each plan executed in sequence order on its backend, handles completed.
#include <algorithm>
#include <optional>
#include <utility>

#include "coordinator/cost_model.h"
#include "ops/kernels.h"
#include "runtime/engine.h"
#include "runtime/logging.h"

namespace quorum {
namespace {

using coord::algorithm_name;
using Clock = std::chrono::steady_clock;

int64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// Two descriptions that differ at most in the first dimension share a coordinator id entry.
bool same_signature(const coord::TensorRequest& a, const coord::TensorRequest& b) {
  if (a.name != b.name || a.kind != b.kind || a.op != b.op || a.dtype != b.dtype ||
      a.device != b.device || a.root != b.root || a.shape.size() != b.shape.size()) {
    return false;
  }
  return a.shape.empty() || std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1);
}

}  // namespace

void Engine::send_readiness() {
  if (fast_) {
    take_fast(drain_requests());
    return;
  }
  std::vector<PendingRequest> fresh = gate_.release(
      drain_requests(), Timeline::now_ns(),
      [this](const std::string& name) -> std::optional<uint32_t> {
        auto it = id_by_name_.find(name);
        return it == id_by_name_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
      },
      [this](uint32_t id) {
        return id < name_by_id_.size() && pending_.count(name_by_id_[id]) > 0;
      },
      /*may_hold=*/mode_ != coord::SyncMode::kBounded);
  queue_.wake_after(gate_.awaited());
  announce(std::move(fresh));
}

void Engine::announce(std::vector<PendingRequest> fresh) {
  // Evictions forgotten since the last message are acknowledged even when nothing is new.
  if (fresh.empty() && evictions_acked_ == evictions_seen_) return;
  coord::Ready ready;
  ready.evictions_seen = evictions_seen_;
  ready.schedule_seen = schedule_seen_;
  evictions_acked_ = evictions_seen_;
  ready.entries.reserve(fresh.size());
  for (PendingRequest& r : fresh) {
    coord::ReadyEntry e;
    e.dim0 = r.desc.shape.empty() ? 1 : r.desc.shape[0];
    auto id = id_by_name_.find(r.desc.name);
    auto known = described_.find(r.desc.name);
    if (id != id_by_name_.end() && known != described_.end() &&
        same_signature(known->second, r.desc)) {
      e.id = id->second;  // steady state: a few bytes instead of the whole description
    } else {
      e.full = r.desc;
    }
    described_[r.desc.name] = r.desc;  // the last description sent (the fast path checks it)
    ready.entries.push_back(std::move(e));
    if (auto poison = poisoned_.find(r.desc.name); poison != poisoned_.end()) {
      Status s = std::move(poison->second);
      poisoned_.erase(poison);
      queue_.finish(r.desc.name);
      errors_.fetch_add(1, std::memory_order_relaxed);
      r.handle->complete(std::move(s));
      continue;
    }
    // The coordinator counts late requests too; this rank answers them itself.
    if (r.desc.kind == coord::CollectiveKind::kAllreduce) {
      if (standing_in_.count(r.desc.name)) {
        deferred_.push_back(std::move(r));
        continue;
      }
      if (answer_late(r)) continue;
    }
    std::string name = r.desc.name;
    pending_.emplace(std::move(name), std::move(r));
  }
  Status s = opt_.client->send(ready);
  if (!s.is_ok() && lost_reason_.empty()) lost_reason_ = s.message();
}

void Engine::trace(Lane lane, const char* cat, std::string name, int64_t start_ns,
                   int64_t end_ns, std::vector<TimelineArg> args) {
  if (!tl_) return;
  tl_->record({'X', 'p', lane, cat, std::move(name), start_ns, end_ns - start_ns, std::move(args)});
}

void Engine::handle_batch(coord::PlanBatch& batch, int64_t received_ns) {
  // Held for the whole batch so a concurrent stop_timeline() cannot free it under us.
  std::shared_ptr<Timeline> timeline = opt_.timeline ? opt_.timeline->load() : nullptr;
  tl_ = timeline.get();
  for (const coord::IdAssignment& a : batch.assignments) {
    if (a.id >= name_by_id_.size()) name_by_id_.resize(a.id + 1);
    name_by_id_[a.id] = a.name;
    id_by_name_[a.name] = a.id;
  }
  for (const coord::Plan& plan : batch.plans) {
    if (plan.seq != next_seq_) {
      QLOG(kError, kEngine) << "plan sequence broken: got " << plan.seq << ", expected "
                            << next_seq_;
      lost_reason_ = "plan sequence broken";
      break;
    }
    ++next_seq_;
    if (fast_ && plan.kind != coord::PlanKind::kError && plan.kind != coord::PlanKind::kFlushDone) {
      // A rank on a schedule has announced nothing the coordinator could plan, and one that
      // refused it agrees on that before reading on: a collective here would break the order.
      QLOG(kError, kEngine) << "plan " << plan.seq << " arrived while on schedule "
                            << fast_->version;
      std::abort();
    }
    execute(plan, received_ns);
  }
  // After the plans that used them: the coordinator no longer keeps these ids.
  for (uint32_t id : batch.evicted) forget_id(id);
  if (!batch.evicted.empty()) gate_.forget_groups();  // an evicted id may come back as another
  evictions_seen_ += batch.evicted.size();
  tl_ = nullptr;
  if (batch.schedule && lost_reason_.empty()) on_schedule(*batch.schedule);
}

void Engine::forget_id(uint32_t id) {
  if (id >= name_by_id_.size() || name_by_id_[id].empty()) return;
  std::string name = std::exchange(name_by_id_[id], std::string());
  if (auto it = id_by_name_.find(name); it != id_by_name_.end() && it->second == id) {
    id_by_name_.erase(it);
  }
  described_.erase(name);
  // Only an idle tensor is evicted, so it has no stored result or carry on either path; both
  // are checked anyway, and nothing is dropped unless both are idle.
  auto h = history_.find(name);
  auto d = device_history_.find(name);
  const bool host_idle =
      h == history_.end() || (h->second.stored.empty() && h->second.carry_count == 0);
  const bool device_idle =
      d == device_history_.end() || (d->second.stored.empty() && d->second.carry_count == 0);
  if (!host_idle || !device_idle) return;
  if (h != history_.end()) history_.erase(h);
  if (d != device_history_.end()) {
    drop_device_carry(d->second);  // frees device memory, if any is held
    device_history_.erase(d);
  }
}

void Engine::execute(const coord::Plan& plan, int64_t received_ns) {
  if (plan.mode != mode_) {
    mode_ = plan.mode;
    const char* name = mode_ == coord::SyncMode::kBounded ? "bounded" : "sync";
    QLOG(kInfo, kEngine) << "sync mode is now " << name
                         << (plan.mode_reason.empty() ? "" : ": " + plan.mode_reason);
    if (tl_) {
      tl_->record({'i', 'p', Lane::kMode, "mode", name, Timeline::now_ns(), 0,
                   {{"reason", plan.mode_reason}}});
    }
  }
  if (plan.mode == coord::SyncMode::kBounded) saw_bounded_ = true;
  bounded_now_ = plan.mode == coord::SyncMode::kBounded;
  if (plan.kind == coord::PlanKind::kFlushDone) {
    std::shared_ptr<detail::HandleState> done;
    {
      std::lock_guard lk(flush_mu_);
      done = std::move(flush_handle_);
      flush_callback_ = nullptr;
    }
    if (done) done->complete(Status(plan.code, plan.message));
    return;
  }
  if (plan.kind == coord::PlanKind::kFold) {
    Status s = plan.device == Device::Kind::kCuda ? run_fold_device(plan) : run_fold(plan);
    if (!s.is_ok()) QLOG(kError, kEngine) << "flush: " << s.message();
    return;
  }
  if (plan.kind == coord::PlanKind::kAllreduce) gate_.learn(plan.ids);
  std::vector<Slot> slots;
  std::vector<PendingRequest*> entries;
  std::vector<std::string> names;
  std::vector<int64_t> last_ranks;  // per entry
  for (size_t k = 0; k < plan.ids.size(); ++k) {
    uint32_t id = plan.ids[k];
    const std::string* name = id < name_by_id_.size() ? &name_by_id_[id] : nullptr;
    auto it = name ? pending_.find(*name) : pending_.end();
    const bool missing =
        k < plan.missing.size() &&
        std::find(plan.missing[k].begin(), plan.missing[k].end(), opt_.rank) != plan.missing[k].end();
    Slot slot;
    if (it == pending_.end()) {
      if (plan.kind == coord::PlanKind::kError) {
        if (name && plan.code == StatusCode::kAborted && plan.message.rfind("stalled:", 0) == 0) {
          poisoned_[*name] = Status(StatusCode::kAborted, plan.message);
        }
        continue;  // not ours: nothing to fail now
      }
      auto h = name ? history_.find(*name) : history_.end();
      if (!missing || h == history_.end()) {
        // Every rank submitted every tensor of a plan (or stands in for one it knows); a gap
        // means a broken protocol, and skipping the collective would hang the other ranks.
        QLOG(kError, kEngine) << "plan " << plan.seq << " names tensor id " << id
                              << " that this rank has not submitted";
        std::abort();
      }
      slot = Slot{*name, nullptr, true, &h->second, h->second.elements};
    } else {
      slot = Slot{it->first, &it->second, missing, nullptr, it->second.elements};
      entries.push_back(&it->second);
      names.push_back(it->first);
      last_ranks.push_back(k < plan.last_ranks.size() ? plan.last_ranks[k] : -1);
    }
    if (plan.kind == coord::PlanKind::kAllreduce &&
        (plan.op == ReduceOp::kSum || plan.op == ReduceOp::kAverage) && !slot.history) {
      TensorHistory& h = history_[slot.name];
      if (h.stored.empty() && h.carry_count == 0) {  // (re)learn the shape while nothing is held
        h.dtype = plan.dtype;
        h.elements = slot.elements;
      }
      slot.history = &h;
    }
    slots.push_back(std::move(slot));
  }
  auto started = Clock::now();
  const int64_t started_ns = Timeline::now_ns();
  for (size_t i = 0; i < entries.size(); ++i) {
    PendingRequest* e = entries[i];
    negotiation_ns_.fetch_add(ns_between(e->enqueued, started), std::memory_order_relaxed);
    if (tl_) {
      int64_t enq = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        e->enqueued.time_since_epoch()).count();
      int64_t last = last_ranks[i];
      trace(Lane::kNegotiation, "negotiate", names[i], enq, received_ns,
            {{"tensor", names[i]},
             {"bytes", static_cast<int64_t>(e->elements * dtype_size(e->input.dtype))},
             {"last_rank", last},
             {"plan", static_cast<int64_t>(plan.seq)},
             {"path", std::string(executing_fast_ ? "fast" : "coordinator")}});
      trace(Lane::kQueue, "queue", names[i], received_ns, started_ns,
            {{"tensor", names[i]}, {"plan", static_cast<int64_t>(plan.seq)}});
    }
  }
  Status status;
  switch (plan.kind) {
    case coord::PlanKind::kError:
      status = Status(plan.code == StatusCode::kOk ? StatusCode::kInternal : plan.code,
                      plan.message);
      break;
    case coord::PlanKind::kAllreduce:
      for (const Slot& s : slots) {
        if (s.missing && !s.request) standing_in_.insert(s.name);
      }
      status = plan.device == Device::Kind::kCuda ? run_allreduce_device(plan, slots)
                                                  : run_allreduce(plan, slots);
      standing_in_.clear();
      // Requests that arrived for the rounds just stood in for now find their results.
      for (PendingRequest& r : std::exchange(deferred_, {})) {
        if (answer_late(r)) continue;
        if (r.catch_up) {  // the round it stood in for failed here: nothing stored to take
          refuse_catch_up(r);
        } else {
          std::string name = r.desc.name;
          pending_.emplace(std::move(name), std::move(r));
        }
      }
      break;
    case coord::PlanKind::kBroadcast:
      status = plan.device == Device::Kind::kCuda ? run_broadcast_device(plan, *entries.at(0))
                                                  : run_broadcast(plan, *entries.at(0));
      break;
    case coord::PlanKind::kAllgather:
      status = plan.device == Device::Kind::kCuda ? run_allgather_device(plan, *entries.at(0))
                                                  : run_allgather(plan, *entries.at(0));
      break;
    case coord::PlanKind::kFold:
    case coord::PlanKind::kFlushDone: break;  // handled above
  }
  if (fast_vote_left_) return;  // a voted entry some rank left: its requests go back to be held
  if (plan.kind != coord::PlanKind::kError) {
    plans_.fetch_add(1, std::memory_order_relaxed);
    if (plan.mode == coord::SyncMode::kBounded) bounded_plans_.fetch_add(1, std::memory_order_relaxed);
    if (status.is_ok() && slots.size() > 1) {
      fused_.fetch_add(entries.size(), std::memory_order_relaxed);
    }
  }
  for (const std::string& name : names) {
    Status s = status.is_ok() || plan.kind == coord::PlanKind::kError
                   ? status
                   : Status(status.code(), "tensor '" + name + "': " + status.message());
    complete(name, s, &plan);
  }
}

void Engine::timed(const coord::Plan& plan, size_t bytes,
                   const std::vector<PendingRequest*>& entries,
                   const std::function<Status()>& collective, Status* status) {
  int64_t t0 = Timeline::now_ns();
  *status = collective();
  int64_t t1 = Timeline::now_ns();
  collective_ns_.fetch_add(t1 - t0, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (!tl_) return;
  std::vector<std::string> tensors;
  for (PendingRequest* e : entries) tensors.push_back(e->desc.name);
  const char* kind = plan.kind == coord::PlanKind::kBroadcast   ? "broadcast"
                     : plan.kind == coord::PlanKind::kAllgather ? "allgather"
                                                                 : "allreduce";
  trace(Lane::kCollective, "collective", kind, t0, t1,
        {{"plan", static_cast<int64_t>(plan.seq)},
         {"bytes", static_cast<int64_t>(bytes)},
         {"ranks", static_cast<int64_t>(opt_.size)},
         {"algorithm", plan.kind == coord::PlanKind::kAllreduce
                           ? std::string(opt_.host_backend->name()) + "-" +
                                 std::string(algorithm_name(static_cast<ops::Algorithm>(plan.algorithm)))
                           : std::string(opt_.host_backend->name()) + "-native"},
         {"tensors", std::move(tensors)}});
}

Status Engine::run_broadcast(const coord::Plan& plan, PendingRequest& e) {
  size_t bytes = e.elements * dtype_size(e.input.dtype);
  Status status;
  if (bytes > 0) {
    timed(plan, bytes, {&e},
          [&] { return opt_.host_backend->broadcast(e.input.data, bytes, plan.root); }, &status);
  }
  return status;
}

Status Engine::run_allgather(const coord::Plan& plan, PendingRequest& e) {
  auto [bytes_per_rank, shape, total] = gather_layout(e.input, plan.dim0_per_rank);
  void* out = nullptr;
  Status local;
  try {
    out = e.allocate(shape);
  } catch (...) {
    out = nullptr;
  }
  // Whatever happens locally, this rank still takes part, or the others would hang.
  std::vector<unsigned char> scratch;
  if (!out && total > 0) {
    local = Status(StatusCode::kInvalidArgument, "the output allocator returned no memory for " +
                                                     std::to_string(total) + " bytes");
    scratch.resize(total);
    out = scratch.data();
  }
  Status status;
  if (total > 0) {
    timed(plan, total, {&e},
          [&] { return opt_.host_backend->allgather(e.input.data, out, bytes_per_rank); },
          &status);
  }
  return status.is_ok() ? local : status;
}

Engine::GatherLayout Engine::gather_layout(const Tensor& input,
                                           const std::vector<int64_t>& dim0_per_rank) {
  GatherLayout g;
  size_t row = dtype_size(input.dtype);
  for (size_t i = 1; i < input.shape.size(); ++i) row *= static_cast<size_t>(input.shape[i]);
  g.shape = input.shape;
  g.shape[0] = 0;
  for (int64_t d : dim0_per_rank) {
    g.bytes_per_rank.push_back(static_cast<size_t>(d) * row);
    g.total += g.bytes_per_rank.back();
    g.shape[0] += d;
  }
  return g;
}

void Engine::complete(const std::string& name, const Status& status, const coord::Plan* plan) {
  auto it = pending_.find(name);
  if (it == pending_.end()) return;
  PendingRequest r = std::move(it->second);
  pending_.erase(it);
  queue_.finish(name);  // before the callback, which may enqueue the same name again
  (status.is_ok() ? tensors_ : errors_).fetch_add(1, std::memory_order_relaxed);
  int64_t t0 = tl_ ? Timeline::now_ns() : 0;
  r.handle->run_callback(status);
  // Recorded before the result is published, so a thread that stops the timeline right after
  // wait() returns still finds this event in the file.
  if (plan) {
    trace(Lane::kCallbacks, "callback", name, t0, tl_ ? Timeline::now_ns() : 0,
          {{"tensor", name},
           {"plan", static_cast<int64_t>(plan->seq)},
           {"status", status.is_ok() ? std::string("ok") : status.message()}});
  }
  r.handle->publish(status);
}

}  // namespace quorum
