// Finds the repeating step in the coordinator's plan stream, for the steady-state fast path.
// Plans are fed in sequence order; a step ends where a plan names a tensor the step already
// ran (training runs every gradient once per step). When the step just fed runs the same
// tensors as the one before it, in the same order and with the same op, dtype and device, it is
// a schedule candidate. The bucket boundaries may differ (on a loaded machine the cycle time can
// split a learned bucket in one step and not in the next): the candidate takes the latest
// step's buckets, which every rank then runs alike. Only sync allreduce plans without counts
// can be scheduled: a step with anything else (an error, a broadcast, a bounded round, a fold)
// is never a candidate. Algorithms may differ between the two steps (the cost model explores);
// the candidate carries the latest choices.
//
// Once found, the candidate stays one while the plans that follow run its entries in turn,
// bucket for bucket, and it says which entry is due next: the coordinator may hand it out
// between any two entries. Where a step starts is only where learning began (after a fallback
// in the middle of a step, the middle), and the moment when no rank has announced anything yet
// is the framework's own step boundary, wherever that falls in the learned cycle. Pure logic,
// single-threaded.
#pragma once

#include <optional>
#include <unordered_set>
#include <vector>

#include "coordinator/messages.h"

namespace quorum::coord {

class ScheduleLearner {
 public:
  struct Candidate {
    std::vector<ScheduleEntry> entries;
    uint32_t next = 0;  // the entry due after the plans fed so far
  };
  void observe(const Plan& plan);
  // The learned step, while the plans fed since it repeated follow it; nullopt otherwise.
  const std::optional<Candidate>& candidate() const { return cycle_; }
  // Forgets everything seen: a new candidate needs two matching steps again.
  void reset();

 private:
  struct Step {
    std::vector<ScheduleEntry> entries;
    std::unordered_set<uint32_t> ids;
    bool schedulable = true;
  };
  // The same tensors in the same order with the same op, dtype and device, however bucketed.
  static bool same_sequence(const std::vector<ScheduleEntry>& a,
                            const std::vector<ScheduleEntry>& b);
  // Moves the candidate on by `plan` (its next entry, the algorithm aside), or drops it.
  void follow(const Plan& plan, bool plain_sync_allreduce);

  std::optional<Step> previous_;
  Step current_;
  std::optional<Candidate> cycle_;
};

}  // namespace quorum::coord
