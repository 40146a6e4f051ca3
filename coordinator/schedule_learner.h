// Finds the repeating step in the coordinator's plan stream, for the steady-state fast path.
// Plans are fed in sequence order; a step ends where a plan names a tensor the step already
// ran (training runs every gradient once per step). When the step just fed runs the same
// tensors as the one before it, with the same op, dtype and device, in nearly the same order,
// it is a schedule candidate.
//
// Nearly: the coordinator plans a tensor when its last rank announces it, so the order it sees
// is the latest rank's, and which rank is latest changes from step to step. Two gradients that
// backward produces microseconds apart come in either order. A tensor may therefore sit up to
// kOrderSlack places from where the step before had it; the candidate takes the latest step's
// order, which every rank then runs alike (a rank whose own order differs holds the early
// tensor until the due one is ready, for at most a cycle time before it leaves the schedule).
// The bucket boundaries may differ too (on a loaded machine the cycle time can split a learned
// bucket in one step and not in the next): the candidate takes the latest step's buckets. Only
// sync allreduce plans without counts can be scheduled: a step with anything else (an error, a
// broadcast, a bounded round, a fold) is never a candidate. Algorithms may differ between the
// two steps (the cost model explores); the candidate carries the latest choices.
//
// Once found, the candidate stays one while the plans that follow run its entries, bucket for
// bucket, each once per pass (in any order within the same slack); it is offered while the
// entries run so far this pass are the first ones, and says which entry is due next: the
// coordinator may hand it out between any two entries. Where a step starts is only where
// learning began (after a fallback in the middle of a step, the middle), and the moment when no
// rank has announced anything yet is the framework's own step boundary, wherever that falls in
// the learned cycle. Pure logic, single-threaded.
#pragma once

#include <optional>
#include <unordered_set>
#include <vector>

#include "coordinator/messages.h"

namespace quorum::coord {

class ScheduleLearner {
 public:
  // How many places a tensor may move between two steps that still count as the same.
  static constexpr size_t kOrderSlack = 2;

  struct Candidate {
    std::vector<ScheduleEntry> entries;
    uint32_t next = 0;  // the entry due after the plans fed so far
  };
  void observe(const Plan& plan);
  // The learned step, while the plans fed since it repeated follow it and the entries run this
  // pass are its first ones; null otherwise.
  const Candidate* candidate() const { return offered_ ? &cycle_->learned : nullptr; }
  // Forgets everything seen: a new candidate needs two matching steps again.
  void reset();

 private:
  struct Step {
    std::vector<ScheduleEntry> entries;
    std::unordered_set<uint32_t> ids;
    bool schedulable = true;
  };
  // The learned cycle and the entries the current pass through it has run.
  struct Cycle {
    Candidate learned;
    std::vector<bool> ran;
    size_t ran_count = 0;
  };
  // The same tensors with the same op, dtype and device, however bucketed, none more than
  // kOrderSlack places from where it was.
  static bool same_step(const std::vector<ScheduleEntry>& a, const std::vector<ScheduleEntry>& b);
  // Moves the cycle on by `plan` (an entry not yet run this pass, the algorithm aside), or
  // drops it.
  void follow(const Plan& plan, bool plain_sync_allreduce);
  void update_offer();

  std::optional<Step> previous_;
  Step current_;
  std::optional<Cycle> cycle_;
  bool offered_ = false;
};

}  // namespace quorum::coord
