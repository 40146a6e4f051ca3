// auto mode's third choice, on rank 0: whether the next segment of steps runs periodic model
// averaging instead of gradient rounds. Pure logic, fed by rank 0's begin_step().
//
// Periodic averaging pays off when communication, not stragglers, dominates a step: its local
// steps skip the gradient allreduce altogether, while bounded rounds (the coordinator's other
// choice) only stop waiting for the slowest rank. So over each gradient segment the policy
// measures the share of step time rank 0 spent in collectives, less the share the coordinator
// saw waiting for stragglers (collectives on the fast path wait for late ranks inside them);
// above `enter`, with stragglers below `straggler_limit`, the next segments are periodic. A
// periodic segment cannot see what gradient rounds would cost, so after `reprobe` periodic
// segments one gradient segment measures again.
#pragma once

#include <optional>
#include <string>

namespace quorum {

struct PeriodicPolicyOptions {
  double enter = 0.30;            // communication share of step time that selects periodic
  double straggler_limit = 0.10;  // waiting share above which stragglers are the problem
  int reprobe = 8;                // periodic segments between re-measurements
};

struct SegmentDecision {
  bool periodic = false;
  bool switched = false;  // differs from the segment before
  std::string reason;
};

class PeriodicPolicy {
 public:
  explicit PeriodicPolicy(PeriodicPolicyOptions options) : opt_(options) {}

  // One step of the segment now running: its wall time and rank 0's time in collectives.
  void observe_step(double step_seconds, double collective_seconds);
  // The mode of the segment about to open, given the coordinator's current straggler waiting
  // share of step time and whether it runs bounded rounds. Bounded rounds were chosen against
  // stragglers, and their collectives include waiting for the quorum: rank 0's collective time
  // then says nothing about communication, so the segment stays with gradient rounds. Starts
  // the next segment's evidence.
  SegmentDecision decide(double waiting_fraction, bool bounded_rounds = false);

  bool periodic() const { return periodic_; }

 private:
  PeriodicPolicyOptions opt_;
  bool periodic_ = false;
  int periodic_segments_ = 0;  // in a row, since the last gradient segment
  double step_s_ = 0;
  double collective_s_ = 0;
  int steps_ = 0;
};

}  // namespace quorum
