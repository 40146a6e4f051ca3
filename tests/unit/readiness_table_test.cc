// ReadinessTable: a round completes only when every rank has submitted, in any order; the ready
// tensor carries allgather's per-rank first dimension and its wire size; disagreeing ranks get a
// message naming the tensor, the field and the ranks on each side.
#include "coordinator/readiness_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace quorum::coord {
namespace {

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::seconds(100);

TensorRequest allreduce(std::string name, std::vector<int64_t> shape,
                        DataType dtype = DataType::kF32, ReduceOp op = ReduceOp::kSum) {
  TensorRequest r;
  r.name = std::move(name);
  r.kind = CollectiveKind::kAllreduce;
  r.op = op;
  r.dtype = dtype;
  r.shape = std::move(shape);
  return r;
}

TensorRequest with_kind(TensorRequest r, CollectiveKind kind, int32_t root = 0) {
  r.kind = kind;
  r.root = root;
  return r;
}

int64_t dim0(const TensorRequest& r) { return r.shape.empty() ? 0 : r.shape[0]; }

// Submits `by_rank[r]` for every rank in `order`; expects only the last to complete the round.
RoundOutcome run_round(ReadinessTable& table, uint32_t id,
                       const std::vector<TensorRequest>& by_rank, std::vector<int> order = {}) {
  if (order.empty()) {
    order.resize(by_rank.size());
    std::iota(order.begin(), order.end(), 0);
  }
  for (size_t i = 0; i + 1 < order.size(); ++i) {
    const TensorRequest& r = by_rank[static_cast<size_t>(order[i])];
    EXPECT_FALSE(table.submit(order[i], id, r, dim0(r), kT0).has_value()) << "rank " << order[i];
  }
  const TensorRequest& last = by_rank[static_cast<size_t>(order.back())];
  auto out = table.submit(order.back(), id, last, dim0(last), kT0 + std::chrono::milliseconds(3));
  EXPECT_TRUE(out.has_value());
  return out ? *out : RoundOutcome{};
}

std::string mismatch(const std::vector<TensorRequest>& by_rank) {
  ReadinessTable table(static_cast<int>(by_rank.size()));
  RoundOutcome out = run_round(table, 9, by_rank);
  EXPECT_FALSE(out.ready.has_value());
  EXPECT_EQ(out.id, 9u);
  EXPECT_EQ(out.error, describe_mismatch(by_rank));
  return out.error;
}

TEST(ReadinessTable, CompletesOnlyWhenEveryRankSubmitted) {
  ReadinessTable table(3);
  auto t = allreduce("w", {4, 2});
  EXPECT_FALSE(table.submit(0, 5, t, 4, kT0));
  EXPECT_EQ(table.pending(), 1u);
  EXPECT_FALSE(table.submit(2, 5, t, 4, kT0 + std::chrono::milliseconds(1)));
  auto out = table.submit(1, 5, t, 4, kT0 + std::chrono::milliseconds(2));
  ASSERT_TRUE(out);
  ASSERT_TRUE(out->ready) << out->error;
  EXPECT_EQ(out->id, 5u);
  EXPECT_TRUE(out->error.empty());
  EXPECT_EQ(out->ready->id, 5u);
  EXPECT_EQ(out->ready->request, t);
  EXPECT_EQ(out->ready->wire_bytes, 4u * 2 * 4);
  EXPECT_TRUE(out->ready->dim0_per_rank.empty());
  EXPECT_EQ(out->ready->first_arrival, kT0);
  EXPECT_EQ(out->ready->last_arrival, kT0 + std::chrono::milliseconds(2));
  EXPECT_EQ(table.pending(), 0u);
  // The next round of the same id starts afresh.
  EXPECT_FALSE(table.submit(1, 5, t, 4, kT0));
  EXPECT_EQ(table.pending(), 1u);
}

TEST(ReadinessTable, AnyOrderOfRanks) {
  std::vector<int> order = {0, 1, 2, 3};
  do {
    ReadinessTable table(4);
    std::vector<TensorRequest> all(4, allreduce("g", {3}));
    RoundOutcome out = run_round(table, 1, all, order);
    ASSERT_TRUE(out.ready) << out.error;
    EXPECT_EQ(out.ready->wire_bytes, 12u);
  } while (std::next_permutation(order.begin(), order.end()));
}

TEST(ReadinessTable, SeparateIdsAreSeparateRounds) {
  ReadinessTable table(2);
  auto a = allreduce("a", {1});
  auto b = allreduce("b", {1});
  EXPECT_FALSE(table.submit(0, 0, a, 1, kT0));
  EXPECT_FALSE(table.submit(1, 1, b, 1, kT0));
  EXPECT_EQ(table.pending(), 2u);
  auto out = table.submit(1, 0, a, 1, kT0);
  ASSERT_TRUE(out && out->ready);
  EXPECT_EQ(out->ready->request.name, "a");
  EXPECT_EQ(table.pending(), 1u);
}

TEST(ReadinessTable, AllgatherCarriesDim0PerRankAndSummedWireBytes) {
  auto base = with_kind(allreduce("emb", {0, 5}, DataType::kF64), CollectiveKind::kAllgather);
  std::vector<TensorRequest> by_rank(3, base);
  by_rank[0].shape[0] = 2;
  by_rank[1].shape[0] = 0;
  by_rank[2].shape[0] = 7;
  ReadinessTable table(3);
  RoundOutcome out = run_round(table, 4, by_rank, {2, 0, 1});
  ASSERT_TRUE(out.ready) << out.error;
  EXPECT_EQ(out.ready->dim0_per_rank, (std::vector<int64_t>{2, 0, 7}));
  EXPECT_EQ(out.ready->wire_bytes, (2u + 0 + 7) * 5 * 8);
  EXPECT_EQ(out.ready->request.name, "emb");
}

TEST(ReadinessTable, HalfPrecisionCountsFourBytesPerElement) {
  EXPECT_EQ(wire_bytes_of(allreduce("h", {10, 5}, DataType::kF16), 10), 200u);
  EXPECT_EQ(wire_bytes_of(allreduce("h", {10, 5}, DataType::kBF16), 3), 60u);
  EXPECT_EQ(wire_bytes_of(allreduce("h", {10, 5}, DataType::kU8), 10), 50u);
  EXPECT_EQ(wire_bytes_of(allreduce("h", {10, 5}, DataType::kI64), 10), 400u);
  EXPECT_EQ(wire_bytes_of(allreduce("scalar", {}, DataType::kF16), 0), 4u);
  ReadinessTable table(2);
  std::vector<TensorRequest> all(2, allreduce("h", {10, 5}, DataType::kF16));
  RoundOutcome out = run_round(table, 0, all);
  ASSERT_TRUE(out.ready);
  EXPECT_EQ(out.ready->wire_bytes, 200u);
}

TEST(ReadinessTable, ShapeMismatchMessage) {
  auto a = allreduce("fc.weight", {10, 5});
  auto b = allreduce("fc.weight", {10, 6});
  EXPECT_EQ(mismatch({a, b, a}),
            "tensor 'fc.weight': shape [10,5] on ranks 0,2 but [10,6] on rank 1");
  EXPECT_EQ(mismatch({a, b}), "tensor 'fc.weight': shape [10,5] on rank 0 but [10,6] on rank 1");
  auto c = allreduce("fc.weight", {10});
  EXPECT_EQ(mismatch({a, b, c}),
            "tensor 'fc.weight': shape [10,5] on rank 0 but [10,6] on rank 1, [10] on rank 2");
  // For an allreduce the first dimension must agree too.
  EXPECT_EQ(mismatch({allreduce("x", {3, 2}), allreduce("x", {4, 2})}),
            "tensor 'x': shape [3,2] on rank 0 but [4,2] on rank 1");
}

TEST(ReadinessTable, DtypeOpRootAndKindMismatches) {
  auto f32 = allreduce("t", {4});
  auto f16 = allreduce("t", {4}, DataType::kF16);
  EXPECT_EQ(mismatch({f32, f32, f16}), "tensor 't': dtype f32 on ranks 0,1 but f16 on rank 2");
  auto mx = allreduce("t", {4}, DataType::kF32, ReduceOp::kMax);
  EXPECT_EQ(mismatch({f32, mx}), "tensor 't': reduce op sum on rank 0 but max on rank 1");
  auto b0 = with_kind(f32, CollectiveKind::kBroadcast, 0);
  auto b1 = with_kind(f32, CollectiveKind::kBroadcast, 1);
  EXPECT_EQ(mismatch({b0, b1, b1}), "tensor 't': root 0 on rank 0 but 1 on ranks 1,2");
  EXPECT_EQ(mismatch({f32, b0}),
            "tensor 't': operation allreduce on rank 0 but broadcast on rank 1");
  // The op of a broadcast and the root of an allreduce are not compared.
  EXPECT_EQ(describe_mismatch({b0, with_kind(mx, CollectiveKind::kBroadcast, 0)}), "");
  auto r1 = f32;
  r1.root = 1;
  EXPECT_EQ(describe_mismatch({f32, r1}), "");
  auto cuda = f32;
  cuda.device = Device::Kind::kCuda;
  EXPECT_NE(mismatch({f32, cuda}).find("device host on rank 0 but cuda on rank 1"),
            std::string::npos);
}

TEST(ReadinessTable, AllgatherFirstDimMayDifferLaterDimsMayNot) {
  auto g = [](std::vector<int64_t> shape) {
    return with_kind(allreduce("ag", std::move(shape)), CollectiveKind::kAllgather);
  };
  EXPECT_EQ(describe_mismatch({g({1, 4, 2}), g({9, 4, 2}), g({0, 4, 2})}), "");
  std::string m = mismatch({g({1, 4, 2}), g({9, 4, 3})});
  EXPECT_EQ(m, "tensor 'ag': shape after the first dimension [4,2] on rank 0 but [4,3] on rank 1");
  m = mismatch({g({1, 4}), g({1, 4, 1})});
  EXPECT_EQ(m.rfind("tensor 'ag': ", 0), 0u) << m;
  EXPECT_NE(m.find("number of dimensions 2 on rank 0 but 3 on rank 1"), std::string::npos) << m;
}

TEST(ReadinessTable, SameRankTwiceInOneRoundIsAnError) {
  ReadinessTable table(3);
  auto t = allreduce("dup", {2});
  EXPECT_FALSE(table.submit(1, 3, t, 2, kT0));
  auto out = table.submit(1, 3, t, 2, kT0);
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out->ready.has_value());
  EXPECT_EQ(out->id, 3u);
  EXPECT_EQ(out->error, "tensor 'dup': rank 1 submitted it twice in one round");
  // The first submission still counts: the other two ranks complete the round.
  EXPECT_FALSE(table.submit(0, 3, t, 2, kT0));
  auto done = table.submit(2, 3, t, 2, kT0);
  ASSERT_TRUE(done && done->ready);
}

