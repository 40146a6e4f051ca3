// The step schedule of periodic model averaging and auto's segment policy: which steps are
// local, which average, where decisions fall, and what evidence switches the mode.
#include <gtest/gtest.h>

#include <string>

#include "runtime/periodic_policy.h"
#include "runtime/step_schedule.h"

namespace quorum {
namespace {

// "s" for a gradient step, "l" for a local one, "A" for a local one followed by an averaging.
std::string pattern(StepSchedule& s, int steps, const std::string& decisions = {}) {
  std::string out;
  size_t next = 0;
  for (int i = 0; i < steps; ++i) {
    bool periodic = false;
    if (s.decision_due()) periodic = next < decisions.size() && decisions[next++] == 'p';
    StepPlan p = s.begin(periodic);
    EXPECT_EQ(p.step, static_cast<uint64_t>(i));
    out += p.average ? 'A' : p.local ? 'l' : 's';
  }
  return out;
}

TEST(StepSchedule, FixedPeriodicAfterWarmup) {
  StepSchedule s({.fixed_periodic = true, .automatic = false, .period = 4, .warmup = 3});
  EXPECT_EQ(pattern(s, 15), "ssslllAlllAlllA");
  EXPECT_EQ(s.local_steps(), 12u);
  EXPECT_FALSE(s.decision_due());
}

TEST(StepSchedule, PeriodOneAveragesAfterEveryStep) {
  StepSchedule s({.fixed_periodic = true, .automatic = false, .period = 1, .warmup = 0});
  EXPECT_EQ(pattern(s, 4), "AAAA");
}

TEST(StepSchedule, SyncAndBoundedPlanGradientStepsOnly) {
  StepSchedule s({.fixed_periodic = false, .automatic = false, .period = 4, .warmup = 0});
  EXPECT_EQ(pattern(s, 9), "sssssssss");
  EXPECT_EQ(s.local_steps(), 0u);
}

TEST(StepSchedule, AutoDecidesEachSegmentAtItsFirstStep) {
  StepSchedule s({.fixed_periodic = false, .automatic = true, .period = 3, .warmup = 2});
  // Decisions fall at steps 2, 5, 8, 11: gradient, periodic, periodic, gradient.
  EXPECT_EQ(pattern(s, 14, "gppg"), "sssssllAllAsss");
}

TEST(PeriodicPolicy, CommunicationBoundSelectsPeriodicThenReprobes) {
  PeriodicPolicy p({.enter = 0.3, .straggler_limit = 0.1, .reprobe = 2});
  SegmentDecision d = p.decide(0.0);
  EXPECT_FALSE(d.periodic);  // no evidence yet
  EXPECT_NE(d.reason.find("no steps"), std::string::npos);
  for (int i = 0; i < 4; ++i) p.observe_step(0.10, 0.06);  // 60% in collectives
  d = p.decide(0.02);
  EXPECT_TRUE(d.periodic);
  EXPECT_TRUE(d.switched);
  EXPECT_NE(d.reason.find("collectives 60%"), std::string::npos) << d.reason;
  d = p.decide(0.0);
  EXPECT_TRUE(d.periodic);
  EXPECT_FALSE(d.switched);
  d = p.decide(0.0);  // second periodic segment done: measure gradient rounds again
  EXPECT_FALSE(d.periodic);
  EXPECT_TRUE(d.switched);
  EXPECT_NE(d.reason.find("measuring"), std::string::npos) << d.reason;
}

TEST(PeriodicPolicy, ComputeBoundOrStragglerBoundStaysWithGradientRounds) {
  PeriodicPolicy p({.enter = 0.3, .straggler_limit = 0.1, .reprobe = 8});
  for (int i = 0; i < 4; ++i) p.observe_step(0.10, 0.01);  // 10% in collectives
  EXPECT_FALSE(p.decide(0.0).periodic);
  // Half the step in collectives, but most of that is waiting for a straggler.
  for (int i = 0; i < 4; ++i) p.observe_step(0.10, 0.05);
  SegmentDecision d = p.decide(0.35);
  EXPECT_FALSE(d.periodic);
  EXPECT_NE(d.reason.find("stragglers dominate"), std::string::npos) << d.reason;
}

TEST(PeriodicPolicy, BoundedRoundsStayWithGradientRounds) {
  PeriodicPolicy p({.enter = 0.3, .straggler_limit = 0.1, .reprobe = 8});
  // Bounded rounds wait for the quorum inside their collectives: 47% looks communication-bound,
  // and the coordinator's estimate of straggler waiting is low once the rounds stop waiting.
  for (int i = 0; i < 4; ++i) p.observe_step(0.10, 0.047);
  SegmentDecision d = p.decide(0.01, /*bounded_rounds=*/true);
  EXPECT_FALSE(d.periodic);
  EXPECT_NE(d.reason.find("bounded rounds"), std::string::npos) << d.reason;
  // The same figures in sync rounds are communication-bound.
  for (int i = 0; i < 4; ++i) p.observe_step(0.10, 0.047);
  EXPECT_TRUE(p.decide(0.01, /*bounded_rounds=*/false).periodic);
}

}  // namespace
}  // namespace quorum
