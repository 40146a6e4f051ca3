// IntervalSet: the set arithmetic the per-step attribution rests on.
#include "tools/trace/intervals.h"

#include <gtest/gtest.h>

namespace quorum::trace {
namespace {

IntervalSet set(std::vector<Interval> v) { return IntervalSet(std::move(v)); }

TEST(Intervals, NormalisesOverlapsTouchingAndEmpty) {
  IntervalSet s = set({{5, 7}, {0, 2}, {1, 3}, {3, 4}, {9, 9}, {8, 6}});
  ASSERT_EQ(s.intervals().size(), 2u);
  EXPECT_EQ(s.intervals()[0].begin, 0);
  EXPECT_EQ(s.intervals()[0].end, 4);
  EXPECT_EQ(s.intervals()[1].begin, 5);
  EXPECT_EQ(s.intervals()[1].end, 7);
  EXPECT_EQ(s.measure(), 6);
}

TEST(Intervals, IntersectSubtractUnite) {
  IntervalSet a = set({{0, 10}, {20, 30}});
  IntervalSet b = set({{5, 25}, {28, 40}});
  EXPECT_EQ(a.intersect(b).measure(), 5 + 5 + 2);
  EXPECT_EQ(a.subtract(b).measure(), 5 + 3);
  EXPECT_EQ(a.unite(b).measure(), 40);
  // An interval of b spanning two of a cuts both.
  IntervalSet c = set({{0, 1}, {2, 3}, {4, 5}});
  EXPECT_EQ(c.subtract(set({{0.5, 4.5}})).measure(), 0.5 + 0.5);
  EXPECT_TRUE(a.subtract(a).empty());
}

TEST(Intervals, MeasureInWindow) {
  IntervalSet a = set({{0, 10}, {20, 30}, {40, 50}});
  EXPECT_EQ(a.measure_in(5, 45), 5 + 10 + 5);
  EXPECT_EQ(a.measure_in(10, 20), 0);
  EXPECT_EQ(a.measure_in(-5, 100), 30);
  EXPECT_EQ(a.measure_in(30, 30), 0);
}

}  // namespace
}  // namespace quorum::trace
