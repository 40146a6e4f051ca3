#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "coordinator/fusion_planner.h"

namespace quorum::coord {

CoordinatorService::CoordinatorService(ServiceOptions options)
    : options_(options),
      known_(static_cast<size_t>(options.size)),
      table_(options.size),
      learner_(std::min(options.bucket_bytes, options.fusion_threshold)),
      departed_(static_cast<size_t>(options.size), false) {}

uint32_t CoordinatorService::id_for(const std::string& name) {
  auto [it, inserted] = ids_by_name_.try_emplace(name, static_cast<uint32_t>(names_.size()));
  if (inserted) {
    names_.push_back(name);
    assignments_.push_back({it->second, name});
  }
  return it->second;
}

void CoordinatorService::fail_id(uint32_t id, StatusCode code, const std::string& message) {
  Plan p;
  p.kind = PlanKind::kError;
  p.code = code;
  p.ids = {id};
  p.message = message;
  error_plans_.push_back(std::move(p));
}

std::vector<Outgoing> CoordinatorService::on_ready(int rank, const Ready& ready,
                                                   Clock::time_point now) {
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
          fail_id(e.id, StatusCode::kInternal, "tensor '" + names_[e.id] + "': rank " + std::to_string(rank) +
                            " referred to it by id without ever describing it");
        }
        continue;
      }
      id = e.id;
      request = &it->second;
    }
    if (!departure_.empty()) {
      fail_id(id, StatusCode::kAborted, "tensor '" + request->name + "': " + departure_);
      continue;
    }
    if (auto outcome = table_.submit(rank, id, *request, e.dim0, now)) {
      if (outcome->ready) {
        if (outcome->ready->request.kind == CollectiveKind::kAllreduce) {
          learner_.observe_ready(*outcome->ready);
        }
        held_.push_back(std::move(*outcome->ready));
      } else {
        fail_id(id, StatusCode::kMismatch, outcome->error);
      }
    }
  }
  return flush(now, false);
}

void CoordinatorService::depart(int rank, const std::string& reason, Clock::time_point now) {
  if (departed_[static_cast<size_t>(rank)]) return;
  departed_[static_cast<size_t>(rank)] = true;
  if (departure_.empty()) departure_ = reason;
  (void)now;
  // Rounds that still miss some rank can never run now.
  for (uint32_t id : table_.take_all_pending()) {
    fail_id(id, StatusCode::kAborted, "tensor '" + names_[id] + "': " + departure_ + " before every rank submitted it");
  }
}

std::vector<Outgoing> CoordinatorService::on_goodbye(int rank, Clock::time_point now) {
  depart(rank, "rank " + std::to_string(rank) + " has shut down", now);
  // Everything already complete goes out now: the departing rank still executes it.
  std::vector<Outgoing> out = flush(now, true);
  if (!out.empty()) out.push_back({rank, out.front().message});
  out.push_back({rank, GoodbyeAck{}});
  return out;
}

std::vector<Outgoing> CoordinatorService::on_lost(int rank, const std::string& why,
                                                  Clock::time_point now) {
  depart(rank, "rank " + std::to_string(rank) + " lost its control connection (" + why + ")", now);
  // Held tensors included the lost rank's part; running them now would hang the others.
  for (const ReadyTensor& t : held_) {
    fail_id(t.id, StatusCode::kAborted, "tensor '" + names_[t.id] + "': " + departure_);
  }
  held_.clear();
  return flush(now, true);
}

void CoordinatorService::observe(Algorithm algorithm, size_t bytes, double seconds) {
  model_.observe(algorithm, bytes, options_.size, seconds);
  if (!options_.adapt_buckets || !model_.fitted(algorithm)) return;
  // A bucket of n bytes spends alpha / (alpha + n beta) of its time on latency; 40 alpha/beta
  // keeps that near 2.5%. Bounded so a noisy fit cannot make buckets absurd.
  AlphaBeta ab = model_.params(algorithm);
  if (ab.beta <= 0) return;
  double target = 40.0 * ab.alpha / ab.beta;
  set_bucket_bytes(static_cast<size_t>(std::clamp(target, 64.0 * 1024, 64.0 * 1024 * 1024)));
}

void CoordinatorService::set_bucket_bytes(size_t bytes) {
  learner_.set_bucket_bytes(std::min(bytes, options_.fusion_threshold));
}

std::vector<Outgoing> CoordinatorService::on_timer(Clock::time_point now) {
  return flush(now, false);
}

std::optional<Clock::time_point> CoordinatorService::deadline() const {
  if (held_.empty()) return std::nullopt;
  auto oldest = std::min_element(held_.begin(), held_.end(), [](const auto& a, const auto& b) {
    return a.last_arrival < b.last_arrival;
  });
  return oldest->last_arrival + options_.cycle_time;
}

bool CoordinatorService::all_departed() const {
  return std::all_of(departed_.begin(), departed_.end(), [](bool d) { return d; });
}

std::vector<Outgoing> CoordinatorService::flush(Clock::time_point now, bool force) {
  std::vector<Plan> plans = std::move(error_plans_);
  error_plans_.clear();
  if (!held_.empty()) {
    size_t held_bytes = 0;
    std::unordered_set<uint32_t> ready_ids;
    for (const auto& t : held_) {
      held_bytes += t.wire_bytes;
      ready_ids.insert(t.id);
    }
    // Nothing else on its way, a full buffer, or an explicit flush: everything goes.
    bool all = force || !table_.has_partial_allreduce() ||
               held_bytes >= options_.fusion_threshold;
    std::vector<ReadyTensor> release, keep;
    for (ReadyTensor& t : held_) {
      // A tensor goes when its learned bucket is complete, when it has waited the cycle time,
      // or when it is not an allreduce (those never fuse).
      bool go = all || t.request.kind != CollectiveKind::kAllreduce ||
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
                                 [this](uint32_t id) { return learner_.bucket_of(id); })) {
        if (p.kind == PlanKind::kAllreduce) {
          size_t bytes = 0;
          for (uint32_t id : p.ids) bytes += bytes_of[id];
          Algorithm a = options_.algorithm ? *options_.algorithm : model_.choose(bytes, options_.size);
          p.algorithm = static_cast<uint8_t>(a);
        }
        plans.push_back(std::move(p));
      }
    }
  }
  if (plans.empty() && assignments_.empty()) return {};
  for (Plan& p : plans) p.seq = next_seq_++;
  PlanBatch batch{std::move(assignments_), std::move(plans)};
  assignments_.clear();
  return {{kAllRanks, std::move(batch)}};
}

}  // namespace quorum::coord
