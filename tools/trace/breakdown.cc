#include "tools/trace/breakdown.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "tools/trace/intervals.h"

namespace quorum::trace {

Breakdown& Breakdown::operator+=(const Breakdown& o) {
  for (const BreakdownField& f : kBreakdownFields) this->*f.member += o.*f.member;
  return *this;
}

namespace {

struct ModeSwitch {
  double ts;
  std::string mode;
};

bool overlaps(const Event& e, double lo, double hi) {
  if (e.dur == 0) return lo <= e.ts && e.ts < hi;
  return std::max(e.ts, lo) < std::min(e.end(), hi);
}

// Splits [lo, hi) among the modes in force; `switches` sorted by ts.
void add_mode_time(const std::vector<ModeSwitch>& switches, double lo, double hi,
                   std::map<std::string, double>* out) {
  auto next = std::upper_bound(switches.begin(), switches.end(), lo,
                               [](double t, const ModeSwitch& s) { return t < s.ts; });
  std::string mode = next == switches.begin() ? kInitialMode : std::prev(next)->mode;
  double cur = lo;
  for (; next != switches.end() && next->ts < hi; ++next) {
    if (next->ts > cur) (*out)[mode] += next->ts - cur;
    cur = std::max(cur, next->ts);
    mode = next->mode;
  }
  if (hi > cur) (*out)[mode] += hi - cur;
}

// The rank a negotiate or agree event waited for (-1: unknown). A negotiate event names it; an
// agreement's is found across the ranks' files.
int64_t waited_for_rank(const Event& e, const AgreementLast& agreements) {
  if (e.cat != "agree") return e.last_rank;
  auto it = agreements.find({e.schedule, e.round});
  return it == agreements.end() ? -1 : it->second.rank;
}

}  // namespace

AgreementLast last_at_agreements(const std::vector<TraceFile>& traces) {
  struct Seen {
    int64_t ranks = 0;
    double least_us = 0;
    int64_t rank = -1;
  };
  std::map<std::pair<int64_t, int64_t>, Seen> seen;
  int64_t size = 0;
  for (const TraceFile& t : traces) {
    size = std::max(size, t.header.size);
    for (const Event& e : t.events) {
      if (e.cat != "agree" || e.ph != 'X' || e.schedule < 0 || e.round < 0) continue;
      Seen& s = seen[{e.schedule, e.round}];
      if (s.ranks++ == 0 || e.dur < s.least_us) {
        s.least_us = e.dur;
        s.rank = t.header.rank;
      }
    }
  }
  AgreementLast out;
  for (const auto& [key, s] : seen) {
    if (s.ranks == size) out.emplace(key, CameLast{s.rank, s.least_us});
  }
  return out;
}

RankTimeline analyze_rank(const TraceFile& trace, const AgreementLast& agreements) {
  const int64_t self = trace.header.rank;
  RankTimeline out;
  out.rank = self;

  std::vector<Interval> waits, collective, straggler, negotiation, queue;
  std::vector<Interval> voted_straggler;  // ahead of collective (see analyze_rank's doc)
  std::map<int64_t, std::vector<Interval>> voted_straggler_by_rank;
  std::map<int64_t, std::vector<Interval>> straggler_by_rank;
  std::vector<std::pair<const Event*, int64_t>> straggler_events;  // (wait, the rank waited for)
  std::vector<const Event*> marks;
  std::vector<ModeSwitch> switches;
  double first = std::numeric_limits<double>::infinity();
  double last = -first;

  for (const Event& e : trace.events) {
    if (!e.timed()) continue;
    first = std::min(first, e.ts);
    last = std::max(last, e.end());
    if (e.ph != 'X') {
      if (e.cat == "step") marks.push_back(&e);
      if (e.cat == "mode") switches.push_back({e.ts, e.name});
      continue;
    }
    const Interval span{e.ts, e.end()};
    if (e.cat == "agree" && e.voted) {
      const int64_t waited_for = waited_for_rank(e, agreements);
      if (waited_for < 0 || waited_for == self) continue;  // its collective's time
      const double extra = e.dur - agreements.at({e.schedule, e.round}).least_us;
      if (extra <= 0) continue;
      const Interval waited{e.ts, e.ts + extra};
      voted_straggler.push_back(waited);
      voted_straggler_by_rank[waited_for].push_back(waited);
      straggler_events.push_back({&e, waited_for});
    } else if (e.cat == "negotiate" || e.cat == "agree") {
      const int64_t waited_for = waited_for_rank(e, agreements);
      if (waited_for >= 0 && waited_for != self) {
        straggler.push_back(span);
        straggler_by_rank[waited_for].push_back(span);
        straggler_events.push_back({&e, waited_for});
      } else {
        negotiation.push_back(span);
      }
    } else if (e.cat == "wait") {
      waits.push_back(span);
    } else if (e.cat == "pack" || e.cat == "collective" || e.cat == "unpack") {
      collective.push_back(span);
    } else if (e.cat == "queue") {
      queue.push_back(span);
    }
  }

  // Each blocked instant goes to the first category that covers it, in the doc's order.
  const IntervalSet blocked(std::move(waits));
  const IntervalSet in_voted_straggler = blocked.intersect(IntervalSet(std::move(voted_straggler)));
  const IntervalSet unvoted = blocked.subtract(in_voted_straggler);
  const IntervalSet in_collective = unvoted.intersect(IntervalSet(std::move(collective)));
  IntervalSet rest = unvoted.subtract(in_collective);
  const IntervalSet after_collective = rest;
  const IntervalSet in_straggler =
      rest.intersect(IntervalSet(std::move(straggler))).unite(in_voted_straggler);
  rest = rest.subtract(in_straggler);
  const IntervalSet in_negotiation = rest.intersect(IntervalSet(std::move(negotiation)));
  rest = rest.subtract(in_negotiation);
  const IntervalSet in_queue = rest.intersect(IntervalSet(std::move(queue)));
  const IntervalSet in_other = rest.subtract(in_queue);
  std::map<int64_t, IntervalSet> blocked_by_straggler;
  for (auto& [rank, spans] : straggler_by_rank) {
    blocked_by_straggler[rank] = after_collective.intersect(IntervalSet(std::move(spans)));
  }
  for (auto& [rank, spans] : voted_straggler_by_rank) {
    IntervalSet& b = blocked_by_straggler[rank];
    b = b.unite(blocked.intersect(IntervalSet(std::move(spans))));
  }

  std::stable_sort(marks.begin(), marks.end(),
                   [](const Event* a, const Event* b) { return a->ts < b->ts; });
  std::stable_sort(switches.begin(), switches.end(),
                   [](const ModeSwitch& a, const ModeSwitch& b) { return a.ts < b.ts; });
  out.has_modes = !switches.empty();
  out.mode_switches = static_cast<int64_t>(switches.size());

  // Which steps each straggler wait overlaps: found by binary search over the step ends, so a
  // long run costs O(waits log steps), not O(waits x steps).
  std::vector<std::map<int64_t, StragglerWait>> waited(marks.size());
  auto window_begin = [&](size_t k) { return k == 0 ? first : marks[k - 1]->ts; };
  for (const auto& [e, waited_for] : straggler_events) {
    auto k =
        static_cast<size_t>(std::upper_bound(marks.begin(), marks.end(), e->ts,
                                             [](double t, const Event* m) { return t < m->ts; }) -
                            marks.begin());
    for (; k < marks.size() && window_begin(k) <= e->end(); ++k) {
      if (!overlaps(*e, window_begin(k), marks[k]->ts)) continue;
      StragglerWait& w = waited[k][waited_for];
      w.rank = waited_for;
      ++w.events;
    }
  }

  double begin = first;
  for (size_t i = 0; i < marks.size(); ++i) {
    const double end = marks[i]->ts;
    RankStep s;
    s.rank = self;
    s.step = marks[i]->step >= 0 ? marks[i]->step : static_cast<int64_t>(i) + 1;
    s.begin_us = begin;
    s.end_us = end;
    s.offset_us = trace.header.clock_offset_us;
    Breakdown& b = s.time;
    b.step = end - begin;
    b.collective = in_collective.measure_in(begin, end);
    b.straggler_wait = in_straggler.measure_in(begin, end);
    b.negotiation = in_negotiation.measure_in(begin, end);
    b.queue = in_queue.measure_in(begin, end);
    b.other = in_other.measure_in(begin, end);
    // Summed from the parts rather than measured, so the parts add up to the step exactly.
    b.exposed = b.collective + b.straggler_wait + b.negotiation + b.queue + b.other;
    b.compute = b.step - b.exposed;

    for (auto& [rank, w] : waited[i]) {
      w.blocked_us = blocked_by_straggler[rank].measure_in(begin, end);
      s.stragglers.push_back(w);
    }
    if (out.has_modes) add_mode_time(switches, begin, end, &s.mode_time_us);
    out.steps.push_back(std::move(s));
    begin = end;
  }
  if (last > begin) out.trailing_us = last - begin;
  return out;
}

}  // namespace quorum::trace
