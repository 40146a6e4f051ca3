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
  p.missing = {t.missing};
  p.counted = t.counted;
  p.dim0_per_rank = t.dim0_per_rank;
  return p;
}

bool same_bucket(const Plan& p, const ReadyTensor& t) {
  return p.kind == PlanKind::kAllreduce && t.request.kind == CollectiveKind::kAllreduce &&
         p.op == t.request.op && p.dtype == t.request.dtype && p.device == t.request.device;
}

}  // namespace

std::vector<Plan> plan_fusion(const std::vector<ReadyTensor>& ready, size_t threshold_bytes,
                              const std::function<int(uint32_t)>& bucket_of,
                              size_t max_tensor_bytes) {
  std::vector<Plan> plans;
  // Open buckets: index into `plans`, the bytes they hold, and their learned bucket.
  struct Open {
    size_t plan;
    size_t bytes;
    int learned;
  };
  std::vector<Open> open;
  for (const ReadyTensor& t : ready) {
    if (t.request.kind != CollectiveKind::kAllreduce || t.wire_bytes > threshold_bytes ||
        t.wire_bytes > max_tensor_bytes || threshold_bytes == 0) {
      plans.push_back(single(t));
      continue;
    }
    int learned = bucket_of ? bucket_of(t.id) : -1;
    auto it = std::find_if(open.begin(), open.end(), [&](const Open& o) {
      return o.learned == learned && same_bucket(plans[o.plan], t);
    });
    if (it != open.end() && it->bytes + t.wire_bytes <= threshold_bytes) {
      plans[it->plan].ids.push_back(t.id);
      plans[it->plan].last_ranks.push_back(t.last_rank);
      plans[it->plan].missing.push_back(t.missing);
      plans[it->plan].counted = plans[it->plan].counted || t.counted;
      it->bytes += t.wire_bytes;
      continue;
    }
    if (it != open.end()) open.erase(it);  // full: later tensors start a new bucket
    plans.push_back(single(t));
    open.push_back({plans.size() - 1, t.wire_bytes, learned});
  }
  // Sync plans carry no per-tensor missing lists at all.
  for (Plan& p : plans) {
    if (std::all_of(p.missing.begin(), p.missing.end(), [](auto& m) { return m.empty(); })) {
      p.missing.clear();
    }
  }
  return plans;
}

}  // namespace quorum::coord
