#include "tools/trace/summary.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

namespace quorum::trace {
namespace {

std::string ms(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", us / 1000.0);
  return buf;
}

void add_warnings(const TraceFile& t, const RankTimeline& tl, std::vector<std::string>* out) {
  const std::string who = "rank " + std::to_string(t.header.rank) + " (" + t.path + "): ";
  for (const Event& e : t.events) {
    if (e.name == "timeline_dropped") {
      out->push_back(who + std::to_string(std::max<int64_t>(e.dropped, 0)) +
                     " events were dropped" + (e.reason.empty() ? "" : " (" + e.reason + ")") +
                     "; figures may be low");
    } else if (e.name == "timeline_truncated") {
      out->push_back(who + "the timeline hit its size cap; nothing after it was recorded");
    }
  }
  if (tl.steps.empty()) {
    out->push_back(who + "no step marks (mark_step() never called?), so no steps to report");
  } else if (tl.trailing_us > 0) {
    out->push_back(who + ms(tl.trailing_us) +
                   " after the last step mark belong to no finished step (run stopped mid-step?)");
  }
}

}  // namespace

void max_and_mean(const std::vector<Breakdown>& rows, Breakdown* max, Breakdown* mean) {
  *max = Breakdown();
  *mean = Breakdown();
  if (rows.empty()) return;
  for (const BreakdownField& f : kBreakdownFields) {
    double hi = rows.front().*f.member;
    double sum = 0;
    for (const Breakdown& b : rows) {
      hi = std::max(hi, b.*f.member);
      sum += b.*f.member;
    }
    max->*f.member = hi;
    mean->*f.member = sum / static_cast<double>(rows.size());
  }
}

Summary summarize(const std::vector<TraceFile>& traces) {
  Summary s;
  if (traces.empty()) return s;
  s.run_id = traces.front().header.run_id;
  s.size = traces.front().header.size;

  std::map<int64_t, StepSummary> by_step;
  const AgreementLast agreements = last_at_agreements(traces);
  for (const TraceFile& t : traces) {
    s.ranks.push_back(t.header.rank);
    s.files.push_back(t.path);
    RankTimeline tl = analyze_rank(t, agreements);
    add_warnings(t, tl, &s.warnings);

    RankTotals totals;
    totals.rank = tl.rank;
    totals.steps = static_cast<int64_t>(tl.steps.size());
    totals.mode_switches = tl.mode_switches;
    s.has_modes = s.has_modes || tl.has_modes;
    for (RankStep& rs : tl.steps) {
      totals.time += rs.time;
      for (const auto& [mode, us] : rs.mode_time_us) totals.mode_time_us[mode] += us;
      StepSummary& step = by_step[rs.step];
      step.step = rs.step;
      step.ranks.push_back(std::move(rs));
    }
    s.totals.push_back(std::move(totals));
  }
  if (static_cast<int64_t>(traces.size()) < s.size) {
    std::string missing;
    std::set<int64_t> have(s.ranks.begin(), s.ranks.end());
    for (int64_t r = 0; r < s.size; ++r) {
      if (!have.count(r)) missing += (missing.empty() ? "" : ",") + std::to_string(r);
    }
    s.warnings.push_back("only " + std::to_string(traces.size()) + " of " + std::to_string(s.size) +
                         " ranks loaded; missing rank(s) " + missing);
  }

  for (auto& [number, step] : by_step) {
    std::vector<Breakdown> rows;
    std::set<int64_t> stragglers;
    for (const RankStep& rs : step.ranks) {
      rows.push_back(rs.time);
      // A wait that blocked nothing (it overlapped compute) slowed no one.
      for (const StragglerWait& w : rs.stragglers) {
        if (w.blocked_us > 0) stragglers.insert(w.rank);
      }
    }
    max_and_mean(rows, &step.max, &step.mean);
    step.stragglers.assign(stragglers.begin(), stragglers.end());
    for (int64_t r : step.stragglers) ++s.straggler_steps[r];
    s.steps.push_back(std::move(step));
  }

  std::vector<Breakdown> rank_totals;
  for (const RankTotals& t : s.totals) rank_totals.push_back(t.time);
  max_and_mean(rank_totals, &s.total_max, &s.total_mean);

  if (s.has_modes) {
    std::set<std::string> modes;
    for (const RankTotals& t : s.totals) {
      for (const auto& [mode, us] : t.mode_time_us) modes.insert(mode);
    }
    for (const std::string& mode : modes) {
      double hi = 0, sum = 0;
      for (const RankTotals& t : s.totals) {
        auto it = t.mode_time_us.find(mode);
        const double us = it == t.mode_time_us.end() ? 0 : it->second;
        hi = std::max(hi, us);
        sum += us;
      }
      s.mode_max_us[mode] = hi;
      s.mode_mean_us[mode] = sum / static_cast<double>(s.totals.size());
    }
  }

  s.fusion = fusion_stats(traces);
  s.tensors = tensor_latencies(traces);
  return s;
}

}  // namespace quorum::trace
