// The dynamic sync policy (QUORUM_SYNC_MODE=auto), as pure logic. It is fed, for each round of
// a pilot tensor, when every rank's request for that round arrived at the coordinator (late
// requests of bounded rounds included), and every time a bounded round had to wait because a
// rank would otherwise exceed the staleness bound. Over a window of rounds it estimates what
// synchronous rounds cost: the time from the quorum-th arrival to the last, as a fraction of
// step time. Above `enter` it switches to bounded; below `exit` back to sync (hysteresis). A
// rank that is the last to arrive in most rounds (sync) or that keeps hitting the staleness
// bound (bounded) is a persistent straggler: bounded rounds buy nothing against it, so the
// policy stays in, or returns to, sync. Single-threaded.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/messages.h"
#include "coordinator/readiness_table.h"

namespace quorum::coord {

struct PolicyOptions {
  bool automatic = false;            // false: the mode is fixed at `initial`
  SyncMode initial = SyncMode::kSync;
  int size = 1;
  int quorum = 1;                    // ranks needed for a bounded round
  double enter = 0.10;               // waiting fraction that switches to bounded
  double exit = 0.05;                // waiting fraction that switches back to sync
  int window = 20;                   // rounds per estimate
  double persistent_share = 0.6;     // share of window rounds that marks a persistent straggler
};

struct ModeSwitch {
  SyncMode mode;
  std::string reason;
};

class SyncPolicy {
 public:
  explicit SyncPolicy(PolicyOptions options);

  SyncMode mode() const { return mode_; }

  // Every rank's arrival time for one round of the pilot tensor (index = rank).
  void observe_round(const std::vector<Clock::time_point>& arrivals);
  // A bounded round waited for `rank` because of the staleness bound.
  void observe_staleness_wait(int rank);

  // A switch, when the evidence calls for one (it takes effect at once).
  std::optional<ModeSwitch> decide();

  // Figures of the current window, for logs and tests.
  double waiting_fraction() const;
  size_t rounds_in_window() const { return rounds_.size(); }

 private:
  struct Round {
    Clock::time_point first;
    double wait_s;  // quorum-th arrival to last
    int last_rank;
  };
  // The rank most often last (sync) and its share of the window.
  std::pair<int, double> usual_last() const;

  PolicyOptions opt_;
  SyncMode mode_;
  std::deque<Round> rounds_;
  std::deque<int> staleness_waits_;  // ranks, one entry per bounded round that waited
  bool persistent_noted_ = false;
};

}  // namespace quorum::coord
