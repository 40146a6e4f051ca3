// The coordinator's rounds: readiness in and validated, bounded rounds completed, the sync
// policy and the cost model fed, plan batches out (flush). Ids: coordinator_ids.cc; members:
// coordinator_lifecycle.cc; the fast path: coordinator_fast.cc.
#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <unordered_set>

#include "coordinator/fusion_planner.h"
#include "coordinator/reserved_names.h"

namespace quorum::coord {

CoordinatorService::CoordinatorService(ServiceOptions options)
    : options_(options),
      known_(static_cast<size_t>(options.size)),
      table_(options.size),
      learner_(std::min(options.bucket_bytes, options.fusion_threshold), options.fusion_max_tensor),
      model_(options.model),
      policy_(options.policy),
      flush_requested_(static_cast<size_t>(options.size), false),
      departed_(static_cast<size_t>(options.size), false),
      last_heard_(static_cast<size_t>(options.size)),
      evictions_seen_(static_cast<size_t>(options.size), 0),
      evict_events_(std::max<size_t>(options.cache_capacity / 8, 1)) {}  // the first scan is due

CoordinatorService::TensorState& CoordinatorService::state(uint32_t id) {
  auto [it, inserted] = tensors_.try_emplace(id);
  if (inserted) {
    it->second.submitted.assign(static_cast<size_t>(options_.size), 0);
    it->second.carry.assign(static_cast<size_t>(options_.size), 0);
    it->second.carry_from.assign(static_cast<size_t>(options_.size), 0);
    it->second.skip.assign(static_cast<size_t>(options_.size), 0);
  }
  return it->second;
}

void CoordinatorService::fail_id(uint32_t id, StatusCode code, const std::string& message) {
  Plan p;
  p.kind = PlanKind::kError;
  p.code = code;
  p.ids = {id};
  p.message = message;
  pending_plans_.push_back(std::move(p));
}

std::vector<Outgoing> CoordinatorService::on_ready(int rank, const Ready& ready,
                                                   Clock::time_point now) {
  // Sent before the rank took the latest schedule, which took these requests over: only their
  // descriptions count (see Ready::schedule_seen).
  const bool stale = ready.schedule_seen < schedule_version_;
  // Ranks on a schedule announce nothing: this one has left it (or never took it).
  if (live_ && !stale && !ready.entries.empty()) {
    end_schedule("rank " + std::to_string(rank) + " announced tensors to the coordinator");
  }
  auto& known = known_[static_cast<size_t>(rank)];
  for (const ReadyEntry& e : ready.entries) {
    uint32_t id = 0;
    const TensorRequest* request = nullptr;
    if (e.full) {
      id = id_for(e.full->name);
      request = &(known[id] = *e.full);
    } else {
      auto it = known.find(e.id);
      if (it == known.end()) {
        // A peer that names an id it never described is broken; answer if we can name it.
        if (e.id < names_.size()) {
          fail_id(e.id, StatusCode::kInternal,
                  "tensor '" + names_[e.id] + "': rank " + std::to_string(rank) +
                      " referred to it by id without ever describing it");
        }
        continue;
      }
      id = e.id;
      request = &it->second;
      // An evicted id, sent before this rank saw the eviction (it has not acknowledged every
      // eviction yet, and its name no longer maps to this id): the name gets an id again, which
      // every rank learns with the next batch.
      if (evictions_seen_[static_cast<size_t>(rank)] < evictions_) {
        auto live = ids_by_name_.find(it->second.name);
        if (live == ids_by_name_.end() || live->second != e.id) {
          TensorRequest described = it->second;
          id = id_for(described.name);
          request = &(known[id] = std::move(described));
        }
      }
    }
    if (stale) continue;
    if (!departure_.empty()) {
      fail_id(id, StatusCode::kAborted, "tensor '" + request->name + "': " + departure_);
      continue;
    }
    TensorState& ts = state(id);
    ts.last_use = ++use_clock_;
    if (ts.skip[static_cast<size_t>(rank)] > 0) {
      // The request for a round the stall inspector aborted: its engine has failed it already.
      ts.skip[static_cast<size_t>(rank)]--;
      continue;
    }
    uint64_t round = ts.submitted[static_cast<size_t>(rank)]++;
    if (pilot_ && *pilot_ == id) note_pilot_arrival(id, round, rank, now);
    if (round < ts.rounds_run) {
      // A late request for a bounded round that already ran without this rank: its engine
      // answers it from the stored result, and its gradient now waits in the rank's carry.
      if (ts.carry[static_cast<size_t>(rank)]++ == 0) ts.carry_from[static_cast<size_t>(rank)] = round;
      continue;
    }
    if (auto outcome = table_.submit(rank, id, *request, e.dim0, now)) {
      round_done(std::move(*outcome));
    }
  }
  // Entries were built after the rank forgot what it acknowledges, so this comes last.
  acknowledge_evictions(rank, ready.evictions_seen);
  complete_bounded(now);
  return flush(now, false);
}

void CoordinatorService::round_done(RoundOutcome outcome) {
  TensorState& ts = state(outcome.id);
  ts.rounds_run++;
  ++evict_events_;
  if (!outcome.ready) {
    fail_id(outcome.id, StatusCode::kMismatch, outcome.error);
    return;
  }
  ReadyTensor& t = *outcome.ready;
  // Present ranks contribute their carries now: counts must travel with the data whenever a
  // rank is missing or a carry joins.
  bool counted = !t.missing.empty();
  for (size_t r = 0; r < ts.carry.size(); ++r) {
    bool missing = std::find(t.missing.begin(), t.missing.end(), static_cast<int32_t>(r)) !=
                   t.missing.end();
    if (!missing && ts.carry[r] > 0) {
      counted = true;
      ts.carry[r] = 0;
    }
  }
  t.counted = counted;
  const TensorRequest& req = t.request;
  if (req.kind == CollectiveKind::kAllreduce &&
      (req.op == ReduceOp::kSum || req.op == ReduceOp::kAverage) &&
      !is_parameter_name(names_[t.id])) {  // parameter averaging is always synchronous
    ts.boundable = true;
    if (!pilot_) pilot_ = t.id;
  }
  ts.request = req;
  if (req.kind == CollectiveKind::kAllreduce) learner_.observe_ready(t);
  held_.push_back(std::move(t));
}

void CoordinatorService::complete_bounded(Clock::time_point now) {
  quorum_deadline_.reset();
  if (policy_.mode() != SyncMode::kBounded) return;
  const int q = std::clamp(options_.policy.quorum, 1, options_.size);
  for (uint32_t id : table_.open_ids()) {
    TensorState& ts = state(id);
    const TensorRequest* first = table_.first_request(id);
    if (!ts.boundable || !first || first->kind != CollectiveKind::kAllreduce ||
        (first->op != ReduceOp::kSum && first->op != ReduceOp::kAverage)) {
      continue;  // other ops, broadcast, allgather and first rounds always run sync
    }
    std::vector<int> present = table_.present(id);
    if (static_cast<int>(present.size()) < q) continue;
    // A short grace after the quorum arrived: a rank only just behind still makes it.
    Clock::time_point grace_end = *table_.nth_arrival(id, q) + options_.cycle_time;
    if (now < grace_end) {
      if (!quorum_deadline_ || grace_end < *quorum_deadline_) quorum_deadline_ = grace_end;
      continue;
    }
    // Running round k without rank r is allowed only if r's framework stays within s rounds
    // (k + 1 - submitted <= s) and r's oldest late gradient, applied at k + 1 at the earliest,
    // stays within s of its own round (k + 1 - carry_from <= s).
    const uint64_t k = ts.rounds_run;
    const auto s = static_cast<uint64_t>(options_.staleness);
    int blocked = -1;
    for (int r = 0; r < options_.size && blocked < 0; ++r) {
      const auto ur = static_cast<size_t>(r);
      bool is_present = std::find(present.begin(), present.end(), r) != present.end();
      if (is_present) continue;
      if (k + 1 - ts.submitted[ur] > s || (ts.carry[ur] > 0 && k + 1 - ts.carry_from[ur] > s)) {
        blocked = r;
      }
    }
    if (blocked >= 0) {  // running now would leave `blocked` more than s rounds behind: wait
      if (pilot_ && *pilot_ == id && ts.stale_wait_round != ts.rounds_run) {
        policy_.observe_staleness_wait(blocked);
        ts.stale_wait_round = ts.rounds_run;
      }
      continue;
    }
    if (auto outcome = table_.complete_partial(id, now)) round_done(std::move(*outcome));
  }
}

void CoordinatorService::note_pilot_arrival(uint32_t id, uint64_t round, int rank,
                                            Clock::time_point now) {
  (void)id;
  auto& times = pilot_arrivals_[round];
  if (times.empty()) times.resize(static_cast<size_t>(options_.size));
  times[static_cast<size_t>(rank)] = now;
  if (std::all_of(times.begin(), times.end(), [](auto& t) { return t.has_value(); })) {
    std::vector<Clock::time_point> arrivals;
    for (auto& t : times) arrivals.push_back(*t);
    pilot_arrivals_.erase(round);
    policy_.observe_round(arrivals);
    decide_mode();
  }
  // Rounds some rank never completes (it left) must not pile up.
  while (pilot_arrivals_.size() > 4 * static_cast<size_t>(options_.policy.window) + 8) {
    pilot_arrivals_.erase(pilot_arrivals_.begin());
  }
}

void CoordinatorService::decide_mode() {
  std::optional<ModeSwitch> sw = policy_.decide();
  if (!sw) return;
  mode_reason_ = sw->reason;
  const std::string mode = sw->mode == SyncMode::kBounded ? "bounded" : "sync";
  if (options_.log) options_.log("sync policy: switching to " + mode + ": " + sw->reason);
  end_schedule("the sync policy switched to " + mode);  // bounded rounds need the coordinator
}

void CoordinatorService::observe(Algorithm algorithm, size_t bytes, double seconds,
                                 double intra_seconds, double inter_seconds) {
  model_.observe(algorithm, bytes, options_.size, seconds);
  if (algorithm == Algorithm::kHierarchical) {
    model_.observe_levels(bytes, intra_seconds, inter_seconds);
  }
  if (!options_.adapt_buckets) return;
  // The size follows the algorithm a bucket of the current size would run: the pinned one, or
  // the fastest fitted one. (Following whichever algorithm was timed last swung it between 64 KiB
  // and 4 MiB within one ResNet-50 run: ring, tree and native fit differently.)
  const size_t current = learner_.bucket_bytes();
  std::optional<Algorithm> basis = options_.algorithm;
  if (!basis) {
    double fastest = std::numeric_limits<double>::infinity();
    for (int i = 0; i < kNumAlgorithms; ++i) {
      const auto a = static_cast<Algorithm>(i);
      const double t = model_.fitted(a) ? model_.predict(a, current, options_.size) : fastest;
      if (t < fastest) {
        fastest = t;
        basis = a;
      }
    }
  }
  if (!basis || !model_.fitted(*basis)) return;
  // A bucket of n bytes spends alpha / (alpha + n beta) of its time on latency; 40 alpha/beta
  // keeps that near 2.5%. Bounded so a noisy fit cannot make buckets absurd.
  const AlphaBeta ab = model_.params(*basis);
  if (ab.beta <= 0) return;
  const double target = std::clamp(40.0 * ab.alpha / ab.beta, 64.0 * 1024, 64.0 * 1024 * 1024);
  // The fit moves with every sample; the layout is cut again only for a change of more than 2x.
  if (target > 2.0 * static_cast<double>(current) || 2.0 * target < static_cast<double>(current)) {
    set_bucket_bytes(static_cast<size_t>(target));
  }
}

void CoordinatorService::set_bucket_bytes(size_t bytes) {
  learner_.set_bucket_bytes(std::min(bytes, options_.fusion_threshold));
}

std::vector<Outgoing> CoordinatorService::on_timer(Clock::time_point now) {
  complete_bounded(now);
  return flush(now, false);
}

std::optional<Clock::time_point> CoordinatorService::deadline() const {
  std::optional<Clock::time_point> d = quorum_deadline_;
  for (const ReadyTensor& t : held_) {
    Clock::time_point due = t.last_arrival + options_.cycle_time;
    if (!d || due < *d) d = due;
  }
  return d;
}

bool CoordinatorService::all_departed() const {
  return std::all_of(departed_.begin(), departed_.end(), [](bool d) { return d; });
}

std::vector<Outgoing> CoordinatorService::flush(Clock::time_point now, bool force) {
  std::vector<Plan> plans;
  std::vector<Plan> tail;  // folds and flush completion go after the rounds planned now
  for (Plan& p : pending_plans_) {
    (p.kind == PlanKind::kFold || p.kind == PlanKind::kFlushDone ? tail : plans)
        .push_back(std::move(p));
  }
  pending_plans_.clear();
  if (!held_.empty()) {
    size_t held_bytes = 0;
    std::unordered_set<uint32_t> ready_ids;
    for (const auto& t : held_) {
      held_bytes += t.wire_bytes;
      ready_ids.insert(t.id);
    }
    // A full buffer or an explicit flush: everything goes.
    const bool all = force || held_bytes >= options_.fusion_threshold;
    // Nothing else is on its way as far as the readiness table can tell. A tensor with a learned
    // bucket still waits for the rest of its bucket (at most the cycle time): the framework has
    // not submitted them yet, and sending now would cost a second plan this step.
    const bool nothing_pending = !all && !table_.has_partial_allreduce();
    std::vector<ReadyTensor> release, keep;
    for (ReadyTensor& t : held_) {
      // A tensor goes when its learned bucket is complete, when it has waited the cycle time,
      // or when it is not an allreduce (those never fuse).
      bool go = all || t.request.kind != CollectiveKind::kAllreduce ||
                (nothing_pending && learner_.bucket_of(t.id) < 0) ||
                learner_.complete(t.id, ready_ids) || now >= t.last_arrival + options_.cycle_time;
      (go ? release : keep).push_back(std::move(t));
    }
    held_ = std::move(keep);
    if (!release.empty()) {
      std::unordered_map<uint32_t, size_t> bytes_of;
      for (const ReadyTensor& t : release) {
        learner_.observe_planned(t.id);
        bytes_of[t.id] = t.wire_bytes;
      }
      for (Plan& p : plan_fusion(release, options_.fusion_threshold,
                                 [this](uint32_t id) { return learner_.bucket_of(id); },
                                 options_.fusion_max_tensor)) {
        if (p.kind == PlanKind::kAllreduce) {
          size_t bytes = 0;
          for (uint32_t id : p.ids) bytes += bytes_of[id];
          // The model is fitted to MPI timings: under auto, CUDA plans let NCCL choose (one
          // communicator per device instead of one per algorithm the model might pick).
          const bool cuda = p.device == Device::Kind::kCuda;
          Algorithm a = options_.algorithm ? *options_.algorithm
                        : cuda             ? Algorithm::kNative
                                           : model_.choose(bytes, options_.size);
          if (cuda && a == Algorithm::kHierarchical) a = Algorithm::kNative;
          p.algorithm = static_cast<uint8_t>(a);
        }
        plans.push_back(std::move(p));
      }
    }
  }
  for (Plan& p : tail) plans.push_back(std::move(p));
  evict_if_over_capacity();
  std::vector<Outgoing> out = std::exchange(fast_out_, {});
  if (plans.empty() && assignments_.empty() && evicted_.empty()) return out;
  for (Plan& p : plans) {
    p.seq = next_seq_++;
    p.mode = policy_.mode();
    steps_.observe(p);
  }
  if (!plans.empty() && !mode_reason_.empty()) {
    plans.front().mode_reason = std::move(mode_reason_);
    mode_reason_.clear();
  }
  PlanBatch batch{std::move(assignments_), std::move(plans), std::move(evicted_), std::nullopt};
  assignments_.clear();
  evicted_.clear();
  maybe_issue_schedule(batch);
  out.push_back({kAllRanks, std::move(batch)});
  return out;
}

}  // namespace quorum::coord
