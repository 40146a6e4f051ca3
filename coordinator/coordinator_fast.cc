// The coordinator's side of the steady-state fast path: when a schedule is handed out, how it
// ends, and the arrival samples ranks send while they run it. See DESIGN.md.
#include <algorithm>

#include "coordinator/coordinator_service.h"

namespace quorum::coord {
namespace {

// Fast steps whose samples are kept while waiting for every rank's report.
constexpr size_t kMaxOpenFastSteps = 256;

}  // namespace

bool CoordinatorService::may_schedule(const std::vector<ScheduleEntry>& entries) const {
  // Quiescent: nothing announced is waiting, so no rank has sent readiness the schedule would
  // overtake (a rank that has anyway refuses it, and every rank falls back together).
  if (!table_.open_ids().empty() || !held_.empty() || !pending_plans_.empty() ||
      !mode_reason_.empty() || !departure_.empty()) {
    return false;
  }
  if (std::any_of(flush_requested_.begin(), flush_requested_.end(), [](bool b) { return b; })) {
    return false;
  }
  for (const ScheduleEntry& e : entries) {
    for (uint32_t id : e.ids) {
      if (id >= names_.size() || names_[id].empty()) return false;
      auto live = ids_by_name_.find(names_[id]);
      if (live == ids_by_name_.end() || live->second != id || !settled(id)) return false;
    }
  }
  return true;
}

void CoordinatorService::maybe_issue_schedule(PlanBatch& batch) {
  if (!options_.fast_path || live_ || policy_.mode() != SyncMode::kSync) return;
  const ScheduleLearner::Candidate* step = steps_.candidate();
  if (!step || !may_schedule(step->entries)) return;
  live_ = ++schedule_version_;
  scheduled_ids_.clear();
  for (const ScheduleEntry& e : step->entries) scheduled_ids_.insert(e.ids.begin(), e.ids.end());
  fast_samples_.clear();
  batch.schedule = Schedule{*live_, options_.policy.automatic, step->entries, step->next};
}

void CoordinatorService::end_schedule(const std::string& reason) {
  if (!live_) return;
  fast_out_.push_back({kAllRanks, FastAbort{*live_, reason}});
  live_.reset();
  scheduled_ids_.clear();
  fast_samples_.clear();
  // A new schedule needs the step to repeat again on the coordinator path.
  steps_.reset();
}

std::vector<Outgoing> CoordinatorService::on_fast_exit(int rank, const FastExit& exit,
                                                       Clock::time_point now) {
  std::string reason = "rank " + std::to_string(rank) + ": " + exit.reason;
  if (live_ && *live_ == exit.version) {
    end_schedule(reason);
  } else if (exit.version <= schedule_version_) {
    // Already ended here (another rank's readiness came first), but ranks still running it may
    // be waiting for the one that left: tell them again.
    fast_out_.push_back({kAllRanks, FastAbort{exit.version, reason}});
  }
  return flush(now, false);
}

std::vector<Outgoing> CoordinatorService::on_fast_report(int rank, const FastReport& report,
                                                         Clock::time_point now) {
  if (live_ && *live_ == report.version && options_.policy.automatic) {
    const auto size = static_cast<size_t>(options_.size);
    for (size_t i = 0; i < report.samples.size(); ++i) {
      auto& samples = fast_samples_[report.first + i];
      samples.resize(size);
      samples[static_cast<size_t>(rank)] = report.samples[i];
      if (!std::all_of(samples.begin(), samples.end(), [](auto& s) { return s.has_value(); })) {
        continue;
      }
      // Every rank ends an agreement at about the same moment; a rank arrived as long before
      // that as it waited. Rank 0 runs in this process, so its clock is this clock.
      std::vector<Clock::time_point> arrivals;
      arrivals.reserve(size);
      for (const auto& s : samples) {
        arrivals.emplace_back(std::chrono::nanoseconds(samples[0]->end_ns - s->wait_ns));
      }
      fast_samples_.erase(report.first + i);
      policy_.observe_round(arrivals);
      decide_mode();
      if (!live_) break;  // the policy ended the schedule
    }
    while (fast_samples_.size() > kMaxOpenFastSteps) fast_samples_.erase(fast_samples_.begin());
  }
  return flush(now, false);
}

}  // namespace quorum::coord
