#include "coordinator/schedule_learner.h"

#include <algorithm>
#include <unordered_map>

namespace quorum::coord {
namespace {

bool same_description(const ScheduleEntry& a, const ScheduleEntry& b) {
  return a.op == b.op && a.dtype == b.dtype && a.device == b.device;
}

}  // namespace

void ScheduleLearner::observe(const Plan& plan) {
  const bool plain_sync_allreduce =
      plan.kind == PlanKind::kAllreduce && plan.mode == SyncMode::kSync && !plan.counted &&
      std::all_of(plan.missing.begin(), plan.missing.end(), [](auto& m) { return m.empty(); }) &&
      !plan.ids.empty();
  follow(plan, plain_sync_allreduce);
  const bool repeats_a_tensor = std::any_of(plan.ids.begin(), plan.ids.end(), [&](uint32_t id) {
    return current_.ids.count(id) > 0;
  });
  if (repeats_a_tensor) previous_ = std::exchange(current_, Step{});
  current_.ids.insert(plan.ids.begin(), plan.ids.end());
  if (!plain_sync_allreduce) {
    current_.schedulable = false;
    update_offer();
    return;
  }
  current_.entries.push_back({plan.ids, plan.op, plan.dtype, plan.device, plan.algorithm});
  if (previous_ && previous_->schedulable && current_.schedulable &&
      same_step(previous_->entries, current_.entries)) {
    // The step just completed: the next plan starts a new pass.
    cycle_ = Cycle{Candidate{current_.entries, 0}, std::vector<bool>(current_.entries.size()), 0};
  }
  update_offer();
}

void ScheduleLearner::follow(const Plan& plan, bool plain_sync_allreduce) {
  if (!cycle_) return;
  std::vector<ScheduleEntry>& entries = cycle_->learned.entries;
  // The first entry not run this pass is due; one a little further on may come first.
  const auto due = static_cast<size_t>(
      std::find(cycle_->ran.begin(), cycle_->ran.end(), false) - cycle_->ran.begin());
  const ScheduleEntry seen{plan.ids, plan.op, plan.dtype, plan.device, plan.algorithm};
  size_t match = entries.size();
  if (plain_sync_allreduce) {
    for (size_t i = due; i < entries.size() && i <= due + kOrderSlack; ++i) {
      if (!cycle_->ran[i] && entries[i].ids == plan.ids && same_description(entries[i], seen)) {
        match = i;
        break;
      }
    }
  }
  if (match == entries.size()) {
    cycle_.reset();
    return;
  }
  entries[match].algorithm = plan.algorithm;
  cycle_->ran[match] = true;
  if (++cycle_->ran_count == entries.size()) {
    std::fill(cycle_->ran.begin(), cycle_->ran.end(), false);
    cycle_->ran_count = 0;
  }
}

void ScheduleLearner::update_offer() {
  // Offered only where the pass so far is a prefix: the ranks start at the entry due and run
  // every later one, so an entry already run out of turn would run twice.
  const bool prefix =
      cycle_ && std::all_of(cycle_->ran.begin(),
                            cycle_->ran.begin() + static_cast<std::ptrdiff_t>(cycle_->ran_count),
                            [](bool ran) { return ran; });
  offered_ = prefix;
  if (prefix) cycle_->learned.next = static_cast<uint32_t>(cycle_->ran_count);
}

bool ScheduleLearner::same_step(const std::vector<ScheduleEntry>& a,
                                const std::vector<ScheduleEntry>& b) {
  // Every tensor of b, with its entry's description, where a had it.
  std::unordered_map<uint32_t, std::pair<size_t, const ScheduleEntry*>> in_a;
  size_t position = 0;
  for (const ScheduleEntry& e : a) {
    for (uint32_t id : e.ids) in_a[id] = {position++, &e};
  }
  if (in_a.size() != position) return false;  // a tensor twice in one step
  size_t count = 0;
  for (const ScheduleEntry& e : b) {
    for (uint32_t id : e.ids) {
      auto it = in_a.find(id);
      if (it == in_a.end() || !same_description(*it->second.second, e)) return false;
      const size_t was = it->second.first;
      const size_t distance = was > count ? was - count : count - was;
      if (distance > kOrderSlack) return false;
      ++count;
    }
  }
  return count == position;
}

void ScheduleLearner::reset() {
  previous_.reset();
  current_ = Step{};
  cycle_.reset();
  offered_ = false;
}

}  // namespace quorum::coord
