#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "tools/trace/report.h"
#include "tools/trace/strformat.h"

namespace quorum::trace {
namespace {

double ms(double us) { return us / 1000.0; }

std::string header_row() {
  std::string out = strformat("  %-8s", "rank");
  for (const BreakdownField& f : kBreakdownFields) out += strformat(" %11s", f.label);
  return out + "\n";
}

std::string row(const std::string& label, const Breakdown& b) {
  std::string out = strformat("  %-8s", label.c_str());
  for (const BreakdownField& f : kBreakdownFields) out += strformat(" %11.3f", ms(b.*f.member));
  return out + "\n";
}

std::string step_stragglers(const StepSummary& step) {
  if (step.stragglers.empty()) return "";
  // straggler → "rank W blocked X ms" for each waiting rank.
  std::map<int64_t, std::vector<std::string>> waiters;
  for (const RankStep& rs : step.ranks) {
    for (const StragglerWait& w : rs.stragglers) {
      if (!(w.blocked_us > 0)) continue;
      waiters[w.rank].push_back(strformat("rank %lld blocked %.3f ms",
                                          static_cast<long long>(rs.rank), ms(w.blocked_us)));
    }
  }
  std::string out = "  stragglers:";
  bool first = true;
  for (const auto& [rank, list] : waiters) {
    out += strformat("%s rank %lld (", first ? "" : ";", static_cast<long long>(rank));
    for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + list[i];
    out += ")";
    first = false;
  }
  return out + "\n";
}

std::string overall(const Summary& s) {
  std::string out = strformat("\noverall (summed over each rank's steps)\n");
  out += header_row();
  for (const RankTotals& t : s.totals) out += row(std::to_string(t.rank), t.time);
  out += row("max", s.total_max) + row("mean", s.total_mean);
  std::string counts;
  bool same = true;
  for (const RankTotals& t : s.totals) {
    counts += strformat("%s%lld: %lld", counts.empty() ? "" : ", ", static_cast<long long>(t.rank),
                        static_cast<long long>(t.steps));
    same = same && t.steps == s.totals.front().steps;
  }
  out += same ? strformat("  %lld steps per rank\n", static_cast<long long>(s.totals.front().steps))
              : "  steps per rank: " + counts + "\n";
  if (s.total_mean.step > 0) {
    out += "  share of step time (mean over ranks):";
    bool first = true;
    for (size_t i : kStepParts) {
      const BreakdownField& f = kBreakdownFields[i];
      out += strformat("%s %s %.1f%%", first ? "" : ",", f.label,
                       100.0 * (s.total_mean.*f.member) / s.total_mean.step);
      first = false;
    }
    out += strformat("; exposed %.1f%%\n", 100.0 * s.total_mean.exposed / s.total_mean.step);
  }
  if (!s.straggler_steps.empty()) {
    std::vector<std::pair<int64_t, int64_t>> by_count(s.straggler_steps.begin(),
                                                      s.straggler_steps.end());
    std::stable_sort(by_count.begin(), by_count.end(),
                     [](auto& a, auto& b) { return a.second > b.second; });
    out += "  stragglers:";
    for (size_t i = 0; i < by_count.size(); ++i) {
      out += strformat("%s rank %lld in %lld of %zu steps", i ? "," : "",
                       static_cast<long long>(by_count[i].first),
                       static_cast<long long>(by_count[i].second), s.steps.size());
    }
    out += "\n";
  }
  return out;
}

std::string fusion(const FusionStats& f) {
  if (f.plans == 0) return "\nfusion: no collective events\n";
  std::string out = strformat(
      "\nfusion: %lld plans, %lld tensors (%.2f per plan, max %lld; %lld of the plans fused "
      "several tensors)\n"
      "  bytes: %lld total, per plan mean %.0f, min %lld, max %lld\n",
      static_cast<long long>(f.plans), static_cast<long long>(f.tensors), f.tensors_per_plan_mean,
      static_cast<long long>(f.tensors_per_plan_max), static_cast<long long>(f.fused_plans),
      static_cast<long long>(f.bytes_total), f.bytes_per_plan_mean,
      static_cast<long long>(f.bytes_per_plan_min), static_cast<long long>(f.bytes_per_plan_max));
  auto counts = [](const std::map<std::string, int64_t>& m) {
    std::string s;
    for (const auto& [name, n] : m) {
      s += strformat("%s %s %lld", s.empty() ? "" : ",", name.c_str(), static_cast<long long>(n));
    }
    return s;
  };
  out += "  plans by op:" + counts(f.ops) + "\n";
  if (!f.algorithms.empty()) out += "  plans by algorithm:" + counts(f.algorithms) + "\n";
  return out;
}

std::string tensors(const std::vector<TensorLatency>& all, size_t top) {
  if (all.empty() || top == 0) return "";
  const size_t n = std::min(top, all.size());
  std::string out = strformat(
      "\nslowest tensors (negotiate + queue + its plan's pack/collective/unpack, per occurrence "
      "on one rank; %zu of %zu)\n",
      n, all.size());
  out += strformat("  %-24s %6s %9s %9s %10s %9s %10s\n", "tensor", "count", "mean", "max",
                   "negotiate", "queue", "collective");
  for (size_t i = 0; i < n; ++i) {
    const TensorLatency& l = all[i];
    out += strformat("  %-24s %6lld %9.3f %9.3f %10.3f %9.3f %10.3f\n", l.name.c_str(),
                     static_cast<long long>(l.occurrences), ms(l.mean_us), ms(l.max_us),
                     ms(l.negotiate_mean_us), ms(l.queue_mean_us), ms(l.collective_mean_us));
  }
  return out;
}

std::string modes(const Summary& s) {
  if (!s.has_modes) return "";
  std::string out = "\ntime per mode (within steps, summed per rank; ms)\n";
  out += strformat("  %-12s %11s %11s\n", "mode", "max", "mean");
  for (const auto& [mode, mean] : s.mode_mean_us) {
    out += strformat("  %-12s %11.3f %11.3f\n", mode.c_str(), ms(s.mode_max_us.at(mode)), ms(mean));
  }
  return out;
}

}  // namespace

std::string summary_text(const Summary& s, size_t top, size_t last) {
  std::string out =
      strformat("run %s: %zu of %lld ranks, %zu steps; times in ms\n", s.run_id.c_str(),
                s.ranks.size(), static_cast<long long>(s.size), s.steps.size());
  size_t first_shown = last > 0 && last < s.steps.size() ? s.steps.size() - last : 0;
  if (first_shown > 0) {
    out += strformat("(per-step tables for the last %zu steps; --last 0 shows all)\n", last);
  }
  for (size_t i = first_shown; i < s.steps.size(); ++i) {
    const StepSummary& step = s.steps[i];
    out += strformat("\nstep %lld\n", static_cast<long long>(step.step));
    out += header_row();
    for (const RankStep& rs : step.ranks) out += row(std::to_string(rs.rank), rs.time);
    out += row("max", step.max) + row("mean", step.mean);
    out += step_stragglers(step);
  }
  if (!s.totals.empty()) out += overall(s);
  out += fusion(s.fusion) + tensors(s.tensors, top) + modes(s);
  if (!s.warnings.empty()) {
    out += "\nwarnings\n";
    for (const std::string& w : s.warnings) out += "  " + w + "\n";
  }
  return out;
}

}  // namespace quorum::trace
