#include "coordinator/schedule_learner.h"

#include <algorithm>

namespace quorum::coord {

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
    return;
  }
  current_.entries.push_back({plan.ids, plan.op, plan.dtype, plan.device, plan.algorithm});
  if (previous_ && previous_->schedulable && current_.schedulable &&
      same_sequence(previous_->entries, current_.entries)) {
    cycle_ = Candidate{current_.entries, 0};
  }
}

void ScheduleLearner::follow(const Plan& plan, bool plain_sync_allreduce) {
  if (!cycle_) return;
  ScheduleEntry& due = cycle_->entries[cycle_->next];
  if (!plain_sync_allreduce || plan.ids != due.ids || plan.op != due.op ||
      plan.dtype != due.dtype || plan.device != due.device) {
    cycle_.reset();
    return;
  }
  due.algorithm = plan.algorithm;
  cycle_->next = static_cast<uint32_t>((cycle_->next + 1) % cycle_->entries.size());
}

bool ScheduleLearner::same_sequence(const std::vector<ScheduleEntry>& a,
                                    const std::vector<ScheduleEntry>& b) {
  struct Tensor {
    uint32_t id;
    ReduceOp op;
    DataType dtype;
    Device::Kind device;
    bool operator==(const Tensor&) const = default;
  };
  auto flat = [](const std::vector<ScheduleEntry>& entries) {
    std::vector<Tensor> out;
    for (const ScheduleEntry& e : entries) {
      for (uint32_t id : e.ids) out.push_back({id, e.op, e.dtype, e.device});
    }
    return out;
  };
  return flat(a) == flat(b);
}

void ScheduleLearner::reset() {
  previous_.reset();
  current_ = Step{};
  cycle_.reset();
}

}  // namespace quorum::coord
