#include "tools/trace/plans.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "tools/trace/intervals.h"

namespace quorum::trace {
namespace {

bool is_collective_lane(const Event& e) {
  return e.ph == 'X' && (e.cat == "pack" || e.cat == "collective" || e.cat == "unpack");
}

}  // namespace

FusionStats fusion_stats(const std::vector<TraceFile>& traces) {
  struct Plan {
    std::string op, algorithm;
    int64_t tensors = 0;
    int64_t bytes = 0;
  };
  // Keyed by plan id; events without one get a key below -1 of their own (never merged).
  std::map<int64_t, Plan> plans;
  int64_t anonymous = -2;
  for (const TraceFile& t : traces) {
    // pack carries a tensor count; used when a collective names no tensors.
    std::map<int64_t, int64_t> pack_count;
    for (const Event& e : t.events) {
      if (e.ph == 'X' && e.cat == "pack" && e.plan >= 0) pack_count[e.plan] = e.tensor_count;
    }
    for (const Event& e : t.events) {
      if (e.ph != 'X' || e.cat != "collective") continue;
      const int64_t key = e.plan >= 0 ? e.plan : anonymous--;
      if (plans.count(key)) continue;
      Plan p;
      p.op = e.name;
      p.algorithm = e.algorithm;
      p.tensors = static_cast<int64_t>(e.tensors.size());
      if (p.tensors == 0 && pack_count.count(key))
        p.tensors = std::max<int64_t>(0, pack_count[key]);
      p.bytes = std::max<int64_t>(0, e.bytes);
      plans.emplace(key, std::move(p));
    }
  }

  FusionStats s;
  s.plans = static_cast<int64_t>(plans.size());
  if (plans.empty()) return s;
  s.bytes_per_plan_min = std::numeric_limits<int64_t>::max();
  for (const auto& [id, p] : plans) {
    s.tensors += p.tensors;
    s.tensors_per_plan_max = std::max(s.tensors_per_plan_max, p.tensors);
    if (p.tensors > 1) ++s.fused_plans;
    s.bytes_total += p.bytes;
    s.bytes_per_plan_min = std::min(s.bytes_per_plan_min, p.bytes);
    s.bytes_per_plan_max = std::max(s.bytes_per_plan_max, p.bytes);
    ++s.ops[p.op];
    if (!p.algorithm.empty()) ++s.algorithms[p.algorithm];
  }
  s.tensors_per_plan_mean = static_cast<double>(s.tensors) / static_cast<double>(s.plans);
  s.bytes_per_plan_mean = static_cast<double>(s.bytes_total) / static_cast<double>(s.plans);
  return s;
}

std::vector<TensorLatency> tensor_latencies(const std::vector<TraceFile>& traces) {
  struct Parts {
    double negotiate = 0, queue = 0, collective = 0;
  };
  std::map<std::string, TensorLatency> by_name;
  std::map<std::string, Parts> part_sums;

  for (const TraceFile& t : traces) {
    // pack + collective + unpack on this rank, as a union in case a writer ever nests them.
    std::map<int64_t, std::vector<Interval>> plan_spans;
    std::map<int64_t, std::vector<std::string>> plan_tensors;
    std::map<std::pair<int64_t, std::string>, Parts> occurrences;
    for (const Event& e : t.events) {
      if (e.ph != 'X') continue;
      const std::string& name = e.tensor.empty() ? e.name : e.tensor;
      if (is_collective_lane(e)) {
        if (e.plan >= 0) plan_spans[e.plan].push_back({e.ts, e.end()});
        if (e.cat == "collective" && e.plan >= 0) plan_tensors[e.plan] = e.tensors;
      } else if (e.cat == "negotiate") {
        occurrences[{e.plan, name}].negotiate += e.dur;
      } else if (e.cat == "queue") {
        occurrences[{e.plan, name}].queue += e.dur;
      }
    }
    for (const auto& [plan, names] : plan_tensors) {
      const double lane = IntervalSet(plan_spans[plan]).measure();
      for (const std::string& name : names) occurrences[{plan, name}].collective = lane;
    }
    for (const auto& [key, parts] : occurrences) {
      const double total = parts.negotiate + parts.queue + parts.collective;
      TensorLatency& l = by_name[key.second];
      l.name = key.second;
      ++l.occurrences;
      l.total_us += total;
      l.max_us = std::max(l.max_us, total);
      Parts& sums = part_sums[key.second];
      sums.negotiate += parts.negotiate;
      sums.queue += parts.queue;
      sums.collective += parts.collective;
    }
  }

  std::vector<TensorLatency> out;
  for (auto& [name, l] : by_name) {
    const double n = static_cast<double>(l.occurrences);
    const Parts& sums = part_sums[name];
    l.mean_us = l.total_us / n;
    l.negotiate_mean_us = sums.negotiate / n;
    l.queue_mean_us = sums.queue / n;
    l.collective_mean_us = sums.collective / n;
    out.push_back(std::move(l));
  }
  std::sort(out.begin(), out.end(), [](const TensorLatency& a, const TensorLatency& b) {
    if (a.mean_us != b.mean_us) return a.mean_us > b.mean_us;
    return a.name < b.name;
  });
  return out;
}

}  // namespace quorum::trace
