// The engine's side of the steady-state fast path. The coordinator hands out a schedule (a
// step's allreduce plans, validated repeating) at a moment when it holds nothing announced. A
// rank with nothing announced either takes it; one that has announced something refuses. From
// then on each rank holds its enqueued requests and, whenever the entry at the cursor is
// complete here (or it must leave), joins an agreement: an MPI allreduce (min) of two numbers,
// "entries ready from the cursor" and "staying". Every rank then runs the same entries in the
// same order, or every rank leaves at the same agreement and announces what it holds to the
// coordinator, which validates as always. The agreement is a collective on the data
// communicator, so it sits at the same place in every rank's sequence of collectives.
//
// A small host entry (voted_entry()) needs no agreement of its own: its vote is one more element
// of its own allreduce (runtime/fast_vote.h). A rank whose entry at the cursor is complete joins
// that collective voting to stay; one that must leave joins it with zeros and a leaving vote.
// Every rank reads the same reduced vote: all stayed, and the results are unpacked; or some rank
// left, and every rank drops the result (the inputs were copied, so they are untouched), holds
// the entry's requests again and falls back. One collective per small entry instead of two is
// what a latency-bound step pays for the fast path.
#include <algorithm>
#include <utility>

#include "ops/kernels.h"
#include "runtime/engine.h"
#include "runtime/fast_vote.h"
#include "runtime/wire_count.h"
#include "runtime/logging.h"

