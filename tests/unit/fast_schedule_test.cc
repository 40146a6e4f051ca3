// The steady-state fast path's coordinator side, as pure logic: the schedule learner finds a
// repeating step, the service hands it out only when nothing announced is waiting, ends it on
// any sign that a rank left it, and feeds the sync policy from batched fast-step samples.
#include <gtest/gtest.h>

#include <algorithm>

#include "coordinator/coordinator_service.h"
#include "coordinator/schedule_learner.h"

namespace quorum::coord {
namespace {

using std::chrono::milliseconds;
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::seconds(1000);

Plan allreduce(std::vector<uint32_t> ids, uint8_t algorithm = 0) {
  Plan p;
  p.kind = PlanKind::kAllreduce;
  p.ids = std::move(ids);
  p.algorithm = algorithm;
  return p;
}

void feed(ScheduleLearner& l, const std::vector<Plan>& step) {
  for (const Plan& p : step) l.observe(p);
}

TEST(ScheduleLearner, TwoMatchingStepsMakeACandidate) {
  ScheduleLearner l;
  const std::vector<Plan> step{allreduce({0, 1}), allreduce({2})};
  feed(l, step);
  EXPECT_FALSE(l.candidate()) << "one step is no repetition";
  feed(l, step);
  auto c = l.candidate();
  ASSERT_TRUE(c);
  ASSERT_EQ(c->entries.size(), 2u);
  EXPECT_EQ(c->entries[0].ids, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(c->entries[1].ids, (std::vector<uint32_t>{2}));
  EXPECT_EQ(c->next, 0u);
  l.observe(allreduce({0, 1}));
  ASSERT_TRUE(l.candidate()) << "the third step follows it";
  EXPECT_EQ(l.candidate()->next, 1u);
  l.observe(allreduce({2}));
  ASSERT_TRUE(l.candidate());
  EXPECT_EQ(l.candidate()->next, 0u);
}

// Learning began in the middle of the framework's step (after a fallback there): the learned
// cycle starts at that bucket, and it is due at the framework's step boundary with the right
// entry next.
TEST(ScheduleLearner, ACycleLearnedMidStepSaysWhichEntryIsDue) {
  ScheduleLearner l;
  feed(l, {allreduce({2}), allreduce({3}), allreduce({0}), allreduce({1})});
  feed(l, {allreduce({2}), allreduce({3}), allreduce({0}), allreduce({1})});
  feed(l, {allreduce({2}), allreduce({3})});  // the framework's step ends here
  ASSERT_TRUE(l.candidate());
  EXPECT_EQ(l.candidate()->entries[l.candidate()->next].ids, (std::vector<uint32_t>{0}));
}

TEST(ScheduleLearner, AnotherBucketingOrAPlanOutOfTurnDropsTheCandidate) {
  ScheduleLearner l;
  feed(l, {allreduce({0, 1}), allreduce({2})});
  feed(l, {allreduce({0, 1}), allreduce({2})});
  ASSERT_TRUE(l.candidate());
  l.observe(allreduce({0}));
  EXPECT_FALSE(l.candidate()) << "tensor 0 alone is not the bucket due";
  l.observe(allreduce({1, 2}));
  EXPECT_TRUE(l.candidate()) << "the step repeated with the new buckets";
  l.observe(allreduce({1, 2}));
  EXPECT_FALSE(l.candidate()) << "out of turn";
}

TEST(ScheduleLearner, OtherBucketsSameSequenceTakeTheLatest) {
  ScheduleLearner l;
  feed(l, {allreduce({0, 1}), allreduce({2})});
  feed(l, {allreduce({0}), allreduce({1, 2})});
  auto c = l.candidate();
  ASSERT_TRUE(c);
  ASSERT_EQ(c->entries.size(), 2u);
  EXPECT_EQ(c->entries[0].ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(c->entries[1].ids, (std::vector<uint32_t>{1, 2}));
}

TEST(ScheduleLearner, ADifferentOrderOrDescriptionIsNoCandidate) {
  ScheduleLearner l;
  feed(l, {allreduce({0}), allreduce({1}), allreduce({2}), allreduce({3})});
  feed(l, {allreduce({3}), allreduce({1}), allreduce({2}), allreduce({0})});
  EXPECT_FALSE(l.candidate()) << "another order (tensors 0 and 3 moved by three places)";
  feed(l, {allreduce({0, 1}), allreduce({2})});
  feed(l, {allreduce({0, 1}), allreduce({2})});
  l.reset();
  Plan other_op = allreduce({0, 1});
  other_op.op = ReduceOp::kMax;
  feed(l, {other_op, allreduce({2})});
  EXPECT_FALSE(l.candidate()) << "another op";
  Plan other_dtype = allreduce({0, 1});
  other_dtype.dtype = DataType::kF64;
  feed(l, {other_dtype, allreduce({2})});
  EXPECT_FALSE(l.candidate()) << "another dtype";
  feed(l, {other_dtype, allreduce({2})});
  EXPECT_TRUE(l.candidate());
  l.observe(allreduce({2}));  // tensor 2 before tensors 0 and 1
  EXPECT_FALSE(l.candidate()) << "a plan out of turn";
}

// The coordinator sees each tensor when its latest rank announces it, and the latest rank
// changes from step to step: neighbours that come microseconds apart swap. The candidate takes
// the latest order, and following it tolerates the same swaps, but never an entry twice.
TEST(ScheduleLearner, NeighboursMaySwapWithinTheSlack) {
  ScheduleLearner l;
  feed(l, {allreduce({0}), allreduce({1}), allreduce({2}), allreduce({3}), allreduce({4})});
  feed(l, {allreduce({1}), allreduce({0}), allreduce({2}), allreduce({4}), allreduce({3})});
  const ScheduleLearner::Candidate* c = l.candidate();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->entries[0].ids, (std::vector<uint32_t>{1})) << "the latest order";
  EXPECT_EQ(c->entries[3].ids, (std::vector<uint32_t>{4}));
  l.observe(allreduce({0}));  // entry 1 before entry 0
  ASSERT_FALSE(l.candidate()) << "not offered while an entry ran out of turn";
  l.observe(allreduce({1}));
  ASSERT_TRUE(l.candidate());
  EXPECT_EQ(l.candidate()->next, 2u);
  l.observe(allreduce({2}));
  l.observe(allreduce({3}));
  l.observe(allreduce({4}));
  ASSERT_TRUE(l.candidate());
  EXPECT_EQ(l.candidate()->next, 0u) << "a pass ends when every entry ran";
  l.observe(allreduce({1}));
  l.observe(allreduce({2}));
  l.observe(allreduce({1}));
  EXPECT_FALSE(l.candidate()) << "an entry twice in one pass";
  l.reset();
  feed(l, {allreduce({0}), allreduce({1}), allreduce({2}), allreduce({3}), allreduce({4})});
  feed(l, {allreduce({0}), allreduce({1}), allreduce({2}), allreduce({3}), allreduce({4})});
  ASSERT_TRUE(l.candidate());
  l.observe(allreduce({4}));
  EXPECT_FALSE(l.candidate()) << "entry 4 is further than the slack from entry 0";
}

TEST(ScheduleLearner, AlgorithmsMayDifferAndTheLatestAreCarried) {
  ScheduleLearner l;
  feed(l, {allreduce({0}, 1)});
  feed(l, {allreduce({0}, 2)});
  auto c = l.candidate();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->entries[0].algorithm, 2);
  l.observe(allreduce({0}, 0));
  EXPECT_EQ(l.candidate()->entries[0].algorithm, 0) << "followed with the latest choice";
}

TEST(ScheduleLearner, AnythingButPlainSyncAllreducesSpoilsTheStep) {
  auto spoiled = [](Plan odd) {
    ScheduleLearner l;
    feed(l, {allreduce({0}), odd});
    feed(l, {allreduce({0}), odd});
    return l.candidate() == nullptr;
  };
  Plan bounded = allreduce({1});
  bounded.mode = SyncMode::kBounded;
  Plan counted = allreduce({1});
  counted.counted = true;
  Plan error = allreduce({1});
  error.kind = PlanKind::kError;
  Plan broadcast = allreduce({1});
  broadcast.kind = PlanKind::kBroadcast;
  Plan missing = allreduce({1});
  missing.missing = {{1}};
  EXPECT_TRUE(spoiled(bounded));
  EXPECT_TRUE(spoiled(counted));
  EXPECT_TRUE(spoiled(error));
  EXPECT_TRUE(spoiled(broadcast));
  EXPECT_TRUE(spoiled(missing));
}

TEST(ScheduleLearner, ResetNeedsTwoStepsAgain) {
  ScheduleLearner l;
  feed(l, {allreduce({0})});
  feed(l, {allreduce({0})});
  ASSERT_TRUE(l.candidate());
  l.reset();
  EXPECT_FALSE(l.candidate());
  feed(l, {allreduce({0})});
  EXPECT_FALSE(l.candidate());
  feed(l, {allreduce({0})});
  EXPECT_TRUE(l.candidate());
}

// --- the service ---

ServiceOptions fast_options(int size) {
  ServiceOptions o;
  o.size = size;
  o.cycle_time = Clock::duration::zero();
  o.fusion_threshold = 1 << 20;
  return o;
}

Ready describe(const std::vector<std::string>& names) {
  Ready r;
  for (const std::string& n : names) {
    TensorRequest t;
    t.name = n;
    t.shape = {4};
    t.op = ReduceOp::kAverage;
    r.entries.push_back({t, 0, 4});
  }
  return r;
}

Ready ids(std::vector<uint32_t> list) {
  Ready r;
  for (uint32_t id : list) r.entries.push_back({std::nullopt, id, 4});
  return r;
}

template <typename T>
std::vector<T> all_of_type(const std::vector<Outgoing>& out) {
  std::vector<T> found;
  for (const Outgoing& o : out) {
    if (auto* m = std::get_if<T>(&o.message)) {
      EXPECT_EQ(o.rank, kAllRanks);
      found.push_back(*m);
    }
  }
  return found;
}

// The schedules handed out, which ride in plan batches to every rank.
std::vector<Schedule> schedules_in(const std::vector<Outgoing>& out) {
  std::vector<Schedule> found;
  for (const PlanBatch& b : all_of_type<PlanBatch>(out)) {
    if (b.schedule) found.push_back(*b.schedule);
  }
  return found;
}

// One step of tensors a and b on every rank, each having seen every schedule handed out;
// returns what the last rank's readiness produced.
std::vector<Outgoing> step(CoordinatorService& svc, int size, bool first) {
  std::vector<Outgoing> last;
  for (int r = 0; r < size; ++r) {
    Ready ready = first ? describe({"a", "b"}) : ids({0, 1});
    ready.schedule_seen = svc.schedules_issued();  // every rank has seen every schedule
    last = svc.on_ready(r, ready, kT0);
  }
  return last;
}

TEST(CoordinatorFastPath, ScheduleHandedOutOnceTheStepRepeats) {
  CoordinatorService svc(fast_options(3));
  EXPECT_TRUE(schedules_in(step(svc, 3, true)).empty());
  std::vector<Outgoing> out = step(svc, 3, false);
  auto schedules = schedules_in(out);
  ASSERT_EQ(schedules.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<PlanBatch>(out.front().message)) << "plans go first";
  EXPECT_EQ(schedules[0].version, 1u);
  EXPECT_FALSE(schedules[0].reports) << "only the auto policy wants samples";
  ASSERT_EQ(schedules[0].entries.size(), 1u);
  EXPECT_EQ(schedules[0].entries[0].ids, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(schedules[0].entries[0].op, ReduceOp::kAverage);
  EXPECT_EQ(svc.live_schedule(), std::optional<uint64_t>(1));
}

// The step repeats, but rank 0 has already announced the next step's first tensor when the last
// plan goes out: nothing is handed out then. Once that round is planned the coordinator is
// quiescent again, between two entries, and the schedule says which entry is due next.
TEST(CoordinatorFastPath, HandedOutBetweenEntriesWithTheEntryDueNext) {
  CoordinatorService svc(fast_options(2));
  for (const char* n : {"a", "b", "c"}) {
    for (int r = 0; r < 2; ++r) svc.on_ready(r, describe({n}), kT0);
  }
  for (uint32_t id : {0u, 1u}) {
    for (int r = 0; r < 2; ++r) svc.on_ready(r, ids({id}), kT0);
  }
  svc.on_ready(0, ids({2}), kT0);
  svc.on_ready(0, ids({0}), kT0);  // early
  EXPECT_TRUE(schedules_in(svc.on_ready(1, ids({2}), kT0)).empty());
  EXPECT_FALSE(svc.live_schedule());
  auto schedules = schedules_in(svc.on_ready(1, ids({0}), kT0));
  ASSERT_EQ(schedules.size(), 1u);
  ASSERT_EQ(schedules[0].entries.size(), 3u);
  EXPECT_EQ(schedules[0].entries[0].ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(schedules[0].start, 1u) << "tensor b is due next";
}

TEST(CoordinatorFastPath, ReadinessFromAnyRankEndsTheSchedule) {
  CoordinatorService svc(fast_options(2));
  step(svc, 2, true);
  step(svc, 2, false);
  ASSERT_TRUE(svc.live_schedule());
  Ready after = ids({0, 1});
  after.schedule_seen = 1;  // sent after the rank took the schedule: it left it
  std::vector<Outgoing> out = svc.on_ready(1, after, kT0);
  auto aborts = all_of_type<FastAbort>(out);
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].version, 1u);
  EXPECT_NE(aborts[0].reason.find("rank 1"), std::string::npos) << aborts[0].reason;
  EXPECT_FALSE(svc.live_schedule());
  // The round goes on through the coordinator; a new schedule needs two more matching steps.
  out = svc.on_ready(0, after, kT0);
  EXPECT_TRUE(schedules_in(out).empty());
  out = step(svc, 2, false);
  auto schedules = schedules_in(out);
  ASSERT_EQ(schedules.size(), 1u);
  EXPECT_EQ(schedules[0].version, 2u);
}

// Readiness a rank sent before it took the schedule: the schedule took those requests over, so
// no round opens for them and the schedule goes on; a new name's description is still learned.
TEST(CoordinatorFastPath, ReadinessSentBeforeTheScheduleIsNotPlanned) {
  CoordinatorService svc(fast_options(2));
  step(svc, 2, true);
  step(svc, 2, false);
  ASSERT_TRUE(svc.live_schedule());
  Ready early = ids({0, 1});
  Ready described = describe({"late"});
  early.entries.push_back(described.entries[0]);
  std::vector<Outgoing> out = svc.on_ready(0, early, kT0);
  EXPECT_TRUE(all_of_type<FastAbort>(out).empty());
  EXPECT_EQ(svc.live_schedule(), std::optional<uint64_t>(1));
  out = svc.on_ready(1, early, kT0);
  for (const PlanBatch& b : all_of_type<PlanBatch>(out)) {
    EXPECT_TRUE(b.plans.empty()) << "no round ran from readiness the schedule took over";
  }
  // Once the ranks leave it, they announce those requests again, and the rounds run.
  svc.on_fast_exit(0, FastExit{1, "a new name"}, kT0);
  Ready again = ids({0, 1, 2});
  again.schedule_seen = 1;
  svc.on_ready(0, again, kT0);
  size_t plans = 0;
  for (const PlanBatch& b : all_of_type<PlanBatch>(svc.on_ready(1, again, kT0))) {
    plans += b.plans.size();
  }
  EXPECT_GE(plans, 1u);
  EXPECT_EQ(svc.plans_emitted(), 2u + plans) << "two steps before, then these";
}

TEST(CoordinatorFastPath, FastExitEndsItAndIsRepeatedForLateRanks) {
  CoordinatorService svc(fast_options(2));
  step(svc, 2, true);
  step(svc, 2, false);
  auto aborts = all_of_type<FastAbort>(svc.on_fast_exit(0, FastExit{1, "shutting down"}, kT0));
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_NE(aborts[0].reason.find("rank 0: shutting down"), std::string::npos);
  EXPECT_FALSE(svc.live_schedule());
  // Ended already: told again (a rank may still be waiting in an agreement for the leaver).
  aborts = all_of_type<FastAbort>(svc.on_fast_exit(1, FastExit{1, "refused"}, kT0));
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].version, 1u);
  // A version never handed out is a confused peer: ignored.
  EXPECT_TRUE(all_of_type<FastAbort>(svc.on_fast_exit(1, FastExit{9, "?"}, kT0)).empty());
}

