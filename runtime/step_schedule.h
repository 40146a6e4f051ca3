// Which kind of step each training step is, for periodic model averaging (begin_step()). Pure
// logic, one per rank, fed the same decisions on every rank so every rank plans the same steps.
//
// Steps [0, warmup) are sync. After them, steps come in segments of `period`; each segment is
// either gradient steps (sync or bounded rounds, as the coordinator runs them) or periodic (every
// step local, the last one followed by an averaging). With `fixed_periodic` every segment is
// periodic; with `automatic` rank 0 decides each segment's mode before its first step (the
// caller broadcasts the decision); otherwise every step is a gradient step.
#pragma once

#include <cstdint>

#include "quorum/quorum.h"

namespace quorum {

class StepSchedule {
 public:
  struct Options {
    bool fixed_periodic = false;
    bool automatic = false;
    int64_t period = 8;
    int64_t warmup = 0;
  };
  explicit StepSchedule(Options options) : opt_(options) {}

  // True when the next step opens a segment whose mode must be decided (auto mode only).
  bool decision_due() const;
  // Plans the next step. `periodic` is the decision for a segment that opens here (used only
  // when decision_due() was true).
  StepPlan begin(bool periodic = false);

  bool periodic_segment() const { return periodic_; }
  uint64_t local_steps() const { return local_steps_; }
  uint64_t next_step() const { return next_; }

 private:
  // Position of step `i` in its segment; -1 during warm-up.
  int64_t position(uint64_t i) const;

  Options opt_;
  uint64_t next_ = 0;
  bool periodic_ = false;
  uint64_t local_steps_ = 0;
};

}  // namespace quorum
