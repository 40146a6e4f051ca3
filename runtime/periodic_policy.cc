#include "runtime/periodic_policy.h"

#include <cstdio>

namespace quorum {
namespace {

std::string percent(double f) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * f);
  return buf;
}

}  // namespace

void PeriodicPolicy::observe_step(double step_seconds, double collective_seconds) {
  if (step_seconds <= 0) return;
  step_s_ += step_seconds;
  collective_s_ += collective_seconds;
  ++steps_;
}

SegmentDecision PeriodicPolicy::decide(double waiting_fraction, bool bounded_rounds) {
  SegmentDecision d;
  const bool was = periodic_;
  if (periodic_) {
    if (++periodic_segments_ >= opt_.reprobe) {
      periodic_ = false;
      d.reason = "measuring gradient rounds again after " + std::to_string(periodic_segments_) +
                 " periodic segments";
    } else {
      d.reason = "communication-bound at the last measurement";
    }
  } else if (steps_ == 0) {
    d.reason = "no steps measured yet";
  } else {
    const double comm = collective_s_ / step_s_;
    const double own = comm - waiting_fraction;  // communication proper
    const std::string figures = "collectives " + percent(comm) + " of step time, stragglers " +
                                percent(waiting_fraction);
    if (bounded_rounds) {
      d.reason = figures + ", in bounded rounds against stragglers: gradient rounds";
    } else if (waiting_fraction >= opt_.straggler_limit) {
      d.reason = figures + ": stragglers dominate, gradient rounds (bounded ones help)";
    } else if (own > opt_.enter) {
      periodic_ = true;
      periodic_segments_ = 0;
      d.reason = figures + ": communication-bound, averaging parameters periodically";
    } else {
      d.reason = figures + ": communication is cheap, gradient rounds";
    }
  }
  d.periodic = periodic_;
  d.switched = periodic_ != was;
  step_s_ = collective_s_ = 0;
  steps_ = 0;
  return d;
}

}  // namespace quorum
