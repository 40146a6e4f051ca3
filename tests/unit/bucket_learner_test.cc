// BucketLearner and its use by the coordinator service: the ready order of one iteration is cut
// into buckets; in later iterations a bucket goes out the moment its last member is ready,
// without waiting for the cycle time, and buckets never share a plan.
#include <gtest/gtest.h>

#include "coordinator/bucket_learner.h"
#include "coordinator/coordinator_service.h"

namespace quorum::coord {
namespace {

ReadyTensor ready(uint32_t id, size_t bytes, DataType dtype = DataType::kF32) {
  ReadyTensor t;
  t.id = id;
  t.wire_bytes = bytes;
  t.request.dtype = dtype;
  return t;
}

TEST(BucketLearner, CutsTheLastIterationIntoBuckets) {
  BucketLearner l(100);
  for (uint32_t id : {5u, 4u, 3u, 2u, 1u}) l.observe_ready(ready(id, 40));
  EXPECT_EQ(-1, l.bucket_of(5)) << "no layout before one iteration completed";
  l.observe_ready(ready(5, 40));  // iteration 2 begins: layout from iteration 1
  EXPECT_EQ(1u, l.iterations());
  EXPECT_EQ(3u, l.buckets());  // {5,4} {3,2} {1}: 40+40 <= 100 < 120
  EXPECT_EQ(l.bucket_of(5), l.bucket_of(4));
  EXPECT_NE(l.bucket_of(4), l.bucket_of(3));
  EXPECT_EQ(l.bucket_of(3), l.bucket_of(2));
  EXPECT_FALSE(l.complete(5, {5}));
  EXPECT_TRUE(l.complete(5, {5, 4}));
  l.observe_planned(1);
  EXPECT_TRUE(l.complete(1, {})) << "a member already planned this iteration counts";
}

TEST(BucketLearner, ATensorTooLargeToFuseIsABucketOfItsOwn) {
  BucketLearner l(1000, /*max_tensor_bytes=*/100);
  for (uint32_t id : {1u, 2u, 3u, 4u, 5u}) l.observe_ready(ready(id, id == 3 ? 500 : 40));
  l.observe_ready(ready(1, 40));
  EXPECT_EQ(3u, l.buckets());  // {1,2} {3} {4,5}: 3 is larger than 100, nothing joins it
  EXPECT_EQ(l.bucket_of(1), l.bucket_of(2));
  EXPECT_NE(l.bucket_of(2), l.bucket_of(3));
  EXPECT_NE(l.bucket_of(3), l.bucket_of(4));
  EXPECT_EQ(l.bucket_of(4), l.bucket_of(5));
  EXPECT_TRUE(l.complete(3, {3}));
}

TEST(BucketLearner, DifferentDtypesNeverShareABucket) {
  BucketLearner l(1000);
  l.observe_ready(ready(1, 10));
  l.observe_ready(ready(2, 10, DataType::kF64));
  l.observe_ready(ready(3, 10, DataType::kF64));
  l.observe_ready(ready(1, 10));
  EXPECT_NE(l.bucket_of(1), l.bucket_of(2));
  EXPECT_EQ(l.bucket_of(2), l.bucket_of(3));
}

// Two ranks, three 400-byte tensors per step, buckets of 800 bytes, a long cycle time.
TEST(BucketLearner, ServiceReleasesCompleteBucketsWithoutWaiting) {
  ServiceOptions o;
  o.size = 2;
  o.fusion_threshold = 1 << 20;
  o.bucket_bytes = 800;
  o.cycle_time = std::chrono::seconds(10);
  CoordinatorService svc(o);
  auto now = Clock::now();
  auto request = [](const std::string& name) {
    return TensorRequest{name, CollectiveKind::kAllreduce, ReduceOp::kSum, DataType::kF32,
                         Device::Kind::kHost, 0, {100}};
  };
  auto plans_in = [](const std::vector<Outgoing>& out) {
    std::vector<std::vector<uint32_t>> ids;
    for (const auto& o : out) {
      if (auto* b = std::get_if<PlanBatch>(&o.message)) {
        for (const auto& p : b->plans) ids.push_back(p.ids);
      }
    }
    return ids;
  };
  // Step 1 (learning): c, b, a become ready in that order; with d still partial they are held.
  std::vector<std::vector<uint32_t>> step1;
  svc.on_ready(0, Ready{{{request("d"), 0, 100}}}, now);
  for (const char* n : {"c", "b", "a"}) {
    svc.on_ready(0, Ready{{{request(n), 0, 100}}}, now);
    auto out = svc.on_ready(1, Ready{{{request(n), 0, 100}}}, now);
    for (auto& p : plans_in(out)) step1.push_back(p);
  }
  EXPECT_TRUE(step1.empty()) << "held for fusion while d is on its way";
  auto out = svc.on_ready(1, Ready{{{request("d"), 0, 100}}}, now);
  EXPECT_EQ(1u, plans_in(out).size()) << "everything goes once nothing is partial";
  // Step 2: ids are known (d=0, c=1, b=2, a=3). Layout from step 1: {c,b} {a,d}.
  svc.on_ready(0, Ready{{{std::nullopt, 0, 100}}}, now);  // d partial again
  svc.on_ready(0, Ready{{{std::nullopt, 1, 100}}}, now);
  EXPECT_TRUE(plans_in(svc.on_ready(1, Ready{{{std::nullopt, 1, 100}}}, now)).empty())
      << "c alone is half a bucket";
  svc.on_ready(0, Ready{{{std::nullopt, 2, 100}}}, now);
  auto released = plans_in(svc.on_ready(1, Ready{{{std::nullopt, 2, 100}}}, now));
  ASSERT_EQ(1u, released.size()) << "bucket {c,b} complete: out at once, no cycle wait";
  EXPECT_EQ((std::vector<uint32_t>{1, 2}), released[0]);
}

}  // namespace
}  // namespace quorum::coord

