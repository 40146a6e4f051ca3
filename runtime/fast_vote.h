// The readiness vote of a voted fast-path entry: one extra element at the end of the entry's
// own allreduce, reduced with the entry's op, from which every rank reads the same answer to
// "did every rank stay on the schedule?". Each op gets values it reduces without rounding:
// a rank that stays adds nothing to a sum (0), cannot lower a minimum or raise a maximum, and
// multiplies by 1; a rank that leaves makes the sum at least 1 (Average: `ranks`, so that the
// division by the rank count still leaves at least 1), the minimum or product 0, the maximum 1.
#pragma once

#include "quorum/types.h"

namespace quorum {

constexpr double vote_contribution(ReduceOp op, bool stays, int ranks) {
  switch (op) {
    case ReduceOp::kSum: return stays ? 0 : 1;
    case ReduceOp::kAverage: return stays ? 0 : ranks;
    case ReduceOp::kMin:
    case ReduceOp::kProduct: return stays ? 1 : 0;
    case ReduceOp::kMax: return stays ? 0 : 1;
  }
  return stays ? 0 : 1;
}

// The reduced vote says every rank stayed.
constexpr bool vote_all_stayed(ReduceOp op, double reduced) {
  switch (op) {
    case ReduceOp::kMin:
    case ReduceOp::kProduct: return reduced > 0.5;
    default: return reduced < 0.5;
  }
}

}  // namespace quorum
