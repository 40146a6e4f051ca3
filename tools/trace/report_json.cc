#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "tools/trace/report.h"

namespace quorum::trace {
namespace {

using nlohmann::json;

// Timestamps are written with nanosecond resolution; differences of large µs values carry
// binary noise below that (533.1759996414 for 533.176), so figures are rounded to the ns.
double ns(double us) { return std::round(us * 1000.0) / 1000.0; }

json fields(const Breakdown& b) {
  // Rounded part by part, exposed and compute then derived as in analyze_rank, so the parts
  // still add up to the step.
  Breakdown r;
  r.step = ns(b.step);
  r.collective = ns(b.collective);
  r.straggler_wait = ns(b.straggler_wait);
  r.negotiation = ns(b.negotiation);
  r.queue = ns(b.queue);
  r.other = ns(b.other);
  r.exposed = ns(r.collective + r.straggler_wait + r.negotiation + r.queue + r.other);
  r.compute = ns(r.step - r.exposed);
  json j = json::object();
  for (const BreakdownField& f : kBreakdownFields) j[f.key] = r.*f.member;
  return j;
}

json rounded(const std::map<std::string, double>& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = ns(v);
  return j;
}

json rank_step(const RankStep& rs) {
  json j = {{"rank", rs.rank}, {"begin_us", ns(rs.begin_us + rs.offset_us)}};
  j.update(fields(rs.time));
  json stragglers = json::array();
  for (const StragglerWait& w : rs.stragglers) {
    stragglers.push_back(
        {{"rank", w.rank}, {"events", w.events}, {"blocked_us", ns(w.blocked_us)}});
  }
  j["stragglers"] = std::move(stragglers);
  if (!rs.mode_time_us.empty()) j["mode_time_us"] = rounded(rs.mode_time_us);
  return j;
}

json fusion(const FusionStats& f) {
  return {{"plans", f.plans},
          {"tensors", f.tensors},
          {"fused_plans", f.fused_plans},
          {"tensors_per_plan_mean", f.tensors_per_plan_mean},
          {"tensors_per_plan_max", f.tensors_per_plan_max},
          {"bytes_total", f.bytes_total},
          {"bytes_per_plan_mean", f.bytes_per_plan_mean},
          {"bytes_per_plan_min", f.bytes_per_plan_min},
          {"bytes_per_plan_max", f.bytes_per_plan_max},
          {"ops", f.ops},
          {"algorithms", f.algorithms}};
}

}  // namespace

json summary_json(const Summary& s, size_t top) {
  json doc = {{"run_id", s.run_id},
              {"size", s.size},
              {"ranks", s.ranks},
              {"files", s.files},
              {"units", "us"}};

  json steps = json::array();
  for (const StepSummary& step : s.steps) {
    json ranks = json::array();
    for (const RankStep& rs : step.ranks) ranks.push_back(rank_step(rs));
    steps.push_back({{"step", step.step},
                     {"ranks", std::move(ranks)},
                     {"max", fields(step.max)},
                     {"mean", fields(step.mean)},
                     {"stragglers", step.stragglers}});
  }
  doc["steps"] = std::move(steps);

  json ranks = json::array();
  for (const RankTotals& t : s.totals) {
    json r = {{"rank", t.rank}, {"steps", t.steps}};
    r.update(fields(t.time));
    if (s.has_modes) {
      r["mode_time_us"] = rounded(t.mode_time_us);
      r["mode_switches"] = t.mode_switches;
    }
    ranks.push_back(std::move(r));
  }
  json stragglers = json::array();
  for (const auto& [rank, steps_count] : s.straggler_steps) {
    stragglers.push_back({{"rank", rank}, {"steps", steps_count}});
  }
  doc["overall"] = {{"steps", s.steps.size()},
                    {"ranks", std::move(ranks)},
                    {"max", fields(s.total_max)},
                    {"mean", fields(s.total_mean)},
                    {"stragglers", std::move(stragglers)}};

  doc["fusion"] = fusion(s.fusion);
  json tensors = json::array();
  for (size_t i = 0; i < std::min(top, s.tensors.size()); ++i) {
    const TensorLatency& l = s.tensors[i];
    tensors.push_back({{"tensor", l.name},
                       {"occurrences", l.occurrences},
                       {"mean_us", ns(l.mean_us)},
                       {"max_us", ns(l.max_us)},
                       {"total_us", ns(l.total_us)},
                       {"negotiate_mean_us", ns(l.negotiate_mean_us)},
                       {"queue_mean_us", ns(l.queue_mean_us)},
                       {"collective_mean_us", ns(l.collective_mean_us)}});
  }
  doc["slowest_tensors"] = std::move(tensors);
  doc["tensor_count"] = s.tensors.size();
  if (s.has_modes)
    doc["modes"] = {{"max_us", rounded(s.mode_max_us)}, {"mean_us", rounded(s.mode_mean_us)}};
  doc["warnings"] = s.warnings;
  return doc;
}

}  // namespace quorum::trace