namespace quorum::coord {
namespace {

// The stall inspector, driven with a fake clock: a warning naming the missing ranks, then an
// abort that fails the round everywhere; the straggler's late request for it is skipped, and
// the next round works again.
TEST(StallInspector, WarnsThenAbortsAndRecovers) {
  ServiceOptions o;
  o.size = 3;
  o.cycle_time = std::chrono::milliseconds(0);
  o.stall_warning = std::chrono::seconds(2);
  o.stall_abort = std::chrono::seconds(5);
  std::vector<std::string> logs;
  o.log = [&](const std::string& m) { logs.push_back(m); };
  CoordinatorService svc(o);
  auto t0 = Clock::now();
  TensorRequest x{"x", CollectiveKind::kAllreduce, ReduceOp::kSum, DataType::kF32,
                  Device::Kind::kHost, 0, {4}};
  svc.on_ready(0, Ready{{{x, 0, 4}}}, t0);
  svc.on_ready(2, Ready{{{x, 0, 4}}}, t0);
  svc.on_tick(t0 + std::chrono::seconds(1));
  EXPECT_TRUE(logs.empty());
  svc.on_tick(t0 + std::chrono::seconds(3));
  ASSERT_EQ(1u, logs.size());
  EXPECT_NE(std::string::npos,
            logs[0].find("tensor 'x' was submitted by rank(s) 0,2 but not by rank(s) 1 for 3 s"))
      << logs[0];
  svc.on_tick(t0 + std::chrono::seconds(4));
  EXPECT_EQ(1u, logs.size()) << "warned once per stalled round";
  auto out = svc.on_tick(t0 + std::chrono::seconds(6));
  ASSERT_EQ(2u, out.size());
  EXPECT_TRUE(std::holds_alternative<Heartbeat>(out[0].message)) << "ticks carry a heartbeat";
  const auto& plans = std::get<PlanBatch>(out[1].message).plans;
  ASSERT_EQ(1u, plans.size());
  EXPECT_EQ(PlanKind::kError, plans[0].kind);
  EXPECT_EQ(StatusCode::kAborted, plans[0].code);
  EXPECT_EQ(0u, plans[0].message.rfind("stalled: tensor 'x'", 0)) << plans[0].message;
  // Rank 1's request for the aborted round comes at last: skipped, no round opens.
  auto late = svc.on_ready(1, Ready{{{x, 0, 4}}}, t0 + std::chrono::seconds(7));
  EXPECT_TRUE(late.empty());
  // The next round needs everyone again and runs.
  svc.on_ready(0, Ready{{{std::nullopt, 0, 4}}}, t0 + std::chrono::seconds(8));
  svc.on_ready(1, Ready{{{std::nullopt, 0, 4}}}, t0 + std::chrono::seconds(8));
  auto next = svc.on_ready(2, Ready{{{std::nullopt, 0, 4}}}, t0 + std::chrono::seconds(8));
  ASSERT_EQ(1u, next.size());
  ASSERT_EQ(1u, std::get<PlanBatch>(next[0].message).plans.size());
  EXPECT_EQ(PlanKind::kAllreduce, std::get<PlanBatch>(next[0].message).plans[0].kind);
}

}  // namespace
}  // namespace quorum::coord
