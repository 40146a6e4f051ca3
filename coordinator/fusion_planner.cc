#include "coordinator/fusion_planner.h"

#include <algorithm>

namespace quorum::coord {
namespace {

PlanKind plan_kind(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::kAllreduce: return PlanKind::kAllreduce;
    case CollectiveKind::kBroadcast: return PlanKind::kBroadcast;
    case CollectiveKind::kAllgather: return PlanKind::kAllgather;
  }
  return PlanKind::kError;
}

Plan single(const ReadyTensor& t) {
  Plan p;
  p.kind = plan_kind(t.request.kind);
  p.op = t.request.op;
  p.dtype = t.request.dtype;
  p.device = t.request.device;
  p.root = t.request.root;
  p.ids = {t.id};
  p.last_ranks = {t.last_rank};
  p.dim0_per_rank = t.dim0_per_rank;
  return p;
}

bool same_bucket(const Plan& p, const ReadyTensor& t) {
  return p.kind == PlanKind::kAllreduce && t.request.kind == CollectiveKind::kAllreduce &&
         p.op == t.request.op && p.dtype == t.request.dtype && p.device == t.request.device;
}

}  // namespace

std::vector<Plan> plan_fusion(const std::vector<ReadyTensor>& ready, size_t threshold_bytes) {
  std::vector<Plan> plans;
  // Open buckets: index into `plans` and the bytes they hold.
  std::vector<std::pair<size_t, size_t>> open;
  for (const ReadyTensor& t : ready) {
    if (t.request.kind != CollectiveKind::kAllreduce || t.wire_bytes > threshold_bytes ||
        threshold_bytes == 0) {
      plans.push_back(single(t));
      continue;
    }
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const auto& o) { return same_bucket(plans[o.first], t); });
    if (it != open.end() && it->second + t.wire_bytes <= threshold_bytes) {
      plans[it->first].ids.push_back(t.id);
      plans[it->first].last_ranks.push_back(t.last_rank);
      it->second += t.wire_bytes;
      continue;
    }
    if (it != open.end()) open.erase(it);  // full: later tensors start a new bucket
    plans.push_back(single(t));
    open.push_back({plans.size() - 1, t.wire_bytes});
  }
  return plans;
}

}  // namespace quorum::coord
