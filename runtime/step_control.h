// begin_step() and average_parameters() for one runtime: the step schedule every rank follows,
// and on rank 0 in auto mode the policy that decides each segment, whose decision (with its
// reason) reaches every rank in one small broadcast at the segment's first step, on a
// communicator of its own (not through the coordinator, so the learned schedule of the engine's
// steps is not disturbed).
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "quorum/quorum.h"
#include "runtime/config.h"
#include "runtime/periodic_policy.h"
#include "runtime/step_schedule.h"
#include "runtime/timeline.h"

namespace quorum {

class StepControl {
 public:
  struct Hooks {
    std::function<double()> collective_seconds;  // this rank's time in collectives so far
                                                 // (read only by rank 0's auto policy)
    std::function<double()> waiting_fraction;    // the coordinator's (rank 0), or empty
    std::function<bool()> bounded_rounds;        // the coordinator's mode is bounded (rank 0)
    std::function<std::shared_ptr<Timeline>()> timeline;
    // Rank 0's `bytes` at `buf` to every rank (collective on a communicator of its own).
    std::function<Status(void*, size_t)> broadcast;
  };
  // `config` holds rank 0's job settings (QUORUM_SYNC_MODE, QUORUM_AVERAGE_*).
  StepControl(const Config& config, int rank, Hooks hooks);

  StepPlan begin();
  uint64_t averagings() const;
  uint64_t local_steps() const;
  // Counts one completed averaging.
  void averaged();

 private:
  // Rank 0's decision for the segment opening now (and its reason), as every rank learns it.
  bool agree_on_segment(std::string* reason);
  void note_mode(bool periodic, const std::string& reason, uint64_t step);

  const int rank_;
  Hooks hooks_;
  std::optional<PeriodicPolicy> policy_;  // rank 0 in auto mode
  mutable std::mutex mu_;                 // one training thread calls begin(); stats() reads
  StepSchedule schedule_;
  uint64_t averagings_ = 0;
  bool decided_ = false;  // a segment decision has been taken (the first one is always noted)
  std::optional<std::chrono::steady_clock::time_point> last_begin_;
  double last_collective_ = 0;
};

}  // namespace quorum
