// plan_fusion: allreduces that agree on op, dtype and device share a buffer up to the threshold
// (inclusive); anything else, and any tensor larger than the threshold, gets a plan of its own;
// plans follow the order in which their first tensor became ready.
#include "coordinator/fusion_planner.h"

#include <gtest/gtest.h>

namespace quorum::coord {
namespace {

ReadyTensor ready(uint32_t id, size_t wire_bytes, ReduceOp op = ReduceOp::kSum,
                  DataType dtype = DataType::kF32, Device::Kind device = Device::Kind::kHost) {
  ReadyTensor t;
  t.id = id;
  t.request.name = "t";
  t.request.name += std::to_string(id);
  t.request.kind = CollectiveKind::kAllreduce;
  t.request.op = op;
  t.request.dtype = dtype;
  t.request.device = device;
  t.request.shape = {static_cast<int64_t>(wire_bytes / 4)};
  t.wire_bytes = wire_bytes;
  return t;
}

ReadyTensor of_kind(ReadyTensor t, CollectiveKind kind, int32_t root = 0,
                    std::vector<int64_t> dim0_per_rank = {}) {
  t.request.kind = kind;
  t.request.root = root;
  t.dim0_per_rank = std::move(dim0_per_rank);
  return t;
}

std::vector<std::vector<uint32_t>> ids_of(const std::vector<Plan>& plans) {
  std::vector<std::vector<uint32_t>> out;
  for (const Plan& p : plans) out.push_back(p.ids);
  return out;
}

using Ids = std::vector<std::vector<uint32_t>>;

TEST(FusionPlanner, SameOpDtypeDeviceFuseUpToThreshold) {
  std::vector<ReadyTensor> in = {ready(0, 100), ready(1, 200), ready(2, 300), ready(3, 400)};
  auto plans = plan_fusion(in, 1000);
  ASSERT_EQ(plans.size(), 1u);
  const Plan& p = plans[0];
  EXPECT_EQ(p.ids, (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p.kind, PlanKind::kAllreduce);
  EXPECT_EQ(p.op, ReduceOp::kSum);
  EXPECT_EQ(p.dtype, DataType::kF32);
  EXPECT_EQ(p.device, Device::Kind::kHost);
  EXPECT_EQ(p.seq, 0u);
  EXPECT_EQ(p.code, StatusCode::kOk);
  // 100+200+300 = 600 fits 700; adding 400 would not, so a new bucket starts.
  EXPECT_EQ(ids_of(plan_fusion(in, 700)), (Ids{{0, 1, 2}, {3}}));
  EXPECT_EQ(ids_of(plan_fusion(in, 500)), (Ids{{0, 1}, {2}, {3}}));
}

TEST(FusionPlanner, ExactBoundary) {
  std::vector<ReadyTensor> in = {ready(0, 600), ready(1, 400)};
  EXPECT_EQ(ids_of(plan_fusion(in, 1000)), (Ids{{0, 1}})) << "sum == threshold fuses";
  EXPECT_EQ(ids_of(plan_fusion(in, 999)), (Ids{{0}, {1}})) << "one byte short splits";
  in.push_back(ready(2, 1));
  EXPECT_EQ(ids_of(plan_fusion(in, 1000)), (Ids{{0, 1}, {2}})) << "sum == threshold + 1 splits";
  EXPECT_EQ(ids_of(plan_fusion({ready(0, 1000)}, 1000)), (Ids{{0}}));
}

TEST(FusionPlanner, DifferentOpDtypeOrDeviceGoToDifferentPlans) {
  std::vector<ReadyTensor> in = {
      ready(0, 8),
      ready(1, 8, ReduceOp::kMax),
      ready(2, 8, ReduceOp::kSum, DataType::kF16),
      ready(3, 8, ReduceOp::kSum, DataType::kF32, Device::Kind::kCuda),
      ready(4, 8),
      ready(5, 8, ReduceOp::kMax),
      ready(6, 8, ReduceOp::kSum, DataType::kF16),
      ready(7, 8, ReduceOp::kAverage),
  };
  auto plans = plan_fusion(in, 1 << 20);
  EXPECT_EQ(ids_of(plans), (Ids{{0, 4}, {1, 5}, {2, 6}, {3}, {7}}));
  ASSERT_EQ(plans.size(), 5u);
  EXPECT_EQ(plans[1].op, ReduceOp::kMax);
  EXPECT_EQ(plans[2].dtype, DataType::kF16);
  EXPECT_EQ(plans[3].device, Device::Kind::kCuda);
  EXPECT_EQ(plans[4].op, ReduceOp::kAverage);
}

TEST(FusionPlanner, TensorLargerThanThresholdGetsItsOwnPlan) {
  std::vector<ReadyTensor> in = {ready(0, 10), ready(1, 5000), ready(2, 10)};
  auto plans = plan_fusion(in, 100);
  // The big one neither joins nor closes the open bucket.
  EXPECT_EQ(ids_of(plans), (Ids{{0, 2}, {1}}));
  EXPECT_EQ(plans[1].kind, PlanKind::kAllreduce);
  EXPECT_EQ(ids_of(plan_fusion({ready(0, 101), ready(1, 101)}, 100)), (Ids{{0}, {1}}));
}

TEST(FusionPlanner, TensorLargerThanTheFusionLimitGetsItsOwnPlan) {
  std::vector<ReadyTensor> in = {ready(0, 10), ready(1, 300), ready(2, 10), ready(3, 200)};
  // Threshold 1000 would fuse them all; a 200-byte limit keeps the 300-byte one apart.
  EXPECT_EQ(ids_of(plan_fusion(in, 1000, nullptr, 200)), (Ids{{0, 2, 3}, {1}}));
  EXPECT_EQ(ids_of(plan_fusion(in, 1000)), (Ids{{0, 1, 2, 3}})) << "no limit by default";
}

TEST(FusionPlanner, ThresholdZeroMeansNoFusion) {
  std::vector<ReadyTensor> in = {ready(0, 4), ready(1, 4), ready(2, 1), ready(3, 4)};
  EXPECT_EQ(ids_of(plan_fusion(in, 0)), (Ids{{0}, {1}, {2}, {3}}));
  std::vector<ReadyTensor> empty = {ready(0, 0), ready(1, 0)};
  EXPECT_EQ(ids_of(plan_fusion(empty, 0)), (Ids{{0}, {1}})) << "even 0-byte tensors stay apart";
}

TEST(FusionPlanner, BroadcastAndAllgatherAreNeverFused) {
  std::vector<ReadyTensor> in = {
      of_kind(ready(0, 8), CollectiveKind::kBroadcast, 2),
      of_kind(ready(1, 8), CollectiveKind::kBroadcast, 2),
      of_kind(ready(2, 8), CollectiveKind::kAllgather, 0, {1, 3}),
      of_kind(ready(3, 8), CollectiveKind::kAllgather, 0, {2, 2}),
      ready(4, 8),
  };
  auto plans = plan_fusion(in, 1 << 20);
  EXPECT_EQ(ids_of(plans), (Ids{{0}, {1}, {2}, {3}, {4}}));
  ASSERT_EQ(plans.size(), 5u);
  EXPECT_EQ(plans[0].kind, PlanKind::kBroadcast);
  EXPECT_EQ(plans[0].root, 2);
  EXPECT_EQ(plans[2].kind, PlanKind::kAllgather);
  EXPECT_EQ(plans[2].dim0_per_rank, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(plans[3].dim0_per_rank, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(plans[4].kind, PlanKind::kAllreduce);
  EXPECT_TRUE(plans[4].dim0_per_rank.empty());
}

TEST(FusionPlanner, PlansFollowReadyOrder) {
  std::vector<ReadyTensor> in = {
      ready(9, 8, ReduceOp::kMax),
      of_kind(ready(3, 8), CollectiveKind::kBroadcast, 1),
      ready(5, 8),
      ready(1, 8, ReduceOp::kMax),
      of_kind(ready(7, 8), CollectiveKind::kAllgather, 0, {1}),
      ready(2, 8),
  };
  // Each plan sits where its first tensor became ready; later tensors join in ready order.
  EXPECT_EQ(ids_of(plan_fusion(in, 1 << 20)), (Ids{{9, 1}, {3}, {5, 2}, {7}}));
  // A full bucket closes; the next matching tensor opens one after every earlier plan.
  std::vector<ReadyTensor> in2 = {ready(0, 60), ready(1, 50), ready(2, 8, ReduceOp::kMin),
                                  ready(3, 30), ready(4, 60)};
  EXPECT_EQ(ids_of(plan_fusion(in2, 100)), (Ids{{0}, {1, 3}, {2}, {4}}));
}

TEST(FusionPlanner, EmptyInputGivesNoPlans) { EXPECT_TRUE(plan_fusion({}, 100).empty()); }

}  // namespace
}  // namespace quorum::coord