TEST(CoordinatorFastPath, NotHandedOutWhileAnotherRoundIsOpen) {
  CoordinatorService svc(fast_options(2));
  svc.on_ready(0, describe({"c"}), kT0);  // rank 1 never sends c: its round stays open
  step(svc, 2, true);
  EXPECT_TRUE(schedules_in(step(svc, 2, false)).empty());
  EXPECT_TRUE(schedules_in(step(svc, 2, false)).empty());
  EXPECT_FALSE(svc.live_schedule());
}

TEST(CoordinatorFastPath, OffWhenDisabledOrBounded) {
  ServiceOptions off = fast_options(2);
  off.fast_path = false;
  CoordinatorService a(off);
  step(a, 2, true);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(schedules_in(step(a, 2, false)).empty());
  ServiceOptions bounded = fast_options(2);
  bounded.policy.initial = SyncMode::kBounded;
  bounded.policy.size = 2;
  bounded.policy.quorum = 1;
  CoordinatorService b(bounded);
  step(b, 2, true);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(schedules_in(step(b, 2, false)).empty());
}

TEST(CoordinatorFastPath, ReportsFeedTheAutoPolicy) {
  ServiceOptions o = fast_options(2);
  o.policy.automatic = true;
  o.policy.size = 2;
  o.policy.quorum = 1;
  o.policy.window = 4;
  // Two ranks late by turns: one of them is last in 3 of the window's 5 rounds, which the
  // default share (0.6) would call a persistent straggler.
  o.policy.persistent_share = 0.8;
  CoordinatorService svc(o);
  step(svc, 2, true);
  auto schedules = schedules_in(step(svc, 2, false));
  ASSERT_EQ(schedules.size(), 1u);
  EXPECT_TRUE(schedules[0].reports);
  // Steps of 10 ms in which one rank waits 5 ms for the other, by turns (a transient straggler;
  // one always late would be a persistent one, for which the policy stays exact).
  FastReport r0{1, 0, {}}, r1{1, 0, {}};
  for (int k = 0; k < 8; ++k) {
    const int64_t end = (kT0.time_since_epoch() + milliseconds(10 * (k + 1))).count();
    const int64_t wait = 5'000'000;
    r0.samples.push_back({end, k % 2 ? 0 : wait});
    r1.samples.push_back({end + 777, k % 2 ? wait : 0});  // another clock: only its wait is used
  }
  svc.on_fast_report(0, r0, kT0);
  std::vector<Outgoing> out = svc.on_fast_report(1, r1, kT0);
  EXPECT_EQ(svc.mode(), SyncMode::kBounded);
  auto aborts = all_of_type<FastAbort>(out);
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_NE(aborts[0].reason.find("bounded"), std::string::npos) << aborts[0].reason;
  EXPECT_FALSE(svc.live_schedule());
}

}  // namespace
}  // namespace quorum::coord
