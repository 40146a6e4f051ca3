// CoordinatorService driven directly by fake ranks (no sockets): id assignment, sequence
// numbers, mismatch and departure error plans, and holding ready allreduces for the cycle time.
#include "coordinator/coordinator_service.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace quorum::coord {
namespace {

using std::chrono::milliseconds;
const Clock::time_point kT0 = Clock::time_point{} + std::chrono::seconds(1000);

TensorRequest request(const std::string& name, std::vector<int64_t> shape = {4},
                      CollectiveKind kind = CollectiveKind::kAllreduce) {
  TensorRequest r;
  r.name = name;
  r.kind = kind;
  r.shape = std::move(shape);
  return r;
}

Ready full(std::vector<TensorRequest> requests) {
  Ready r;
  for (auto& t : requests) {
    int64_t dim0 = t.shape.empty() ? 0 : t.shape[0];
    r.entries.push_back({std::move(t), 0, dim0});
  }
  return r;
}
Ready full(const std::string& name) { return full({request(name)}); }

Ready by_id(uint32_t id, int64_t dim0 = 4) {
  Ready r;
  r.entries.push_back({std::nullopt, id, dim0});
  return r;
}

ServiceOptions options(int size, Clock::duration cycle = Clock::duration::zero(),
                       size_t threshold = 1 << 20) {
  ServiceOptions o;
  o.size = size;
  o.cycle_time = cycle;
  o.fusion_threshold = threshold;
  // The coordinator path: these Readys say nothing of schedules (fast_schedule_test's do).
  o.fast_path = false;
  return o;
}

// The one PlanBatch, addressed to every rank, that `out` must consist of.
PlanBatch only_batch(const std::vector<Outgoing>& out) {
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1 || !std::holds_alternative<PlanBatch>(out[0].message)) {
    ADD_FAILURE() << "expected exactly one PlanBatch";
    return {};
  }
  EXPECT_EQ(out[0].rank, kAllRanks);
  return std::get<PlanBatch>(out[0].message);
}

std::vector<std::vector<uint32_t>> plan_ids(const PlanBatch& b) {
  std::vector<std::vector<uint32_t>> ids;
  for (const Plan& p : b.plans) ids.push_back(p.ids);
  return ids;
}

using Ids = std::vector<std::vector<uint32_t>>;

TEST(CoordinatorService, IdsAssignedOnFirstFullRequestAndAnnouncedOnce) {
  CoordinatorService svc(options(2));
  PlanBatch b = only_batch(svc.on_ready(0, full("a"), kT0));
  EXPECT_EQ(b.assignments, (std::vector<IdAssignment>{{0, "a"}}));
  EXPECT_TRUE(b.plans.empty());
  b = only_batch(svc.on_ready(1, full("a"), kT0));
  EXPECT_TRUE(b.assignments.empty()) << "'a' was announced already";
  ASSERT_EQ(b.plans.size(), 1u);
  EXPECT_EQ(b.plans[0].kind, PlanKind::kAllreduce);
  EXPECT_EQ(b.plans[0].ids, (std::vector<uint32_t>{0}));
  // A second name gets the next id, announced with the first batch after it is seen.
  b = only_batch(svc.on_ready(1, full({request("b"), request("c")}), kT0));
  EXPECT_EQ(b.assignments, (std::vector<IdAssignment>{{1, "b"}, {2, "c"}}));
  EXPECT_TRUE(b.plans.empty());
  b = only_batch(svc.on_ready(0, full({request("c"), request("b")}), kT0));
  EXPECT_TRUE(b.assignments.empty());
  EXPECT_EQ(plan_ids(b), (Ids{{2, 1}}));
}

