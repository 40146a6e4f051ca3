#include "tools/trace/intervals.h"

#include <algorithm>
#include <utility>

namespace quorum::trace {

IntervalSet::IntervalSet(std::vector<Interval> intervals) {
  std::erase_if(intervals, [](const Interval& i) { return !(i.begin < i.end); });
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  for (const Interval& i : intervals) {
    // Touching intervals merge too, so measure_in never splits a run at a seam.
    if (!v_.empty() && i.begin <= v_.back().end) {
      v_.back().end = std::max(v_.back().end, i.end);
    } else {
      v_.push_back(i);
    }
  }
}

IntervalSet IntervalSet::intersect(const IntervalSet& other) const {
  std::vector<Interval> out;
  size_t a = 0, b = 0;
  while (a < v_.size() && b < other.v_.size()) {
    const Interval& x = v_[a];
    const Interval& y = other.v_[b];
    const double lo = std::max(x.begin, y.begin);
    const double hi = std::min(x.end, y.end);
    if (lo < hi) out.push_back({lo, hi});
    if (x.end < y.end) {
      ++a;
    } else {
      ++b;
    }
  }
  return IntervalSet(std::move(out));
}

IntervalSet IntervalSet::subtract(const IntervalSet& other) const {
  std::vector<Interval> out;
  size_t b = 0;
  for (const Interval& x : v_) {
    double cur = x.begin;
    while (b < other.v_.size() && other.v_[b].end <= cur) ++b;
    // `other` intervals starting inside x cut it; the last one may reach into the next x, so
    // b is not advanced past it.
    size_t k = b;
    while (k < other.v_.size() && other.v_[k].begin < x.end) {
      if (other.v_[k].begin > cur) out.push_back({cur, other.v_[k].begin});
      cur = std::max(cur, other.v_[k].end);
      ++k;
    }
    if (cur < x.end) out.push_back({cur, x.end});
  }
  return IntervalSet(std::move(out));
}

IntervalSet IntervalSet::unite(const IntervalSet& other) const {
  std::vector<Interval> all = v_;
  all.insert(all.end(), other.v_.begin(), other.v_.end());
  return IntervalSet(std::move(all));
}

double IntervalSet::measure() const {
  double total = 0;
  for (const Interval& i : v_) total += i.end - i.begin;
  return total;
}

double IntervalSet::measure_in(double lo, double hi) const {
  if (!(lo < hi)) return 0;
  // Ends are sorted too (disjoint intervals), so the first interval reaching past lo is found
  // by binary search.
  auto it = std::upper_bound(v_.begin(), v_.end(), lo,
                             [](double t, const Interval& i) { return t < i.end; });
  double total = 0;
  for (; it != v_.end() && it->begin < hi; ++it) {
    total += std::min(it->end, hi) - std::max(it->begin, lo);
  }
  return total;
}

}  // namespace quorum::trace