TEST(ReadinessTable, HasPartialAllreduceAndTakeAllPending) {
  ReadinessTable table(2);
  EXPECT_FALSE(table.has_partial_allreduce());
  auto bc = with_kind(allreduce("b", {1}), CollectiveKind::kBroadcast);
  auto ag = with_kind(allreduce("g", {1}), CollectiveKind::kAllgather);
  EXPECT_FALSE(table.submit(0, 1, bc, 1, kT0));
  EXPECT_FALSE(table.submit(1, 2, ag, 1, kT0));
  EXPECT_FALSE(table.has_partial_allreduce()) << "only broadcast and allgather are partial";
  auto ar = allreduce("a", {1});
  EXPECT_FALSE(table.submit(1, 3, ar, 1, kT0));
  EXPECT_TRUE(table.has_partial_allreduce());
  ASSERT_TRUE(table.submit(0, 3, ar, 1, kT0));
  EXPECT_FALSE(table.has_partial_allreduce()) << "a complete round is no longer partial";
  EXPECT_FALSE(table.submit(0, 4, ar, 1, kT0));
  EXPECT_TRUE(table.has_partial_allreduce());
  EXPECT_EQ(table.pending(), 3u);
  std::vector<uint32_t> ids = table.take_all_pending();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint32_t>{1, 2, 4}));
  EXPECT_EQ(table.pending(), 0u);
  EXPECT_FALSE(table.has_partial_allreduce());
  EXPECT_TRUE(table.take_all_pending().empty());
}

TEST(ReadinessTable, SingleRankCompletesAtOnce) {
  ReadinessTable table(1);
  auto out = table.submit(0, 0, allreduce("solo", {3}), 3, kT0);
  ASSERT_TRUE(out && out->ready);
  EXPECT_EQ(out->ready->first_arrival, kT0);
  EXPECT_EQ(out->ready->last_arrival, kT0);
}

}  // namespace
}  // namespace quorum::coord