TEST(CoordinatorService, IdOnlyReadinessAfterwards) {
  CoordinatorService svc(options(2));
  svc.on_ready(0, full({request("g", {3, 2}, CollectiveKind::kAllgather)}), kT0);
  svc.on_ready(1, full({request("g", {5, 2}, CollectiveKind::kAllgather)}), kT0);
  EXPECT_TRUE(svc.on_ready(0, by_id(0, 7), kT0).empty()) << "nothing new to say yet";
  PlanBatch b = only_batch(svc.on_ready(1, by_id(0, 1), kT0));
  ASSERT_EQ(b.plans.size(), 1u);
  EXPECT_EQ(b.plans[0].kind, PlanKind::kAllgather);
  EXPECT_EQ(b.plans[0].ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(b.plans[0].dim0_per_rank, (std::vector<int64_t>{7, 1})) << "dim0 of this round";
  EXPECT_EQ(b.plans[0].seq, 1u);
}

TEST(CoordinatorService, IdNeverDescribedByThisRank) {
  CoordinatorService svc(options(2));
  svc.on_ready(0, full("a"), kT0);
  PlanBatch b = only_batch(svc.on_ready(1, by_id(0), kT0));
  ASSERT_EQ(b.plans.size(), 1u);
  EXPECT_EQ(b.plans[0].kind, PlanKind::kError);
  EXPECT_EQ(b.plans[0].code, StatusCode::kInternal);
  EXPECT_EQ(b.plans[0].message,
            "tensor 'a': rank 1 referred to it by id without ever describing it");
  EXPECT_TRUE(svc.on_ready(1, by_id(99), kT0).empty()) << "an id no one named is dropped";
}

TEST(CoordinatorService, PlansSequenceNumberedFromZeroWithoutGaps) {
  CoordinatorService svc(options(2));
  std::vector<uint64_t> seqs;
  auto collect = [&](const std::vector<Outgoing>& out) {
    for (const Outgoing& o : out) {
      for (const Plan& p : std::get<PlanBatch>(o.message).plans) seqs.push_back(p.seq);
    }
  };
  for (int step = 0; step < 3; ++step) {
    collect(
        svc.on_ready(0, full({request("x"), request("y", {2}, CollectiveKind::kBroadcast)}), kT0));
    collect(
        svc.on_ready(1, full({request("y", {2}, CollectiveKind::kBroadcast), request("x")}), kT0));
    collect(svc.on_ready(0, full({request("bad", {1})}), kT0));
    collect(svc.on_ready(1, full({request("bad", {2})}), kT0));  // an error plan
  }
  std::vector<uint64_t> expected(seqs.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = i;
  EXPECT_EQ(seqs.size(), 9u);
  EXPECT_EQ(seqs, expected);
  EXPECT_EQ(svc.plans_emitted(), seqs.size());
}

TEST(CoordinatorService, MismatchYieldsErrorPlanNamingTheTensor) {
  CoordinatorService svc(options(2));
  svc.on_ready(0, full({request("fc.weight", {10, 5})}), kT0);
  PlanBatch b = only_batch(svc.on_ready(1, full({request("fc.weight", {10, 6})}), kT0));
  ASSERT_EQ(b.plans.size(), 1u);
  const Plan& p = b.plans[0];
  EXPECT_EQ(p.kind, PlanKind::kError);
  EXPECT_EQ(p.code, StatusCode::kMismatch);
  EXPECT_EQ(p.ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(p.message, "tensor 'fc.weight': shape [10,5] on rank 0 but [10,6] on rank 1");
}

TEST(CoordinatorService, HeldWhileAnotherAllreduceIsPartialReleasedAtDeadline) {
  CoordinatorService svc(options(2, milliseconds(10)));
  only_batch(svc.on_ready(0, full({request("a"), request("b")}), kT0));  // assignments only
  EXPECT_FALSE(svc.deadline());
  Clock::time_point t1 = kT0 + milliseconds(1);
  EXPECT_TRUE(svc.on_ready(1, full("a"), t1).empty()) << "'a' is held for 'b'";
  ASSERT_TRUE(svc.deadline());
  EXPECT_EQ(*svc.deadline(), t1 + milliseconds(10));
  EXPECT_TRUE(svc.on_timer(t1 + milliseconds(9)).empty());
  PlanBatch b = only_batch(svc.on_timer(*svc.deadline()));
  EXPECT_EQ(plan_ids(b), (Ids{{0}}));
  EXPECT_EQ(b.plans[0].seq, 0u);
  EXPECT_FALSE(svc.deadline());
  // 'b' completes with nothing else pending: out at once.
  b = only_batch(svc.on_ready(1, full("b"), t1 + milliseconds(20)));
  EXPECT_EQ(plan_ids(b), (Ids{{1}}));
}

TEST(CoordinatorService, HeldTensorsFuseWhenThePartialOneCompletes) {
  CoordinatorService svc(options(2, milliseconds(10)));
  svc.on_ready(0, full({request("a"), request("b")}), kT0);
  EXPECT_TRUE(svc.on_ready(1, full("a"), kT0).empty());
  PlanBatch b = only_batch(svc.on_ready(1, full("b"), kT0 + milliseconds(2)));
  EXPECT_EQ(plan_ids(b), (Ids{{0, 1}}));
}

TEST(CoordinatorService, NotHeldWhenNothingElseIsPending) {
  CoordinatorService svc(options(2, std::chrono::seconds(1)));
  svc.on_ready(0, full("a"), kT0);
  EXPECT_EQ(plan_ids(only_batch(svc.on_ready(1, full("a"), kT0))), (Ids{{0}}));
  EXPECT_FALSE(svc.deadline());
  // A partial broadcast cannot join a fusion buffer, so it does not hold an allreduce back.
  svc.on_ready(0, full({request("c"), request("bc", {2}, CollectiveKind::kBroadcast)}), kT0);
  EXPECT_EQ(plan_ids(only_batch(svc.on_ready(1, full("c"), kT0))), (Ids{{1}}));
}

TEST(CoordinatorService, LearnedBucketWaitsForItsOtherMembers) {
  CoordinatorService svc(options(2, milliseconds(10)));
  // Step 1: a, b, c one after another, each complete before the next is submitted.
  Clock::time_point t = kT0;
  for (const char* n : {"a", "b", "c"}) {
    svc.on_ready(0, full(n), t);
    EXPECT_EQ(only_batch(svc.on_ready(1, full(n), t)).plans.size(), 1u) << n;
    t += milliseconds(1);
  }
  // Step 2: the learner has seen the order; 'a' alone is complete with nothing pending, but
  // its bucket (a, b, c) is not, so it waits for the others instead of going alone.
  svc.on_ready(0, by_id(0), t);
  EXPECT_TRUE(svc.on_ready(1, by_id(0), t).empty()) << "held for the rest of its bucket";
  ASSERT_TRUE(svc.deadline());
  EXPECT_EQ(*svc.deadline(), t + milliseconds(10)) << "at most the cycle time";
  svc.on_ready(0, full({request("b"), request("c")}), t + milliseconds(1));
  EXPECT_EQ(plan_ids(only_batch(svc.on_ready(1, full({request("b"), request("c")}),
                                             t + milliseconds(1)))),
            (Ids{{0, 1, 2}}));
  // Step 3: the same, and a bucket that never completes goes at the cycle time.
  t += milliseconds(5);
  svc.on_ready(0, by_id(0), t);
  EXPECT_TRUE(svc.on_ready(1, by_id(0), t).empty());
  EXPECT_EQ(plan_ids(only_batch(svc.on_timer(t + milliseconds(10)))), (Ids{{0}}));
}

TEST(CoordinatorService, HeldBytesReachingTheThresholdAreReleased) {
  CoordinatorService svc(options(2, std::chrono::seconds(1), 16));
  svc.on_ready(0, full({request("a"), request("b")}), kT0);  // 4 f32 = 16 bytes each
  EXPECT_EQ(plan_ids(only_batch(svc.on_ready(1, full("a"), kT0))), (Ids{{0}}));
}

TEST(CoordinatorService, GoodbyeAbortsPendingAcksAndFailsLaterRequests) {
  CoordinatorService svc(options(2));
  svc.on_ready(0, full("a"), kT0);
  std::vector<Outgoing> out = svc.on_goodbye(1, kT0);
  EXPECT_TRUE(svc.departed(1));
  EXPECT_FALSE(svc.departed(0));
  EXPECT_FALSE(svc.all_departed());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].rank, kAllRanks);
  EXPECT_EQ(out[1].rank, 1) << "the departing rank still gets the flushed batch";
  EXPECT_EQ(out[2].rank, 1);
  EXPECT_TRUE(std::holds_alternative<GoodbyeAck>(out[2].message)) << "ack comes last";
  ASSERT_TRUE(std::holds_alternative<PlanBatch>(out[0].message));
  ASSERT_TRUE(std::holds_alternative<PlanBatch>(out[1].message));
  const PlanBatch& b = std::get<PlanBatch>(out[0].message);
  EXPECT_EQ(std::get<PlanBatch>(out[1].message).plans, b.plans);
  ASSERT_EQ(b.plans.size(), 1u);
  EXPECT_EQ(b.plans[0].kind, PlanKind::kError);
  EXPECT_EQ(b.plans[0].code, StatusCode::kAborted);
  EXPECT_EQ(b.plans[0].ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(b.plans[0].message, "tensor 'a': rank 1 has shut down before every rank submitted it");

  PlanBatch later = only_batch(svc.on_ready(0, full("c"), kT0));
  EXPECT_EQ(later.assignments, (std::vector<IdAssignment>{{1, "c"}}));
  ASSERT_EQ(later.plans.size(), 1u);
  EXPECT_EQ(later.plans[0].code, StatusCode::kAborted);
  EXPECT_EQ(later.plans[0].message, "tensor 'c': rank 1 has shut down");
  later = only_batch(svc.on_ready(0, by_id(0), kT0));
  ASSERT_EQ(later.plans.size(), 1u);
  EXPECT_EQ(later.plans[0].code, StatusCode::kAborted);
  EXPECT_EQ(later.plans[0].seq, 2u);

  out = svc.on_goodbye(0, kT0);
  ASSERT_EQ(out.size(), 1u) << "nothing to flush: only the ack";
  EXPECT_EQ(out[0].rank, 0);
  EXPECT_TRUE(std::holds_alternative<GoodbyeAck>(out[0].message));
  EXPECT_TRUE(svc.all_departed());
}

TEST(CoordinatorService, GoodbyeFlushesHeldTensorsBeforeTheAck) {
  CoordinatorService svc(options(2, milliseconds(10)));
  svc.on_ready(0, full({request("a"), request("b")}), kT0);
  EXPECT_TRUE(svc.on_ready(1, full("a"), kT0).empty());
  std::vector<Outgoing> out = svc.on_goodbye(1, kT0 + milliseconds(1));
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(std::holds_alternative<PlanBatch>(out[0].message));
  const PlanBatch& b = std::get<PlanBatch>(out[0].message);
  ASSERT_EQ(b.plans.size(), 2u);
  EXPECT_EQ(b.plans[0].kind, PlanKind::kError) << "'b' never reached rank 1";
  EXPECT_EQ(b.plans[0].ids, (std::vector<uint32_t>{1}));
  EXPECT_EQ(b.plans[1].kind, PlanKind::kAllreduce) << "'a' is complete: rank 1 still runs it";
  EXPECT_EQ(b.plans[1].ids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(out[1].rank, 1);
  EXPECT_TRUE(std::holds_alternative<GoodbyeAck>(out[2].message));
  EXPECT_FALSE(svc.deadline());
}

TEST(CoordinatorService, LostRankFailsHeldAndPendingTensors) {
  CoordinatorService svc(options(2, milliseconds(10)));
  svc.on_ready(0, full({request("a"), request("b")}), kT0);
  EXPECT_TRUE(svc.on_ready(1, full("a"), kT0).empty());
  std::vector<Outgoing> out = svc.on_lost(1, "connection reset", kT0);
  // First every rank hears which rank failed (so collectives in flight are abandoned) ...
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<PeerFailed>(out[0].message));
  EXPECT_EQ(out[0].rank, kAllRanks);
  EXPECT_EQ(std::get<PeerFailed>(out[0].message).rank, 1);
  // ... then the error plans for what was pending.
  PlanBatch b = only_batch({out[1]});
  EXPECT_TRUE(svc.departed(1));
  ASSERT_EQ(b.plans.size(), 2u);
  std::vector<uint32_t> failed;
  for (const Plan& p : b.plans) {
    EXPECT_EQ(p.kind, PlanKind::kError);
    EXPECT_EQ(p.code, StatusCode::kAborted);
    EXPECT_NE(p.message.find("rank 1 failed (connection reset)"),
              std::string::npos)
        << p.message;
    failed.insert(failed.end(), p.ids.begin(), p.ids.end());
  }
  std::sort(failed.begin(), failed.end());
  EXPECT_EQ(failed, (std::vector<uint32_t>{0, 1}));
  EXPECT_FALSE(svc.deadline());
  EXPECT_EQ(only_batch(svc.on_ready(0, by_id(0), kT0)).plans.at(0).code, StatusCode::kAborted);
}

TEST(CoordinatorService, SingleRankRunsAtOnce) {
  CoordinatorService svc(options(1, milliseconds(5)));
  PlanBatch b = only_batch(svc.on_ready(0, full("solo"), kT0));
  EXPECT_EQ(b.assignments, (std::vector<IdAssignment>{{0, "solo"}}));
  EXPECT_EQ(plan_ids(b), (Ids{{0}}));
}

TEST(CoordinatorService, CudaPlansLetNcclChooseUnderAuto) {
  CoordinatorService svc(options(2));  // no fixed algorithm: auto
  TensorRequest r = request("cuda.grad", {1 << 20});
  r.device = Device::Kind::kCuda;
  svc.on_ready(0, full({r}), kT0);
  PlanBatch b = only_batch(svc.on_ready(1, full({r}), kT0));
  ASSERT_EQ(b.plans.size(), 1u);
  EXPECT_EQ(b.plans[0].device, Device::Kind::kCuda);
  EXPECT_EQ(b.plans[0].algorithm, static_cast<uint8_t>(Algorithm::kNative));
}

// Learned buckets are sized from the fitted model of the algorithm they would run, and only
// re-cut for a change of more than 2x: timings of another algorithm with a very different fit
// must not swing them.
TEST(CoordinatorService, BucketSizeFollowsTheFastestFitAndIgnoresSmallMoves) {
  ServiceOptions o = options(2, Clock::duration::zero(), size_t{64} << 20);
  CoordinatorService svc(o);
  EXPECT_EQ(size_t{1} << 20, svc.learner().bucket_bytes());
  // Ring: 50 us + n / 1 GB/s per collective at 2 ranks (alpha 25 us per message): 40 a/b = 1 MB.
  // Tree: 5 ms latency, much slower at every size this test uses.
  for (int i = 0; i < 32; ++i) {
    const size_t n = size_t{4096} << (i % 8);
    svc.observe(Algorithm::kRing, n, 50e-6 + static_cast<double>(n) * 1e-9);
    svc.observe(Algorithm::kTree, n, 5e-3 + static_cast<double>(n) * 1e-10);
  }
  EXPECT_EQ(size_t{1} << 20, svc.learner().bucket_bytes())
      << "ring's target (1 MB) is within 2x of the initial 1 MiB; tree's is not used";
  // Ring's latency grows 8x (target 8 MB): the buckets follow once the target is past 2x, to
  // within 2x of it.
  for (int i = 0; i < 600; ++i) {
    const size_t n = size_t{4096} << (i % 8);
    svc.observe(Algorithm::kRing, n, 400e-6 + static_cast<double>(n) * 1e-9);
  }
  const auto now = static_cast<double>(svc.learner().bucket_bytes());
  EXPECT_GT(now, 4e6);
  EXPECT_LE(now, 16e6);
}

}  // namespace
}  // namespace quorum::coord
