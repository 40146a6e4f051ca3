// intervals.h — sets of half-open time intervals [begin, end) in microseconds, the arithmetic
// behind the per-step attribution (union, intersection, difference, measure inside a window).
// Values are plain data: copy freely, no thread affinity.
#pragma once

#include <vector>

namespace quorum::trace {

struct Interval {
  double begin = 0;
  double end = 0;
};

class IntervalSet {
 public:
  IntervalSet() = default;
  // Any intervals, in any order, overlapping or not; empty or reversed ones are dropped.
  explicit IntervalSet(std::vector<Interval> intervals);

  // Sorted, disjoint, non-touching, non-empty.
  const std::vector<Interval>& intervals() const { return v_; }
  bool empty() const { return v_.empty(); }

  IntervalSet intersect(const IntervalSet& other) const;
  IntervalSet subtract(const IntervalSet& other) const;
  IntervalSet unite(const IntervalSet& other) const;

  // Total length.
  double measure() const;
  // Total length inside [lo, hi); O(log n + intervals inside).
  double measure_in(double lo, double hi) const;

 private:
  std::vector<Interval> v_;
};

}  // namespace quorum::trace
