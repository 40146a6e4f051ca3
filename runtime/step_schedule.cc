#include "runtime/step_schedule.h"

namespace quorum {

int64_t StepSchedule::position(uint64_t i) const {
  const auto warmup = static_cast<uint64_t>(opt_.warmup);
  if (i < warmup) return -1;
  return static_cast<int64_t>((i - warmup) % static_cast<uint64_t>(opt_.period));
}

bool StepSchedule::decision_due() const { return opt_.automatic && position(next_) == 0; }

StepPlan StepSchedule::begin(bool periodic) {
  StepPlan plan;
  plan.step = next_;
  const int64_t j = position(next_);
  if (j == 0) periodic_ = opt_.fixed_periodic || (opt_.automatic && periodic);
  if (j < 0) periodic_ = false;
  plan.local = periodic_;
  plan.average = periodic_ && j == opt_.period - 1;
  if (plan.local) ++local_steps_;
  ++next_;
  return plan;
}

}  // namespace quorum
