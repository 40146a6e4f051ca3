// The vote element of a voted fast-path entry: for every op, every rank count and every set of
// leaving ranks, the reduced vote (f32 and f64, as the wire holds it, through the same count
// helpers the engine uses) says "all stayed" exactly when no rank left.
#include "runtime/fast_vote.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/wire_count.h"

namespace quorum {
namespace {

template <typename T>
T reduce(ReduceOp op, const std::vector<T>& v) {
  T acc = v[0];
  for (size_t i = 1; i < v.size(); ++i) {
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAverage: acc += v[i]; break;
      case ReduceOp::kMin: acc = std::min(acc, v[i]); break;
      case ReduceOp::kMax: acc = std::max(acc, v[i]); break;
      case ReduceOp::kProduct: acc *= v[i]; break;
    }
  }
  if (op == ReduceOp::kAverage) acc /= static_cast<T>(v.size());
  return acc;
}

template <typename T>
void check_every_subset(DataType wire) {
  for (int op_i = 0; op_i < kNumReduceOps; ++op_i) {
    const auto op = static_cast<ReduceOp>(op_i);
    for (int ranks = 1; ranks <= 6; ++ranks) {
      for (unsigned left = 0; left < (1u << ranks); ++left) {
        std::vector<T> votes;
        for (int r = 0; r < ranks; ++r) {
          unsigned char slot[sizeof(T)];
          const bool stays = !(left & (1u << r));
          write_count(slot, wire, 0, static_cast<int64_t>(vote_contribution(op, stays, ranks)));
          T v;
          std::memcpy(&v, slot, sizeof(T));
          votes.push_back(v);
        }
        T reduced = reduce(op, votes);
        unsigned char slot[sizeof(T)];
        std::memcpy(slot, &reduced, sizeof(T));
        EXPECT_EQ(left == 0, vote_all_stayed(op, read_count(slot, wire, 0)))
            << "op " << op_i << ", " << ranks << " ranks, leaving mask " << left;
      }
    }
  }
}

TEST(FastVote, AllStayedExactlyWhenNoRankLeftF32) { check_every_subset<float>(DataType::kF32); }
TEST(FastVote, AllStayedExactlyWhenNoRankLeftF64) { check_every_subset<double>(DataType::kF64); }

TEST(FastVote, AverageOfOneLeaverAmongManyStillSaysLeft) {
  // 4096 ranks, one leaves: the average is 4096 / 4096 = 1, not a fraction that rounds away.
  EXPECT_FALSE(vote_all_stayed(ReduceOp::kAverage, vote_contribution(ReduceOp::kAverage, false, 4096) / 4096));
  EXPECT_TRUE(vote_all_stayed(ReduceOp::kAverage, 0.0));
}

}  // namespace
}  // namespace quorum