namespace quorum {
namespace {

// A rank reports its arrival samples every this many fast steps, each rank at its own offset
// (rank % kSamplesPerReport), so rank 0 reads about size / kSamplesPerReport reports per step
// rather than size reports every kSamplesPerReport-th step.
constexpr size_t kSamplesPerReport = 8;

// Entries up to this many bytes carry their vote: their copy into the fusion buffer costs less
// than an agreement's round trip; above it the agreement is a small share of the collective.
constexpr size_t kVotedEntryBytes = 256 * 1024;

}  // namespace

void Engine::on_schedule(const coord::Schedule& schedule) {
  FastPath f;
  f.version = schedule.version;
  f.reports = schedule.reports;
  schedule_seen_ = schedule.version;
  std::string refuse;
  if (!deferred_.empty()) {
    refuse = "it holds " + std::to_string(deferred_.size()) + " requests for rounds it stands "
             "in for (tensor '" + deferred_.front().desc.name + "'...)";
  } else if (mode_ != coord::SyncMode::kSync) {
    refuse = "it is not in sync mode";
  }
  for (size_t i = 0; i < schedule.entries.size() && refuse.empty(); ++i) {
    const coord::ScheduleEntry& e = schedule.entries[i];
    coord::Plan p;
    p.kind = coord::PlanKind::kAllreduce;
    p.op = e.op;
    p.dtype = e.dtype;
    p.device = e.device;
    p.algorithm = e.algorithm;
    p.ids = e.ids;
    for (uint32_t id : e.ids) {
      const std::string* name = id < name_by_id_.size() ? &name_by_id_[id] : nullptr;
      auto known = name && !name->empty() ? described_.find(*name) : described_.end();
      if (known == described_.end() || known->second.kind != coord::CollectiveKind::kAllreduce) {
        refuse = "tensor id " + std::to_string(id) + " of the schedule is not an allreduce it knows";
        break;
      }
      if (!f.entry_of.emplace(*name, i).second) {
        refuse = "tensor '" + *name + "' appears twice in the schedule";
        break;
      }
    }
    size_t elements = 0;
    for (uint32_t id : e.ids) {
      const auto i = id < name_by_id_.size() ? described_.find(name_by_id_[id]) : described_.end();
      if (i == described_.end()) break;  // refused above
      size_t n = 1;
      for (int64_t d : i->second.shape) n *= static_cast<size_t>(std::max<int64_t>(d, 0));
      elements += n;
    }
    f.voted.push_back(voted_entry(p, elements));
    f.elements.push_back(elements);
    f.entries.push_back(std::move(p));
  }
  if (f.entries.empty() && refuse.empty()) refuse = "the schedule is empty";
  f.cursor = schedule.start < f.entries.size() ? schedule.start : 0;
  if (!refuse.empty()) f.leave = "refused schedule " + std::to_string(f.version) + ": " + refuse;
  if (refuse.empty()) schedules_.fetch_add(1, std::memory_order_relaxed);
  QLOG(kDebug, kEngine) << "schedule " << f.version << " of " << f.entries.size()
                        << " entries from entry " << f.cursor << ", with " << pending_.size()
                        << " requests announced before it"
                        << (refuse.empty() ? ": taken" : ": " + f.leave);
  fast_ = std::move(f);
  // Announced since the coordinator handed this out (it was quiescent then: every request it
  // had was planned in this batch or before), so it plans none of them (Ready::schedule_seen):
  // the schedule takes them, with those drained but not announced (the readiness gate held
  // them). Off the schedule, they go back to the coordinator when every rank leaves it.
  std::vector<PendingRequest> taken = gate_.take_all();
  for (auto& [name, r] : pending_) taken.push_back(std::move(r));
  pending_.clear();
  take_fast(std::move(taken));
  run_fast();
}

void Engine::on_fast_abort(const coord::FastAbort& abort) {
  if (fast_ && fast_->version == abort.version) {
    leave_fast("the coordinator ended schedule " + std::to_string(abort.version) + " (" +
               abort.reason + ")");
    fast_->exit_sent = true;  // it knows
  }
}

void Engine::leave_fast(std::string reason) {
  if (fast_ && fast_->leave.empty()) fast_->leave = std::move(reason);
}

void Engine::take_fast(std::vector<PendingRequest> fresh) {
  FastPath& f = *fast_;
  for (PendingRequest& r : fresh) {
    const std::string& name = r.desc.name;
    auto known = described_.find(name);
    if (poisoned_.count(name)) {
      leave_fast("tensor '" + name + "' has an error waiting for it");
    } else if (!f.entry_of.count(name)) {
      leave_fast("tensor '" + name + "' is not in the schedule");
    } else if (known == described_.end() || !(known->second == r.desc)) {
      leave_fast("tensor '" + name + "' is not described as the schedule's");
    }
    std::string key = name;
    f.held.emplace(std::move(key), std::move(r));
  }
  // A member of an entry past the first incomplete one came first: the order changed (or the
  // framework waits on it first). Given time to sort itself out: order_deadline_ns().
  size_t members = 0;
  const size_t ready = fast_ready_entries(&members);
  if (ready < f.entries.size()) {  // the first incomplete entry's members so far are in order
    for (uint32_t id : f.entries[(f.cursor + ready) % f.entries.size()].ids) {
      members += f.held.count(name_by_id_[id]);
    }
  }
  const bool out_of_order = f.held.size() > members;
  if (!out_of_order) {
    f.out_of_order_since = 0;
  } else if (f.out_of_order_since == 0) {
    f.out_of_order_since = Timeline::now_ns();
  }
  size_t missing = 0;
  if (ready == 0 && !f.entries.empty()) {
    for (uint32_t id : f.entries[f.cursor].ids) missing += f.held.count(name_by_id_[id]) ? 0 : 1;
  }
  queue_.wake_after(out_of_order ? 0 : missing);
}

size_t Engine::fast_ready_entries(size_t* members) const {
  const FastPath& f = *fast_;
  size_t ready = 0, count = 0;
  for (; ready < f.entries.size(); ++ready) {
    const coord::Plan& e = f.entries[(f.cursor + ready) % f.entries.size()];
    const bool complete = std::all_of(e.ids.begin(), e.ids.end(), [&](uint32_t id) {
      return f.held.count(name_by_id_[id]) > 0;
    });
    if (!complete) break;
    count += e.ids.size();
  }
  if (members) *members = count;
  return ready;
}

void Engine::run_fast() {
  std::shared_ptr<Timeline> timeline = opt_.timeline ? opt_.timeline->load() : nullptr;
  tl_ = timeline.get();
  while (fast_) {
    FastPath& f = *fast_;
    size_t ready = f.leave.empty() ? fast_ready_entries(nullptr) : 0;
    if (f.leave.empty() && ready == 0) {
      if (f.out_of_order_since == 0 || Timeline::now_ns() < order_deadline_ns()) break;
      leave_fast("the tensor order changed: a later bucket's tensor came before the rest of "
                 "bucket " + std::to_string(f.cursor) + " of the schedule");
    }
    const bool leaving = !f.leave.empty();
    if (leaving && !f.exit_sent) {
      send_fast_report();
      Status s = opt_.client->send(coord::FastExit{f.version, f.leave});
      if (!s.is_ok() && lost_reason_.empty()) lost_reason_ = s.message();
      f.exit_sent = true;
    }
    if (f.voted[f.cursor]) {
      const size_t at = f.cursor;
      const int64_t entered = Timeline::now_ns();
      agreement_since_ns_ = entered;
      bool stayed = false;
      if (leaving) {
        leave_voted_entry(at);
      } else {
        stayed = run_fast_entry(at, entered);
      }
      const int64_t agreed = Timeline::now_ns();
      agreement_since_ns_ = 0;
      if (fast_entry_failed()) break;  // a peer failed: the run loop fails everything
      // The same span and round numbering as an agreement's, for the sync-cost breakdown.
      trace(Lane::kNegotiation, "agree", "agree", entered, agreed,
            {{"schedule", static_cast<int64_t>(f.version)},
             {"round", static_cast<int64_t>(f.agreements++)},
             {"entries", stayed ? 1 : 0},
             {"cursor", static_cast<int64_t>(at)},
             {"voted", int64_t{1}}});
      if (!stayed) {
        fall_back();
        break;
      }
      if (at == 0) count_fast_step(entered, agreed);
      f.cursor = (at + 1) % f.entries.size();
      continue;
    }
    int64_t vote[2] = {leaving ? 0 : static_cast<int64_t>(ready), leaving ? 0 : 1};
    const int64_t entered = Timeline::now_ns();
    agreement_since_ns_ = entered;
    Status s = opt_.host_backend->allreduce(vote, 2, DataType::kI64, ReduceOp::kMin,
                                            ops::Algorithm::kNative);
    const int64_t agreed = Timeline::now_ns();
    agreement_since_ns_ = 0;
    if (!s.is_ok()) {  // a peer failed: the run loop fails everything, held requests included
      if (broken_.empty()) broken_ = "fast path agreement failed: " + s.message();
      break;
    }
    // `round` numbers the agreement alike on every rank, so a reader of all the ranks' timelines
    // can tell who came last to it (the rank that waited least).
    trace(Lane::kNegotiation, "agree", "agree", entered, agreed,
          {{"schedule", static_cast<int64_t>(f.version)},
           {"round", static_cast<int64_t>(f.agreements++)},
           {"entries", vote[0]},
           {"cursor", static_cast<int64_t>(f.cursor)}});
    if (vote[1] == 0 || vote[0] <= 0) {
      fall_back();
      break;
    }
    if (f.cursor == 0) count_fast_step(entered, agreed);
    bool stayed = true;
    for (int64_t k = 0; k < vote[0] && fast_ && stayed; ++k) {
      // A voted entry among the agreed ones runs with its vote too (every rank stays in it).
      stayed = run_fast_entry(f.cursor, agreed);
      if (stayed) f.cursor = (f.cursor + 1) % f.entries.size();
    }
    if (fast_entry_failed()) break;
    if (!stayed) {  // cannot be, since every rank agreed to run it; back to the coordinator
      fall_back();
      break;
    }
  }
  tl_ = nullptr;
}

bool Engine::fast_entry_failed() {
  if (fast_vote_error_.empty()) return false;
  if (broken_.empty()) broken_ = "fast path entry failed: " + fast_vote_error_;
  fast_vote_error_.clear();
  return true;
}

void Engine::count_fast_step(int64_t entered_ns, int64_t agreed_ns) {
  FastPath& f = *fast_;
  ++f.steps;
  if (f.reports) f.samples.push_back({agreed_ns, agreed_ns - entered_ns});
  if ((f.steps + static_cast<uint64_t>(opt_.rank)) % kSamplesPerReport == 0) send_fast_report();
}

bool Engine::voted_entry(const coord::Plan& entry, size_t elements) const {
  const DataType wire = ops::wire_dtype(entry.dtype);
  // The vote is written and read as a count (exact in f32/f64); compression would feed its
  // rounding back into the next round even when the round is dropped.
  return entry.device == Device::Kind::kHost && compression_ == DataType::kF32 &&
         (wire == DataType::kF32 || wire == DataType::kF64) &&
         elements * dtype_size(wire) <= kVotedEntryBytes;
}

bool Engine::run_fast_entry(size_t index, int64_t agreed_ns) {
  FastPath& f = *fast_;
  coord::Plan plan = f.entries[index];
  plan.seq = fast_plans_.load(std::memory_order_relaxed);
  for (uint32_t id : plan.ids) {
    auto h = f.held.find(name_by_id_[id]);
    std::string name = h->first;
    pending_.emplace(std::move(name), std::move(h->second));
    f.held.erase(h);
  }
  executing_fast_ = true;
  if (f.voted[index]) fast_vote_ = true;
  execute(plan, agreed_ns);
  executing_fast_ = false;
  fast_vote_.reset();
  if (std::exchange(fast_vote_left_, false)) {
    for (uint32_t id : plan.ids) {  // not run: held again, for the coordinator
      auto p = pending_.find(name_by_id_[id]);
      std::string name = p->first;
      f.held.emplace(std::move(name), std::move(p->second));
      pending_.erase(p);
    }
    return false;
  }
  fast_plans_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Engine::leave_voted_entry(size_t index) {
  const coord::Plan& entry = fast_->entries[index];
  QLOG(kDebug, kEngine) << "leaves schedule " << fast_->version << " in voted entry " << index
                        << ": " << fast_->leave;
  const DataType wire = ops::wire_dtype(entry.dtype);
  const size_t n = fast_->elements[index];
  std::vector<unsigned char> buf((n + 1) * dtype_size(wire), 0);
  write_count(buf.data() + n * dtype_size(wire), wire, 0,
              static_cast<int64_t>(vote_contribution(entry.op, false, opt_.size)));
  // Not counted as a plan (Stats): the round itself runs on the coordinator path.
  Status s = opt_.host_backend->allreduce(buf.data(), n + 1, wire, entry.op,
                                          static_cast<ops::Algorithm>(entry.algorithm));
  if (!s.is_ok()) fast_vote_error_ = s.message();
}

void Engine::fall_back() {
  send_fast_report();
  FastPath f = std::move(*fast_);
  fast_.reset();
  fast_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  QLOG(kDebug, kEngine) << "left schedule " << f.version << " after " << f.steps << " fast steps"
                        << (f.leave.empty() ? "" : ": " + f.leave);
  // In the order of the schedule from the cursor, so the coordinator sees them as a framework
  // would send them.
  std::vector<PendingRequest> held;
  for (auto& [name, r] : f.held) held.push_back(std::move(r));
  auto turn = [&](const PendingRequest& r) {
    auto i = f.entry_of.find(r.desc.name);
    if (i == f.entry_of.end()) return SIZE_MAX;
    return (i->second + f.entries.size() - f.cursor) % f.entries.size();
  };
  std::sort(held.begin(), held.end(), [&](const PendingRequest& a, const PendingRequest& b) {
    return turn(a) < turn(b);
  });
  queue_.wake_after(0);
  if (!stop_requested_) {
    announce(std::move(held));
    return;
  }
  for (PendingRequest& r : held) {  // never announced: they never leave this rank
    queue_.finish(r.desc.name);
    errors_.fetch_add(1, std::memory_order_relaxed);
    r.handle->complete(Status(StatusCode::kAborted,
                              "tensor '" + r.desc.name + "': quorum was shut down before it ran"));
  }
}

void Engine::send_fast_report() {
  if (!fast_ || !fast_->reports || fast_->samples.empty()) return;
  FastPath& f = *fast_;
  coord::FastReport report{f.version, f.reported, std::move(f.samples)};
  f.reported += report.samples.size();
  f.samples.clear();
  Status s = opt_.client->send(report);
  if (!s.is_ok() && lost_reason_.empty()) lost_reason_ = s.message();
}

int64_t Engine::fast_patience_ns() const {
  return static_cast<int64_t>(std::clamp(opt_.config.stall_warning_sec / 2, 0.05, 1.0) * 1e9);
}

int64_t Engine::order_deadline_ns() const {
  const FastPath& f = *fast_;
  const bool blocked = std::any_of(f.held.begin(), f.held.end(), [](const auto& h) {
    return h.second.handle->waited.load(std::memory_order_acquire);
  });
  return f.out_of_order_since + (blocked ? cycle_ns() : fast_patience_ns());
}

void Engine::watch_fast_agreement() {
  if (!fast_ || agreement_since_ns_ == 0 || fast_->exit_sent) return;
  // Another rank has not come: its framework is slow, stuck or gone. Past this the round goes
  // back to the coordinator, whose stall inspector and failure detection then see it.
  const int64_t waited = Timeline::now_ns() - agreement_since_ns_;
  if (waited < fast_patience_ns()) return;
  Status s = opt_.client->send(coord::FastExit{
      fast_->version, "waited " + std::to_string(waited / 1'000'000) +
                          " ms in an agreement for the other ranks"});
  if (!s.is_ok() && lost_reason_.empty()) lost_reason_ = s.message();
  fast_->exit_sent = true;
}

}  // namespace quorum
